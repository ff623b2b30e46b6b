"""Bar chart of the category averages (and the overall one) against E5-Mistral's published scores."""

from __future__ import annotations

from pathlib import Path

from .report import Row


def plot_categories(rows: list[Row], path: Path, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    bars = [r for r in rows if r.level in ("category", "overall")]
    labels = [r.name for r in bars]
    ours = [r.score for r in bars]
    theirs = [r.published if r.published is not None else 0.0 for r in bars]
    x = range(len(bars))
    width = 0.4
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(bars)), 4.0))
    ax.bar([i - width / 2 for i in x], ours, width, label=model)
    ax.bar([i + width / 2 for i in x], theirs, width, label="e5-mistral-7b-instruct (published)")
    ax.set_xticks(list(x), labels, rotation=20, ha="right")
    ax.set_ylabel("main score (%)")
    ax.set_title("MTEB category averages")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
