"""The results tables: per task, per category and overall, beside a reference, one section per
benchmark (MTEB(eng, v1), MTEB(eng, v2), or both).

The reference is measured on the same data or it is not shown: the published scores for tasks
read from the Hub; `--baseline`'s scores, run here on the same tasks and data; none for local
data (`--data-dir`), which is not the data the published scores were measured on.

Scores are mteb main scores in percent. A category's average (and the overall one, a plain
mean over tasks as MTEB reports it) is taken over the benchmark's tasks that were run, and the
published average beside it over the same tasks, so partial runs compare like with like; the
`tasks` column says how many of the benchmark's tasks (of that category) that is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_file, write_text
from .published_scores import Published

CATEGORY_ORDER = ["Classification", "Clustering", "PairClassification", "Reranking", "Retrieval",
                  "STS", "Summarization"]


@dataclass
class Row:
    level: str            # "task", "category" or "overall"
    category: str
    name: str
    score: float          # ours, percent
    published: float | None
    tasks: str = ""       # "run/in the benchmark" for averages

    @property
    def diff(self) -> float | None:
        return None if self.published is None else self.score - self.published


@dataclass
class Section:
    benchmark: str        # "" when the tasks were picked by name
    source: str           # whose reference scores, from where; "" for none
    rows: list[Row] = field(default_factory=list)
    data: str = ""        # what was scored: "" for the tasks' Hub data, else where it came from
    reference: str = "published"  # the reference column's name

    @property
    def title(self) -> str:
        return self.benchmark or "Selected tasks"

    @property
    def overall(self) -> Row | None:
        return next((r for r in self.rows if r.level == "overall"), None)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def build_section(scores: dict[str, tuple[str, float]], published: Published, benchmark: str = "",
                  expected: dict[str, str] | None = None, data: str = "", reference: str = "published") -> Section:
    """`scores`: task name -> (task type, main score in [0, 1]), the tasks of this section;
    `expected`: the benchmark's tasks (name -> type), for the counts (default: the published ones)."""
    expected = published.task_type if expected is None else expected
    order = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    names = sorted(scores, key=lambda n: (order.get(scores[n][0], len(order)), scores[n][0], n))
    tasks = [Row("task", scores[n][0], n, 100 * scores[n][1], published.score.get(n)) for n in names]
    rows: list[Row] = []
    for category in dict.fromkeys(r.category for r in tasks):
        group = [r for r in tasks if r.category == category]
        rows += group
        total = sum(1 for t in expected.values() if t == category)
        rows.append(_average("category", category, category, group, total))
    if tasks:
        rows.append(_average("overall", "", "Average", tasks, len(expected)))
    # a table none of whose tasks has a reference score shows no reference column at all
    source = published.source if any(r.published is not None for r in tasks) else ""
    return Section(benchmark, source, rows, data, reference)


def _average(level, category, name, group, total) -> Row:
    have = [r for r in group if r.published is not None]
    pub = _mean([r.published for r in group]) if group and len(have) == len(group) else None
    return Row(level, category, name, _mean([r.score for r in group]), pub,
               f"{len(group)}/{total}" if total else str(len(group)))


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def write_csv(sections: list[Section], path: Path, model: str = "") -> None:
    with atomic_file(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["model", "benchmark", "level", "category", "name", "score", "reference", "reference_score",
                    "diff", "tasks", "data"])
        for s in sections:
            for r in s.rows:
                w.writerow([model, s.benchmark, r.level, r.category, r.name, f"{r.score:.4f}",
                            s.source and s.reference, "" if r.published is None else f"{r.published:.2f}",
                            "" if r.diff is None else f"{r.diff:.4f}", r.tasks, s.data or "hub"])


def to_markdown(sections: list[Section], model: str, protocol: str = "") -> str:
    lines = [f"# MTEB results: {model}", "",
             "Main scores in percent, each beside a reference measured on the same data (named under each "
             "table), or none." + (f" Protocol: {protocol}." if protocol else ""), ""]
    averaged = [s for s in sections if s.overall is not None]
    if len(averaged) > 1:
        lines += ["| benchmark | ours | reference | diff | tasks |", "|---|---:|---:|---:|---:|"]
        for s in averaged:
            o = s.overall
            lines.append(f"| {s.title} | {_fmt(o.score)} | {_fmt(o.published)} | "
                         f"{_fmt(o.diff, signed=True)} | {o.tasks} |")
        lines.append("")
    for s in (s for s in sections if s.rows):  # a benchmark none of whose tasks ran says nothing
        if s.source:
            lines += [f"## {s.title}", "", f"| category | task | ours | {s.reference} | diff | tasks |",
                      "|---|---|---:|---:|---:|---:|"]
        else:
            lines += [f"## {s.title}", "", "| category | task | ours | tasks |", "|---|---|---:|---:|"]
        for r in s.rows:
            name = f"**{r.name}**" if r.level != "task" else r.name
            compared = f" {_fmt(r.published)} | {_fmt(r.diff, signed=True)} |" if s.source else ""
            lines.append(f"| {r.category} | {name} | {_fmt(r.score)} |{compared} {r.tasks} |")
        lines.append("")
        if s.data:
            lines.append(f"Data: {s.data}." + ("" if s.source else " The published scores were measured on "
                                                "other data, so none is set beside these."))
        if s.source:
            lines.append(f"{'Published' if s.reference == 'published' else 'Reference'}: {s.source}.")
        lines.append("")
    return "\n".join(lines)


def write_markdown(sections: list[Section], model: str, path: Path, protocol: str = "") -> None:
    write_text(path, to_markdown(sections, model, protocol))
