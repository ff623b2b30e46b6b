"""Remove the training records that overlap the evaluation data of a benchmark or of some tasks.

    python data/decontaminate.py --input out/synth --output out/synth-clean.jsonl --benchmark "MTEB(eng, v2)"
    python data/decontaminate.py --input mix.jsonl --output clean.jsonl --tasks STSBenchmark,MSMARCO \\
        --data-dir tests/data/eval
    python data/decontaminate.py --input out/synth --report-only --report out/synth/decontamination.json

Input: records in any format the record reader knows (ours, sentence-transformers columns,
FlagEmbedding JSONL, other columns through --columns; .jsonl/.parquet, a synthesis output folder,
a dataset folder or Hub id). The evaluation texts are those of mteb's task definitions, chosen
and loaded as eval.py chooses and loads them (--benchmark, --tasks, --task-types, --data-dir):
every query and document of retrieval and reranking, every text of the other task types, of
the task's evaluation splits. A record is removed when its query, positive or a hard negative
is the same text as an evaluation text after normalisation (`exact`), contains one
(`contained`), or is a near duplicate of one (`near`); recipe/data/decontamination.py says how.

Output: the records kept, as read (--output), the records removed, each with its own fields and
the task, split, text id and kind of its match (--removed, default OUTPUT.removed.jsonl), and a
report (--report, default OUTPUT.decontamination.json: the settings, the counts and the
per-task overlap table, which data/publish.py puts into the dataset card when it lies in the
synthesis folder as decontamination.json: the one place a file may be written inside an input,
while holding that folder's lock); the table on stdout. --report-only writes no records
(only --report, when given). Every file is written whole at the end; an existing one is
replaced only with --overwrite, never an input. Any key can also come from a YAML file:
--config FILE.
Exit codes: 0 done, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from recipe import cli, log
from recipe.config import ConfigError, parse, setting
from recipe.data import decontamination as dc
from recipe.data.settings import RecordsInput, RecordsOutput
from recipe.files import check_output_file, inside, write_jsonl, write_text
from recipe.lock import FolderLock
from recipe.schema import beside, decontamination_report
from recipe.sources import check_local_or_hub


@dataclass
class DecontaminateConfig(RecordsOutput, RecordsInput, dc.DecontaminationSettings):
    removed: str = setting("", "output .jsonl: the records removed, each with its match (default: OUTPUT with "
                           ".removed.jsonl)")
    report: str = setting("", "output .json: settings, counts, per-task table (default: OUTPUT with "
                          ".decontamination.json)")
    report_only: bool = setting(False, "write no records: print the table (and --report)")
    benchmark: str = setting(
        "MTEB(eng, v2)", "the benchmark whose tasks' evaluation texts are compared, as eval.py takes it (MTEB(eng, "
        "v2): the leaderboard's; '' to pick --tasks from all of mteb)")
    tasks: list[str] = setting([], "only these tasks, comma separated")
    task_types: list[str] = setting([], "only these task types, e.g. Retrieval,STS")
    data_dir: str | None = setting(None, "read each task from DIR/<TaskName>/ instead of the Hub (eval.py's layout)")
    overwrite: bool = setting(False, "replace an existing --output, --removed and --report")

    def check(self) -> None:
        if not self.input:
            raise ConfigError("command line: --input is required")
        if self.report_only and (self.output or self.removed):
            raise ConfigError("--report-only writes no records: drop --output and --removed (or --report-only)")
        if not self.report_only and not self.output:
            raise ConfigError("command line: --output is required (or --report-only)")
        super().check()


def removed_path(cfg: DecontaminateConfig) -> Path | None:
    if cfg.report_only:
        return None
    return Path(cfg.removed) if cfg.removed else beside(cfg.output, ".removed.jsonl")


def report_path(cfg: DecontaminateConfig) -> Path | None:
    if cfg.report:
        return Path(cfg.report)
    return None if cfg.report_only else decontamination_report(cfg.output)


def check_files(cfg: DecontaminateConfig) -> list:
    """The files it reads exist and the files it writes may be written, before a record or an
    evaluation text is read; the tasks."""
    from recipe.eval.tasks import chosen_tasks, select_tasks

    check_local_or_hub(cfg.input, "--input", "data")
    if cfg.data_dir and not Path(cfg.data_dir).is_dir():
        raise ConfigError(f"--data-dir {cfg.data_dir}: no such folder")
    tasks = select_tasks(cfg.benchmark, chosen_tasks(cfg), cfg.task_types)
    if not tasks:
        raise ConfigError("no tasks selected")
    written = [cfg.input]
    for path, flag in ((cfg.output, "--output"), (removed_path(cfg), "--removed"), (report_path(cfg), "--report")):
        if path:
            # the report may go into the synthesis folder it describes (data/publish.py puts it
            # into the card from there); nothing else may land inside an input
            inputs = written
            if flag == "--report" and report_in_synthesis_folder(cfg):
                inputs = [Path(cfg.input) / "examples.jsonl", *written[1:]]
            check_output_file(path, inputs, cfg.overwrite, flag=flag)
            written.append(path)
    return tasks


def report_in_synthesis_folder(cfg: DecontaminateConfig) -> bool:
    folder, report = Path(cfg.input), report_path(cfg)
    return bool(report) and (folder / "examples.jsonl").is_file() and inside(report, folder)


def _main(argv: list[str]) -> int:
    cfg = parse(DecontaminateConfig, argv)
    tasks = check_files(cfg)
    if report_in_synthesis_folder(cfg):  # a synthesis still writing there would race us: refuse now
        with FolderLock(cfg.input, "synthesis output folder"):
            return _run(cfg, tasks)
    return _run(cfg, tasks)


def _run(cfg: DecontaminateConfig, tasks: list) -> int:
    records = cfg.read()
    settings = dc.DecontaminationSettings(**{f.name: getattr(cfg, f.name)
                                             for f in fields(dc.DecontaminationSettings)})
    started = time.perf_counter()
    index = dc.EvalIndex(settings).add(dc.evaluation_texts(tasks, cfg.data_dir)).finish()
    indexed = time.perf_counter()
    outcome = dc.decontaminate(records, index, settings.fields)
    matched = time.perf_counter()
    if not cfg.report_only:
        write_jsonl(outcome.kept, cfg.output)
        write_jsonl(outcome.removed, removed_path(cfg))
    report = {
        "input": cfg.input, "output": None if cfg.report_only else cfg.output, "report_only": cfg.report_only,
        "records": len(records), "kept": len(outcome.kept), "removed": len(outcome.removed),
        "by_kind": outcome.by_kind, "benchmark": cfg.benchmark, "tasks": [t.metadata.name for t in tasks],
        "data_dir": cfg.data_dir, "evaluation_texts": len(index.meta), "settings": {
            f.name: getattr(settings, f.name) for f in fields(dc.DecontaminationSettings)},
        "table": outcome.table, "seconds": {"index": round(indexed - started, 2), "match": round(matched - indexed, 2)},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    log.result(dc.table_markdown(outcome.table))
    k = outcome.by_kind
    where = "" if cfg.report_only else f"; kept in {cfg.output}, removed into {removed_path(cfg)}"
    log.result(f"{len(outcome.removed)} of {len(records)} records overlap {len(index.meta)} evaluation texts of "
               f"{len(tasks)} tasks ({k['exact']} exact, {k['contained']} contained, {k['near']} near){where}")
    if report_path(cfg):
        write_text(report_path(cfg), json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        log.result(f"report: {report_path(cfg)}")
    return 0


main = cli.command(_main, doc=__doc__, config=DecontaminateConfig, module=__name__)
