"""The results table against the published E5-Mistral scores, and the published file itself."""

import csv

import pytest

from recipe.eval.plot import plot_categories
from recipe.eval.published import load_published
from recipe.eval.report import build_rows, to_markdown, write_csv
from recipe.eval.tasks import select_tasks


def test_published_file_covers_the_56_tasks_and_matches_the_papers_table_1():
    card = load_published("model_card")
    assert sorted(card.score) == sorted(t.metadata.name for t in select_tasks("MTEB(eng, v1)"))
    rows = build_rows({n: (card.task_type[n], card.score[n] / 100) for n in card.score}, card)
    averages = {r.name: round(r.score, 1) for r in rows if r.level != "task"}
    # paper Table 1, "full data" row (PairClassification: the card's tasks give 88.4, the table 88.3)
    assert averages == {"Classification": 78.5, "Clustering": 50.3, "PairClassification": 88.4,
                        "Reranking": 60.2, "Retrieval": 56.9, "STS": 84.6, "Summarization": 31.4,
                        "Average": 66.6}
    assert load_published("results_repo").score["Banking77Classification"] == 81.41
    with pytest.raises(ValueError, match="model_card"):
        load_published("paper")


def test_partial_run_compares_each_average_with_the_same_tasks(tmp_path):
    published = load_published()
    scores = {"STSBenchmark": ("STS", 0.80), "STS12": ("STS", 0.70), "SciFact": ("Retrieval", 0.5),
              "MIRACLRetrieval": ("Retrieval", 0.6)}
    rows = build_rows(scores, published)
    by = {(r.level, r.name): r for r in rows}
    sts = by[("category", "STS")]
    assert sts.score == pytest.approx(75.0) and sts.tasks == "2/10"
    assert sts.published == pytest.approx((88.60 + published.score["STS12"]) / 2)
    assert sts.diff == pytest.approx(sts.score - sts.published)
    assert by[("task", "MIRACLRetrieval")].published is None
    assert by[("category", "Retrieval")].published is None  # not every task has a published score
    assert [r.name for r in rows if r.level == "task"] == ["MIRACLRetrieval", "SciFact", "STS12", "STSBenchmark"]
    assert by[("overall", "Average")].score == pytest.approx(65.0)

    write_csv(rows, tmp_path / "r.csv")
    table = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert table[-1]["name"] == "Average" and table[-1]["tasks"] == "4/56"
    md = to_markdown(rows, "local/model", "model_card")
    assert "| STS | STSBenchmark | 80.00 | 88.60 | -8.60 |  |" in md
    plot_categories(rows, tmp_path / "c.png", "local/model")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_shipped_recipe_is_the_papers_protocol():
    from pathlib import Path

    from recipe.config import parse
    from recipe.eval.settings import EvalConfig

    root = Path(__file__).resolve().parents[1]
    cfg = parse(EvalConfig, ["--config", str(root / "recipe/configs/eval_mteb_eng.yaml"), "--model", "m"])
    assert cfg.instruction_template == "Instruct: {instruction}\nQuery: " == EvalConfig().instruction_template
    assert (cfg.benchmark, cfg.max_length, cfg.model) == ("MTEB(eng, v1)", 512, "m")
    assert parse(EvalConfig, ["--instruction-template", "null"]).instruction_template is None
