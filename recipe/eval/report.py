"""The results table: per task, per category and overall, beside E5-Mistral's published scores.

Scores are mteb main scores in percent. A category's average (and the overall one, a plain
mean over tasks as MTEB reports it) is taken over the tasks that were run, and the published
average beside it over the same tasks, so partial runs compare like with like; the `tasks`
column says how many of the published category that is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .published import Published

CATEGORY_ORDER = ["Classification", "Clustering", "PairClassification", "Reranking", "Retrieval",
                  "STS", "Summarization"]


@dataclass
class Row:
    level: str            # "task", "category" or "overall"
    category: str
    name: str
    score: float          # ours, percent
    published: float | None
    tasks: str = ""       # "run/published" for averages

    @property
    def diff(self) -> float | None:
        return None if self.published is None else self.score - self.published


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def build_rows(scores: dict[str, tuple[str, float]], published: Published) -> list[Row]:
    """`scores`: task name -> (task type, main score in [0, 1])."""
    order = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    names = sorted(scores, key=lambda n: (order.get(scores[n][0], len(order)), scores[n][0], n))
    tasks = [Row("task", scores[n][0], n, 100 * scores[n][1], published.score.get(n)) for n in names]
    rows: list[Row] = []
    for category in dict.fromkeys(r.category for r in tasks):
        group = [r for r in tasks if r.category == category]
        rows += group
        rows.append(_average("category", category, category, group, published))
    if tasks:
        rows.append(_average("overall", "", "Average", tasks, published,
                             total=len(published.score)))
    return rows


def _average(level, category, name, group, published, total=None) -> Row:
    if total is None:
        total = sum(1 for t in published.task_type.values() if t == category)
    have = [r for r in group if r.published is not None]
    pub = _mean([r.published for r in group]) if group and len(have) == len(group) else None
    return Row(level, category, name, _mean([r.score for r in group]), pub,
               f"{len(group)}/{total}" if total else str(len(group)))


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["level", "category", "name", "score", "e5_mistral_published", "diff", "tasks"])
        for r in rows:
            w.writerow([r.level, r.category, r.name, f"{r.score:.4f}",
                        "" if r.published is None else f"{r.published:.2f}",
                        "" if r.diff is None else f"{r.diff:.4f}", r.tasks])


def to_markdown(rows: list[Row], model: str, reference: str) -> str:
    lines = [f"# MTEB results: {model}", "",
             f"Main scores in percent; E5-Mistral = e5-mistral-7b-instruct, published ({reference}).",
             "", "| category | task | ours | E5-Mistral | diff | tasks |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        bold = r.level != "task"
        name = f"**{r.name}**" if bold else r.name
        lines.append(f"| {r.category} | {name} | {_fmt(r.score)} | {_fmt(r.published)} | "
                     f"{_fmt(r.diff, signed=True)} | {r.tasks} |")
    return "\n".join(lines) + "\n"
