"""Published per-task scores to set beside ours: E5-Mistral (and all-MiniLM-L6-v2) on MTEB(eng, v1)
and MTEB(eng, v2); where each number comes from is in published/README.md."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from recipe.config import ConfigError


FOLDER = Path(__file__).parent / "published"
PUBLISHED_FILES = {"MTEB(eng, v1)": FOLDER / "mteb_eng_v1_published.csv",
                   "MTEB(eng, v2)": FOLDER / "mteb_eng_v2_published.csv"}
COLUMNS = {
    "model_card": "e5_mistral_7b_instruct_model_card",
    "results_repo": "e5_mistral_7b_instruct_results_repo",
    "all_minilm_l6_v2": "all_minilm_l6_v2",
}
SOURCES = {
    "e5_mistral_7b_instruct_model_card": "e5-mistral-7b-instruct, its model card (the paper's numbers)",
    "e5_mistral_7b_instruct_results_repo": "e5-mistral-7b-instruct, the mteb team's runs "
                                           "(embeddings-benchmark/results)",
    "all_minilm_l6_v2": "all-MiniLM-L6-v2, the mteb team's runs (embeddings-benchmark/results)",
}


@dataclass(frozen=True)
class Published:
    task_type: dict[str, str]  # task name -> mteb task type
    score: dict[str, float]    # task name -> main score in percent
    source: str = ""           # whose scores and from where, for the report's header


def load_published(reference: str = "model_card", benchmark: str = "MTEB(eng, v1)") -> Published:
    """The `reference` column for `benchmark`'s tasks; another benchmark (BEIR, '' ...) looks its
    tasks up in both files, v1 first. MTEB(eng, v2) has no model-card scores: the model card
    predates it, so `model_card` reads the results repository's there (the header says so)."""
    if reference not in COLUMNS:  # eval.py's settings check it; this is for callers in code
        raise ConfigError(f"reference {reference!r}: choose one of {', '.join(COLUMNS)}")
    files = [PUBLISHED_FILES[benchmark]] if benchmark in PUBLISHED_FILES else list(PUBLISHED_FILES.values())
    task_type, score, sources = {}, {}, []
    for path in files:
        with path.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        column = COLUMNS[reference]
        if column not in rows[0]:
            column = COLUMNS["results_repo"]
        for r in rows:
            task_type.setdefault(r["task_name"], r["task_type"])
            score.setdefault(r["task_name"], float(r[column]))
        if SOURCES[column] not in sources:
            sources.append(SOURCES[column])
    return Published(task_type=task_type, score=score, source="; ".join(sources))
