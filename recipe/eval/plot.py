"""Bar chart of the category averages (and the overall one) beside the reference of each table, one
panel per benchmark: each bar labelled with its value, each average named by how many tasks it
averages, the legend below the bars, never over one."""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_file
from .report import Section


def bar_name(section: Section, row) -> str:
    n = sum(r.level == "task" and (row.level == "overall" or r.category == row.category) for r in section.rows)
    return f"{row.name} ({n} task{'s' if n != 1 else ''})"


def draw_categories(sections: list[Section], model: str):
    """The figure (matplotlib's, Agg): one panel per section that has rows."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    panels = [s for s in sections if s.rows]
    widest = max(sum(r.level != "task" for r in s.rows) for s in panels)
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(max(5.0, 1.5 * widest), 4.6 * len(panels)))
    for ax, section in zip(axes[:, 0], panels):
        bars = [r for r in section.rows if r.level in ("category", "overall")]
        compared = bool(section.source)
        width = 0.4 if compared else 0.6
        x = range(len(bars))
        series = [(model, [r.score for r in bars], -width / 2 if compared else 0.0)]
        if compared:
            label = f"published: {section.source}" if section.reference == "published" else section.reference
            series.append((label, [r.published for r in bars], width / 2))
        for name, values, shift in series:
            drawn = ax.bar([i + shift for i in x], [v if v is not None else 0.0 for v in values], width, label=name)
            ax.bar_label(drawn, labels=["" if v is None else f"{v:.1f}" for v in values], fontsize=7, padding=2)
        ax.set_xticks(list(x), [bar_name(section, r) for r in bars], rotation=20, ha="right")
        ax.set_ylabel("main score (%)")
        top = max(v for _, values, _ in series for v in values if v is not None)
        ax.set_ylim(0, max(top * 1.12, 1.0))  # room for the value labels
        title = f"{section.title}: category averages"
        ax.set_title(title + (f"\n{section.data}" if section.data else ""), fontsize=9)
        # below the axes and their tick labels: a legend inside the axes can cover a bar
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=1, frameon=False)
    fig.subplots_adjust(hspace=1.0)  # each panel's tick labels and legend sit between it and the next
    return fig


def plot_categories(sections: list[Section], path: Path, model: str) -> None:
    import matplotlib.pyplot as plt

    fig = draw_categories(sections, model)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)
