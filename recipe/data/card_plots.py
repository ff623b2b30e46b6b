"""The dataset card's pictures: records per task group and language, the lengths of queries and
documents, the teacher's rejected answers by reason. PNGs under `images/` of the published
folder (pushed with the data, shown by the card through relative links); drawn from the same
facts as the card's tables (`card.summarize`), so a picture never disagrees with a number."""

from __future__ import annotations

from pathlib import Path

TOP_LANGUAGES = 8  # the rest of a group's records are one "other" segment
IMAGES = "images"
PICTURES = {  # file -> what the card says it shows
    "records_by_group_language.png": "Records per task group, by language",
    "lengths.png": "Lengths of queries and documents, in characters",
    "rejections.png": "The teacher's answers rejected, by reason",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    # no "Software" text chunk: the same data draws the same bytes, whatever matplotlib wrote it
    fig.savefig(path, dpi=110, format="png", metadata={"Software": None})


def draw(facts, groups: list[str], folder: Path) -> list[str]:
    """Write the pictures that have something to show into `folder/images/`; their paths
    relative to `folder`, in card order."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    out = Path(folder) / IMAGES
    out.mkdir(parents=True, exist_ok=True)
    written = []

    totals = {}
    for g in groups:
        for lang, n in facts.by_group_language[g].items():
            totals[lang] = totals.get(lang, 0) + n
    top = sorted(totals, key=lambda lang: (-totals[lang], lang))[:TOP_LANGUAGES]
    segments = top + (["other"] if len(totals) > len(top) else [])
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(groups) + 1.6))
    left = [0] * len(groups)
    cmap = plt.get_cmap("tab10")
    for k, lang in enumerate(segments):
        counts = [facts.by_group_language[g].get(lang, 0) if lang != "other" else
                  sum(n for l2, n in facts.by_group_language[g].items() if l2 not in top) for g in groups]
        ax.barh(groups, counts, left=left, color=cmap(k % 10), label=lang)
        left = [a + b for a, b in zip(left, counts)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:,}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{facts.n_examples:,} records per task group and language")
    ax.legend(fontsize=7, ncol=min(len(segments), 5), loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False)
    ax.set_xlim(0, max(left) * 1.15 if left and max(left) else 1)
    fig.tight_layout()
    _save(fig, out / "records_by_group_language.png")
    plt.close(fig)
    written.append(f"{IMAGES}/records_by_group_language.png")

    sides = [(name, values) for name, values in facts.lengths.items() if values]
    if sides:
        import numpy as np

        shortest, longest = min(min(v) for _, v in sides), max(max(v) for _, v in sides)
        bins = np.unique(np.round(np.geomspace(max(1, shortest), max(shortest + 1, longest + 1), 40)))
        fig, ax = plt.subplots(figsize=(7.5, 3.6))
        for name, values in sides:
            ax.hist(values, bins=bins, histtype="step", linewidth=1.6,
                    label=f"{name} ({len(values):,}; median {int(np.median(values)):,} characters)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.xaxis.set_minor_formatter(StrMethodFormatter("{x:,.0f}"))  # shown only where few decades are
        ax.set_xlabel("characters (log scale)")
        ax.set_ylabel("texts")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Lengths of queries and documents")
        ax.legend(fontsize=8)
        fig.tight_layout()
        _save(fig, out / "lengths.png")
        plt.close(fig)
        written.append(f"{IMAGES}/lengths.png")

    if facts.rejected:
        reasons = facts.rejected.most_common()
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(reasons) + 1.4))
        ax.barh([r for r, _ in reasons], [n for _, n in reasons], color="tab:red")
        for y, (_, n) in enumerate(reasons):
            ax.text(n, y, f" {n:,}", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("answers rejected")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{sum(facts.rejected.values()):,} answers rejected, by reason "
                     f"(beside {facts.n_examples:,} kept)")
        ax.set_xlim(0, reasons[0][1] * 1.15)
        fig.tight_layout()
        _save(fig, out / "rejections.png")
        plt.close(fig)
        written.append(f"{IMAGES}/rejections.png")
    return written
