"""One evaluation run: load the model, choose its protocol, pick the tasks, let mteb evaluate,
write the report (and, asked, the leaderboard submission).

mteb does the scoring, the result files and the resuming: `mteb.evaluate` with a
`DataKeyedCache(OUTPUT)` writes
`OUTPUT/results/<model>/<revision>/experiments/<settings>__data_<data>/<Task>.json`
(settings = `InstructEncoder.experiment()`: protocol, max length, dtype; data = a digest of the
task's local files or its Hub revision) after every subset and, with overwrite_strategy
"only-missing", skips what is already there, so another model, other settings or other data
never reuse a score. Its `CachedEmbeddingWrapper` keeps every embedding on disk (keyed by task,
settings, query/document side and a hash of the text itself, so other data cannot be served a
stale one) and a repeated run does not encode the corpus again; its files are written whole
and a damaged one is dropped and computed again (`cache.py`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import platform
import warnings
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import mteb
from mteb.models.cache_wrappers import CachedEmbeddingWrapper

from .. import files, log
from ..lock import FolderLock
from .cache import SafeNumpyCache
from .encoder import E5_INSTRUCTION_TEMPLATE, InstructEncoder
from ..local_data import use_local_data
from .model import load_model, model_name, revision_of
from .plot import plot_categories
from .protocol import choose, registry_meta
from .published_scores import Published, load_published
from .report import Section, build_section, write_csv, write_markdown
from .settings import EvalConfig
from .submission import submission_meta, training_info, write_submission
from .tasks import benchmark_tasks, chosen_tasks, report_benchmarks, select_tasks

# mteb's embedding cache warns once per repeated text (STS sets repeat sentences): noise, not news
logging.getLogger("mteb.models.cache_wrappers.cache_backends.numpy_cache").setLevel(logging.ERROR)


class DataKeyedCache(mteb.ResultCache):
    """mteb's result cache, with each task's results filed under its data (`keys`: task name ->
    data key) next to the model's settings: scores from other data are never read back."""

    def __init__(self, path: Path, keys: dict[str, str]):
        super().__init__(path)
        self.keys = keys

    def get_task_result_path(self, task_name, model_name, model_revision=None, remote=False, experiment_name=None):
        path = super().get_task_result_path(task_name, model_name, model_revision, remote, experiment_name)
        key = self.keys.get(task_name)
        return path.parent.with_name(f"{path.parent.name}__data_{key}") / path.name if key else path


def data_keys(tasks: list, data_dir: str | None) -> dict[str, str]:
    """Each task's data as a short key: a digest of its local files (checked on the way, and
    read from there from now on) or its Hub revision; an aggregate task's, from its parts'."""
    keys = {}
    for task in tasks:
        # an aggregate (CQADupstackRetrieval) runs its sub-tasks: each reads its own folder
        parts = getattr(task.metadata, "tasks", None) or [task]
        for part in parts:
            keys[part.metadata.name] = (use_local_data(part, data_dir) if data_dir
                                        else f"hub-{str(part.metadata.revision)[:12]}")
        if parts != [task]:
            if data_dir:
                task.local_data_full = all(part.local_data_full for part in parts)
            joined = " ".join(keys[part.metadata.name] for part in parts)
            keys[task.metadata.name] = "parts-" + hashlib.sha256(joined.encode()).hexdigest()[:12]
    return keys


@dataclass
class Outcome:
    scores: dict[str, tuple[str, float]] = field(default_factory=dict)  # task -> (type, main score)
    failed: dict[str, str] = field(default_factory=dict)                # task -> error
    bad_data: dict[str, str] = field(default_factory=dict)              # task -> its local data's error
    sections: list[Section] = field(default_factory=list)               # one per benchmark
    model: str = ""                                                     # the name results are filed under
    protocol: str = ""                                                  # "e5 (why)" or "plain (why)"
    submission: Path | None = None


def versions() -> dict[str, str]:
    import sentence_transformers
    import torch
    import transformers

    return {"mteb": mteb.__version__, "sentence-transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__, "torch": torch.__version__,
            "python": platform.python_version()}


def build_encoder(cfg: EvalConfig):
    cfg.check()
    model = load_model(cfg.model, max_length=cfg.max_length, dtype=cfg.dtype, device=cfg.device,
                       truncate_dim=cfg.truncate_dim, append_eos=cfg.text_template.endswith("{text}"))
    name = model_name(cfg.model)
    choice = choose(cfg.protocol, model, name, custom_template=cfg.instruction_template != E5_INSTRUCTION_TEMPLATE)
    return InstructEncoder(model, name=name, revision=revision_of(cfg.model, model), protocol=choice.protocol,
                           instruction_template=cfg.instruction_template, reason=choice.reason,
                           text_template=cfg.text_template)


def evaluate(cfg: EvalConfig, encoder=None) -> Outcome:
    """Run `cfg`; `encoder` may be passed in (tests reuse one) instead of loading `cfg.model`."""
    cfg.check()
    benchmarks = report_benchmarks(cfg.benchmark)
    # a wrong --reference fails now, not after hours
    published = {b: load_published(cfg.reference, b) for b in [*benchmarks, ""]}
    tasks = select_tasks(cfg.benchmark, chosen_tasks(cfg), cfg.task_types)
    keys = data_keys(tasks, cfg.data_dir)  # checks every local file before anything runs
    out = files.check_writable_dir(cfg.output_dir)
    # one run per output dir: two would write the same result files and embedding caches
    with FolderLock(out, "evaluation output dir"):
        check_own_outputs(cfg, out)
        return _run(cfg, encoder, benchmarks, published, tasks, keys, out)


TOOL = "eval.py"  # the maker its output folder's marker names (files.check_output_dir)
REPORTS = ("results.md", "results.csv", "categories.png")
MODELS = "models"  # OUTPUT/models/<model>/: each model's own copy of its tables


def check_own_outputs(cfg: EvalConfig, out: Path) -> None:
    """Refuse, before any work, a folder eval.py did not make, and in one it did, a report file or
    submission/ file that no earlier eval.py here wrote (or one edited since), unless --overwrite.
    The rest of the folder (result files, embeddings) is what a run resumes from."""
    replaced = [out / name for name in REPORTS if (out / name).exists()]
    replaced += [p for p in (out / MODELS).rglob("*") if p.name in REPORTS]
    if cfg.submission and (out / "submission").exists():
        replaced += [out / "submission", *(out / "submission").rglob("*")]
    files.check_output_dir(out, TOOL, replaces=[p.relative_to(out) for p in replaced], overwrite=cfg.overwrite)


def _run(cfg: EvalConfig, encoder, benchmarks: list[str], published, tasks: list, keys: dict[str, str],
         out: Path) -> Outcome:
    outcome, encoder, cache = _score(cfg, encoder, tasks, keys, out)
    reference, name = _reference(published, tasks), "published"
    if cfg.baseline:  # the same tasks, the same data: the one reference that is always comparable
        base, _, _ = _score(replace(cfg, model=cfg.baseline, baseline=None), None, tasks, keys, out)
        outcome.failed.update({f"{t} ({base.model})": e for t, e in base.failed.items()})
        outcome.bad_data.update(base.bad_data)
        source = f"{base.model}, scored here on the same tasks and data (protocol: {base.protocol})"
        reference = {b: Published(task_type=p.task_type, score={t: 100 * v for t, (_, v) in base.scores.items()},
                                  source=source) for b, p in published.items()}
        name = base.model
    outcome.sections = _sections(outcome.scores, benchmarks, reference, _data_note(cfg, tasks), name)
    _write_reports(cfg, outcome, out)
    if cfg.submission and outcome.scores:
        outcome.submission = _submit(cfg, encoder, out, cache, tasks, outcome)
    return outcome


def _reference(published: dict, tasks: list) -> dict:
    """The published scores of the tasks whose data is the published data: from the Hub, or local
    files of its full size (`local_data.is_full_size`); none for a slice or other local data."""
    local = [t for t in tasks if hasattr(t, "local_data_full")]
    if not local:
        return published
    partial = {t.metadata.name for t in local if not t.local_data_full}
    return {b: Published(task_type=p.task_type, score={n: v for n, v in p.score.items() if n not in partial},
                         source=p.source if set(p.score) - partial else "") for b, p in published.items()}


def _data_note(cfg: EvalConfig, tasks: list) -> str:
    """What data the table scored, for its 'Data:' line."""
    if not cfg.data_dir:
        return ""
    partial = [t.metadata.name for t in tasks if not getattr(t, "local_data_full", True)]
    return f"local files under {cfg.data_dir}" + (
        f"; {', '.join(partial)}: not the size of the published data (a slice, or other data), so no published "
        "score is set beside them" if partial and not cfg.baseline else "")


def _score(cfg: EvalConfig, encoder, tasks: list, keys: dict[str, str], out: Path):
    """Score one model on `tasks` (mteb, resuming from OUTPUT's result files): its Outcome without
    sections, its encoder and the result cache."""
    own_encoder = encoder is None
    encoder = encoder or build_encoder(cfg)
    files.mark_output_dir(out, TOOL)  # before its first file: a run killed after it is resumed
    protocol = f"{encoder.protocol} ({encoder.reason})"
    meta = encoder.mteb_model_meta
    log.say(f"protocol: {protocol} for {meta.name}")
    model = encoder
    if cfg.embedding_cache:
        model = CachedEmbeddingWrapper(
            encoder, out / "embeddings" / meta.model_name_as_path() / meta.revision, cache_backend=SafeNumpyCache)
    _write_run_info(cfg, meta, out, protocol)
    cache = DataKeyedCache(out, keys)
    finished = [] if cfg.overwrite else [t.metadata.name for t in tasks if _finished(cache, t, meta)]
    if finished:
        log.say(f"{len(finished)} of {len(tasks)} task(s) already scored in {out}: read back, not run again "
                f"({', '.join(finished[:5])}{', ...' if len(finished) > 5 else ''}; --overwrite runs them again)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hash collision or duplicate item")
        result = mteb.evaluate(
            model, tasks, cache=cache,
            overwrite_strategy="always" if cfg.overwrite else "only-missing",
            encode_kwargs={"batch_size": cfg.batch_size, "show_progress_bar": log.bars()},
            show_progress_bar=log.bars(), raise_error=False, co2_tracker=False)
    if own_encoder:
        encoder.close()  # stops the per-GPU processes, if any
    outcome = Outcome(failed={e.task_name: e.exception for e in result.exceptions}, model=meta.name,
                      protocol=protocol)
    for task in tasks:  # a local file mteb could not use is the user's to fix, not a failure
        for part in [*(getattr(task.metadata, "tasks", None) or []), task]:
            error = getattr(part, "local_data_error", None)
            if error is not None:
                outcome.bad_data[part.metadata.name] = str(error)
                outcome.failed.pop(part.metadata.name, None)
                outcome.failed.pop(task.metadata.name, None)
    by_name = {r.task_name: r for r in result.task_results}
    for task in tasks:
        name = task.metadata.name
        if name in by_name:
            try:  # only the benchmark's splits and subsets count (e.g. English-only subsets)
                score = by_name[name].validate_and_filter_scores(task).get_score()
            except ValueError as e:
                outcome.failed[name] = f"incomplete results: {e}"
                continue
            outcome.scores[name] = (task.metadata.type, score)
    return outcome, encoder, cache


def _write_reports(cfg: EvalConfig, outcome: Outcome, out: Path) -> None:
    """results.md, results.csv and categories.png: this run's table, and a copy kept per model
    under models/<model>/, so that a run for another model replaces no model's table (it says
    whose table the top-level files held)."""
    own = out / MODELS / outcome.model.replace("/", "__")
    names = ["results.csv", "results.md"] + (["categories.png"] if cfg.chart and outcome.scores else [])
    before = _table_model(out / "results.csv")
    if before == "":
        log.say(f"results.md, results.csv, categories.png now hold {outcome.model}'s table, replacing an earlier "
                "table (of a version that kept no copy per model)")
    elif before and before != outcome.model:
        log.say(f"results.md, results.csv, categories.png now hold {outcome.model}'s table; {before}'s stays in "
                f"{out / MODELS / before.replace('/', '__')}")
    for folder in (out, own):
        write_csv(outcome.sections, folder / "results.csv", outcome.model)
        write_markdown(outcome.sections, outcome.model, folder / "results.md", outcome.protocol)
        if cfg.chart and outcome.scores:
            plot_categories(outcome.sections, folder / "categories.png", outcome.model)
    files.mark_output_dir(out, TOOL, names + [(own / n).relative_to(out) for n in names])


def _table_model(path: Path) -> str | None:
    """The model whose table a results.csv holds ('' for one written before the model column), or
    None when there is none."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            row = next(csv.DictReader(f), None)
    except OSError:
        return None
    return None if row is None else row.get("model") or ""


def _finished(cache: DataKeyedCache, task, meta) -> bool:
    """Whether mteb will read this task's results back (its check under "only-missing")."""
    result = cache.load_task_result(task.metadata.name, meta)
    return result is not None and not result.get_missing_evaluations(task)


def _sections(scores: dict, benchmarks: list[str], published: dict, data: str = "",
              reference: str = "published") -> list[Section]:
    """One section per benchmark, over its own tasks; without a benchmark, one over all tasks run."""
    if not benchmarks:
        return [build_section(scores, published[""], expected={}, data=data, reference=reference)]
    sections, seen = [], set()
    for benchmark in benchmarks:
        expected = {t.metadata.name: t.metadata.type for t in benchmark_tasks(benchmark)}
        seen |= set(expected)
        sections.append(build_section({n: s for n, s in scores.items() if n in expected},
                                      published[benchmark], benchmark, expected, data, reference))
    rest = {n: s for n, s in scores.items() if n not in seen}  # tasks named outside the benchmark
    if rest:
        sections.append(build_section(rest, published[""], expected={}, data=data, reference=reference))
    return sections


def _submit(cfg: EvalConfig, encoder, out: Path, cache: DataKeyedCache, tasks: list,
            outcome: Outcome) -> Path:
    """OUTPUT/submission/ from this run's finished tasks (an aggregate's sub-tasks come along)."""
    meta = encoder.mteb_model_meta
    results = {}  # task -> its result file, where the cache filed it (under its data's key)
    for task in tasks:
        if task.metadata.name in outcome.scores:
            for part in [*(getattr(task.metadata, "tasks", None) or []), task]:
                path = cache.get_task_result_path(part.metadata.name, meta)
                if path.is_file():
                    results[part.metadata.name] = path
    submitted = submission_meta(encoder, cfg.model)
    known = registry_meta(submitted.name) is not None
    decontamination = training_info(cfg.model, submitted.revision).get("decontamination")
    path = write_submission(out, submitted, results, known=known, decontamination=decontamination)
    files.mark_output_dir(out, TOOL, [p.relative_to(out) for p in path.rglob("*") if p.is_file()])
    log.say(f"submission: {path} ({len(results)} result files for {submitted.name} at revision {submitted.revision})")
    if known:
        log.note(f"mteb has a ModelMeta for {submitted.name} already; the results pull request is all it takes")
    if encoder.protocol == "e5":
        log.note("these are the E5 authors' protocol's scores; mteb's own E5 loader, which "
                 "model_meta.py names, differs on reranking candidates and classification normalisation "
                 "(docs/evaluation.md): say so in the results pull request")
    if submitted.revision.startswith("local-"):
        log.note("a local folder has no Hub revision; push the model and run eval.py on its Hub id "
                 "for a submission the leaderboard can check against the weights")
    return path


def _write_run_info(cfg: EvalConfig, meta, out: Path, protocol: str) -> None:
    """One line per run in OUTPUT/runs.jsonl: settings, the protocol chosen and why, model revision
    and library versions (scores move with library versions, precision and batch size: mteb issue 5230)."""
    record = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "config": asdict(cfg), "protocol": protocol, "model_name": meta.name,
              "revision": meta.revision, "versions": versions()}
    with (out / "runs.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
