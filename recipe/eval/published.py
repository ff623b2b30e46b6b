"""Published per-task scores of E5-Mistral (and all-MiniLM-L6-v2) on MTEB(eng, v1); see published/README.md."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from recipe.config import ConfigError

PUBLISHED_CSV = Path(__file__).parent / "published" / "mteb_eng_v1_published.csv"
COLUMNS = {
    "model_card": "e5_mistral_7b_instruct_model_card",
    "results_repo": "e5_mistral_7b_instruct_results_repo",
    "all_minilm_l6_v2": "all_minilm_l6_v2",
}


@dataclass(frozen=True)
class Published:
    task_type: dict[str, str]  # task name -> mteb task type
    score: dict[str, float]    # task name -> main score in percent


def load_published(reference: str = "model_card", path: Path = PUBLISHED_CSV) -> Published:
    if reference not in COLUMNS:
        raise ConfigError(f"--reference {reference!r}: choose one of {', '.join(COLUMNS)}")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    column = COLUMNS[reference]
    return Published(task_type={r["task_name"]: r["task_type"] for r in rows},
                     score={r["task_name"]: float(r[column]) for r in rows})
