"""Bar chart of the category averages (and the overall one) against the published scores, one panel
per benchmark."""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_file
from .report import Section


def plot_categories(sections: list[Section], path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    panels = [s for s in sections if s.rows]
    widest = max(sum(r.level != "task" for r in s.rows) for s in panels)
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(max(4.0, 1.3 * widest), 4.0 * len(panels)))
    width = 0.4
    for ax, section in zip(axes[:, 0], panels):
        bars = [r for r in section.rows if r.level in ("category", "overall")]
        x = range(len(bars))
        ax.bar([i - width / 2 for i in x], [r.score for r in bars], width, label=model)
        ax.bar([i + width / 2 for i in x], [r.published if r.published is not None else 0.0 for r in bars],
               width, label=f"published: {section.source}")
        ax.set_xticks(list(x), [r.name for r in bars], rotation=20, ha="right")
        ax.set_ylabel("main score (%)")
        ax.set_title(f"{section.title}: category averages")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
