"""Rebuild `published/mteb_eng_v2_published.csv` from a checkout of the MTEB results repository.

    git clone https://github.com/embeddings-benchmark/results && \\
    python -m recipe.eval.collect_published --results-dir results --overwrite

Each score is what the leaderboard shows: mteb's `TaskResult` read from
`results/<org>__<name>/<revision>/<Task>.json`, kept to the benchmark's splits and subsets
(`validate_and_filter_scores`), its main score in percent. The revisions are the ones mteb's
ModelMeta names, so the numbers are the mteb team's runs of exactly that model revision.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .. import cli, log
from ..config import ConfigError, parse, setting
from ..files import atomic_file, check_output_file
from .published_scores import PUBLISHED_FILES

BENCHMARK = "MTEB(eng, v2)"
MODELS = {  # CSV column -> Hub id (its revision: mteb's ModelMeta)
    "e5_mistral_7b_instruct_results_repo": "intfloat/e5-mistral-7b-instruct",
    "all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2",
}


@dataclass
class CollectConfig:
    results_dir: str = setting("", "a checkout of embeddings-benchmark/results")
    output: str = setting(str(PUBLISHED_FILES[BENCHMARK]), "the CSV to write")
    overwrite: bool = setting(False, "replace an existing --output")

    def check(self) -> None:
        if not self.results_dir:
            raise ConfigError("command line: --results-dir is required")


def collect(results_dir: Path) -> list[dict]:
    import mteb
    from mteb.results import TaskResult

    rows = {t.metadata.name: {"task_type": t.metadata.type, "task_name": t.metadata.name}
            for t in mteb.get_benchmark(BENCHMARK).tasks}
    for column, name in MODELS.items():
        meta = mteb.get_model_meta(name)
        folder = results_dir / "results" / meta.model_name_as_path() / meta.revision
        if not folder.is_dir():
            raise ConfigError(f"{folder}: not found; --results-dir must be a checkout of "
                              "embeddings-benchmark/results")
        for task in mteb.get_benchmark(BENCHMARK).tasks:
            path = folder / f"{task.metadata.name}.json"
            if not path.is_file():
                raise ConfigError(f"{path}: missing; the results repository has no run of this task")
            result = TaskResult.from_disk(path).validate_and_filter_scores(task)
            rows[task.metadata.name][column] = f"{100 * result.get_score():.2f}"
            rows[task.metadata.name][f"{column.removesuffix('_results_repo')}_mteb_version"] = \
                result.mteb_version
    return list(rows.values())


def _main(argv: list[str]) -> int:
    cfg = parse(CollectConfig, argv)
    rows = collect(Path(cfg.results_dir))
    check_output_file(cfg.output, overwrite=cfg.overwrite)
    with atomic_file(cfg.output) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    log.result(f"{len(rows)} tasks of {BENCHMARK} to {cfg.output}")
    return 0


main = cli.command(_main, doc=__doc__, config=CollectConfig, module=__name__)
