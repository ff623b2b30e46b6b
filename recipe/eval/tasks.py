"""Which mteb tasks to run: a benchmark, narrowed by task names and task types.

Benchmarks are mteb's own (`MTEB(eng, v1)`: the paper's 56 tasks, `MTEB(eng, v2)`: the
leaderboard's 41, `BEIR`: the paper's 15 retrieval sets), plus `MIRACL`: mteb's MIRACLRetrieval
on the 16 languages the paper reports (the MIRACL dev languages with training data; German and
Yoruba, added later, left out), and `both`: the union of the two English benchmarks, each task
run once (25 tasks are in both, with the same splits and subsets) and each benchmark averaged
over its own tasks.
A benchmark's task objects keep its own restrictions (e.g. only the English subsets of
AmazonCounterfactualClassification in MTEB(eng, v1)), so `--tasks` picks from them.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import mteb

from .. import log
from ..errors import InputError

MIRACL_LANGUAGES = ["ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru",
                    "sw", "te", "th", "zh"]
EXTRA_BENCHMARKS = {"MIRACL": lambda: [mteb.get_task("MIRACLRetrieval", hf_subsets=MIRACL_LANGUAGES)]}
UNIONS = {"both": ["MTEB(eng, v1)", "MTEB(eng, v2)"]}


class TaskSelectionError(InputError):
    """An unknown benchmark, task or task type; the message lists close matches."""


def _close(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    lowered = [k for k in known if name.lower() in k.lower() and k not in close]
    close += lowered[: 5 - len(close)]
    return f"; close matches: {', '.join(close)}" if close else ""


def report_benchmarks(name: str) -> list[str]:
    """The benchmarks the report averages over: one, the two of a union, or none ('')."""
    return UNIONS.get(name, [name] if name else [])


def benchmark_tasks(name: str) -> list:
    if name in UNIONS:
        tasks = {}
        for part in UNIONS[name]:
            for task in benchmark_tasks(part):
                tasks.setdefault(task.metadata.name, task)
        return list(tasks.values())
    if name in EXTRA_BENCHMARKS:
        return EXTRA_BENCHMARKS[name]()
    known = [b.name for b in mteb.get_benchmarks()] + list(EXTRA_BENCHMARKS) + list(UNIONS)
    if name not in known:
        raise TaskSelectionError(f"unknown benchmark {name!r}{_close(name, known)}")
    return list(mteb.get_benchmark(name).tasks)


def _is_task(name: str) -> bool:
    try:
        mteb.get_task(name)
    except KeyError:
        return False
    return True


def local_tasks(data_dir: str, benchmark: str) -> list[str]:
    """The tasks a --data-dir holds (its folders named as mteb's tasks), the benchmark's first;
    none is an error that says what the folder holds."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise TaskSelectionError(f"--data-dir {data_dir}: no such folder")
    held = sorted(p.name for p in folder.iterdir() if p.is_dir())
    tasks = [name for name in held if _is_task(name)]
    if not tasks:
        raise TaskSelectionError(f"--data-dir {data_dir}: no folder named as an mteb task (it holds "
                                 f"{', '.join(held[:5]) or 'no folders'}); name the tasks with --tasks")
    order = {t.metadata.name: i for i, t in enumerate(benchmark_tasks(benchmark))} if benchmark else {}
    return sorted(tasks, key=lambda n: (order.get(n, len(order)), n))


def chosen_tasks(cfg) -> list[str]:
    """--tasks; without it, with --data-dir, the tasks that folder holds (said in one line)."""
    if cfg.tasks or not cfg.data_dir:
        return cfg.tasks
    held = local_tasks(cfg.data_dir, cfg.benchmark)
    log.say(f"--data-dir {cfg.data_dir} holds {len(held)} task(s): scoring those ({', '.join(held)}); "
            "--tasks names others")
    return held


def select_tasks(benchmark: str = "MTEB(eng, v1)", tasks: list[str] | None = None,
                 task_types: list[str] | None = None) -> list:
    """The tasks to run: the benchmark's, in its order; with `tasks`, those, by name, from the
    benchmark or else from all of mteb (one rule for eval.py and data/decontaminate.py: a task
    named is taken wherever mteb has it; the benchmark groups the report's averages)."""
    pool = benchmark_tasks(benchmark) if benchmark else []
    by_name = {t.metadata.name: t for t in pool}
    selected = list(pool)
    if tasks:
        selected = []
        for name in tasks:
            if name in by_name:
                selected.append(by_name[name])
                continue
            try:
                selected.append(mteb.get_task(name))
            except KeyError:
                names = [t.metadata.name for t in mteb.get_tasks()]
                raise TaskSelectionError(f"unknown task {name!r}{_close(name, names)}") from None
    if task_types:
        types = sorted({t.metadata.type for t in selected})
        for tt in task_types:
            if tt not in types:
                raise TaskSelectionError(f"no task of type {tt!r} in the selection{_close(tt, types)}")
        selected = [t for t in selected if t.metadata.type in task_types]
    return selected
