"""The results tables against the published scores, and the published files themselves."""

import csv

import pytest

from recipe.eval.plot import plot_categories
from recipe.eval.published_scores import Published, load_published
from recipe.eval.report import build_section, to_markdown, write_csv
from recipe.eval.tasks import benchmark_tasks, select_tasks

V1, V2 = "MTEB(eng, v1)", "MTEB(eng, v2)"


def _expected(benchmark):
    return {t.metadata.name: t.metadata.type for t in benchmark_tasks(benchmark)}


def test_published_file_covers_the_56_tasks_and_matches_the_papers_table_1():
    card = load_published("model_card")
    assert sorted(card.score) == sorted(t.metadata.name for t in select_tasks("MTEB(eng, v1)"))
    section = build_section({n: (card.task_type[n], card.score[n] / 100) for n in card.score}, card, V1)
    averages = {r.name: round(r.score, 1) for r in section.rows if r.level != "task"}
    # paper Table 1, "full data" row (PairClassification: the card's tasks give 88.4, the table 88.3)
    assert averages == {"Classification": 78.5, "Clustering": 50.3, "PairClassification": 88.4,
                        "Reranking": 60.2, "Retrieval": 56.9, "STS": 84.6, "Summarization": 31.4,
                        "Average": 66.6}
    assert load_published("results_repo").score["Banking77Classification"] == 81.41
    with pytest.raises(ValueError, match="model_card"):
        load_published("paper")


def test_published_v2_file_covers_the_41_tasks_and_agrees_with_v1_where_they_share_tasks():
    v2 = load_published("results_repo", V2)
    assert v2.task_type == _expected(V2)  # every task of mteb's MTEB(eng, v2), with its type
    # the leaderboard's mean over the 41 tasks for e5-mistral-7b-instruct
    assert round(sum(v2.score.values()) / len(v2.score), 2) == 67.97
    # the model card predates v2: model_card falls back to the results repository, and says so
    assert load_published("model_card", V2).score == v2.score
    assert "embeddings-benchmark/results" in load_published("model_card", V2).source
    v1 = load_published("results_repo", V1)
    shared = set(v1.score) & set(v2.score)
    assert len(shared) == 25 and all(abs(v1.score[n] - v2.score[n]) < 0.011 for n in shared)
    assert load_published("all_minilm_l6_v2", V2).score["STSBenchmark"] == 82.03


def test_partial_run_compares_each_average_with_the_same_tasks(tmp_path):
    published = load_published()
    scores = {"STSBenchmark": ("STS", 0.80), "STS12": ("STS", 0.70), "SciFact": ("Retrieval", 0.5),
              "MIRACLRetrieval": ("Retrieval", 0.6)}
    section = build_section(scores, published, V1, _expected(V1))
    by = {(r.level, r.name): r for r in section.rows}
    sts = by[("category", "STS")]
    assert sts.score == pytest.approx(75.0) and sts.tasks == "2/10"
    assert sts.published == pytest.approx((88.60 + published.score["STS12"]) / 2)
    assert sts.diff == pytest.approx(sts.score - sts.published)
    assert by[("task", "MIRACLRetrieval")].published is None
    assert by[("category", "Retrieval")].published is None  # not every task has a published score
    assert [r.name for r in section.rows if r.level == "task"] == ["MIRACLRetrieval", "SciFact", "STS12", "STSBenchmark"]
    assert by[("overall", "Average")].score == pytest.approx(65.0)

    write_csv([section], tmp_path / "r.csv")
    table = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert table[-1]["name"] == "Average" and table[-1]["tasks"] == "4/56" and table[-1]["benchmark"] == V1
    md = to_markdown([section], "local/model")
    assert "| STS | STSBenchmark | 80.00 | 88.60 | -8.60 |  |" in md
    plot_categories([section], tmp_path / "c.png", "local/model")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_both_benchmarks_get_their_own_averages_over_their_own_tasks(tmp_path):
    # fabricated scores: 50.00 on every task of the union, so each diff is 50 - that benchmark's mean
    v1, v2 = load_published("model_card", V1), load_published("model_card", V2)
    union = {n: (t, 0.5) for n, t in {**v1.task_type, **v2.task_type}.items()}
    sections = [build_section({n: s for n, s in union.items() if n in _expected(b)}, p, b, _expected(b))
                for b, p in [(V1, v1), (V2, v2)]]
    overall = {s.benchmark: s.overall for s in sections}
    assert overall[V1].tasks == "56/56" and overall[V2].tasks == "41/41"
    assert overall[V1].published == pytest.approx(sum(v1.score.values()) / 56)
    assert overall[V2].published == pytest.approx(67.97, abs=0.005)
    # a task in both benchmarks is compared with each benchmark's own published source
    by = {(s.benchmark, r.name): r for s in sections for r in s.rows}
    assert by[(V1, "Banking77Classification")].published == 88.23  # the model card's
    assert by[(V2, "Banking77Classification")].published == 81.41  # the mteb team's run

    md = to_markdown(sections, "local/model", "e5 (auto: ...)")
    assert f"| {V1} | 50.00 | 66.64 | -16.64 | 56/56 |" in md  # the paper's 66.6
    assert f"| {V2} | 50.00 | 67.97 | -17.97 | 41/41 |" in md
    assert md.index(f"## {V1}") < md.index(f"## {V2}") and "Protocol: e5 (auto: ...)." in md
    write_csv(sections, tmp_path / "r.csv")
    averages = [r for r in csv.DictReader((tmp_path / "r.csv").open()) if r["level"] == "overall"]
    assert [(r["benchmark"], r["tasks"]) for r in averages] == [(V1, "56/56"), (V2, "41/41")]
    plot_categories(sections, tmp_path / "c.png", "local/model")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    # only v2-only tasks run: the v1 section has nothing to say
    only_v2 = [build_section({"FEVERHardNegatives": ("Retrieval", 0.5)} if b == V2 else {}, p, b, _expected(b))
               for b, p in [(V1, v1), (V2, v2)]]
    assert f"## {V1}" not in to_markdown(only_v2, "local/model") and f"## {V2}" in to_markdown(only_v2, "m")


def test_both_runs_the_union_once():
    names = [t.metadata.name for t in select_tasks("both")]
    assert len(names) == len(set(names)) == 56 + 41 - 25
    assert set(names) == set(_expected(V1)) | set(_expected(V2))


def test_shipped_recipe_is_the_papers_protocol():
    from pathlib import Path

    from recipe.config import parse
    from recipe.eval.settings import EvalConfig

    root = Path(__file__).resolve().parents[1]
    cfg = parse(EvalConfig, ["--config", str(root / "recipe/configs/eval_mteb_eng.yaml"), "--model", "m"])
    assert cfg.protocol == "e5"
    assert cfg.instruction_template == "Instruct: {instruction}\nQuery: " == EvalConfig().instruction_template
    assert (cfg.benchmark, cfg.max_length, cfg.model) == ("MTEB(eng, v1)", 512, "m")


def test_collector_rebuilds_the_v2_file_from_result_files_as_the_results_repository_lays_them_out(tmp_path):
    import json

    import mteb

    from recipe.eval import collect_published
    from recipe.eval.published_scores import PUBLISHED_FILES

    shipped = list(csv.DictReader(PUBLISHED_FILES[V2].open()))
    for column, name in collect_published.MODELS.items():
        meta = mteb.get_model_meta(name)
        folder = tmp_path / "results" / meta.model_name_as_path() / meta.revision
        folder.mkdir(parents=True)
        version = column.removesuffix("_results_repo") + "_mteb_version"
        for row, task in zip(shipped, mteb.get_benchmark(V2).tasks):
            # the shipped score on every split and subset the benchmark counts, and a subset it does
            # not count (it must be filtered out, as the leaderboard does)
            subsets = list(task.hf_subsets) + ["not-in-the-benchmark"]
            scores = {split: [{"hf_subset": s, "languages": ["eng-Latn"],
                               "main_score": float(row[column]) / 100 if s in task.hf_subsets else 0.0}
                              for s in subsets] for split in task.eval_splits}
            (folder / f"{row['task_name']}.json").write_text(json.dumps({
                "dataset_revision": task.metadata.dataset["revision"], "task_name": row["task_name"],
                "mteb_version": row[version], "scores": scores, "evaluation_time": 1.0}))
    out = tmp_path / "v2.csv"
    assert collect_published.main(["--results-dir", str(tmp_path), "--output", str(out)]) == 0
    assert list(csv.DictReader(out.open())) == shipped
    assert collect_published.main(["--results-dir", str(tmp_path), "--output", str(out)]) == 2  # no --overwrite


def test_the_chart_labels_every_bar_names_each_average_by_its_tasks_and_its_legend_covers_none():
    from recipe.eval.plot import draw_categories

    published = load_published()
    scores = {"STS12": ("STS", 0.70), "STSBenchmark": ("STS", 0.80), "Banking77Classification": ("Classification", 0.9),
              "SciFact": ("Retrieval", 0.75)}
    for section in (build_section(scores, published, V1, _expected(V1)),
                    build_section(scores, Published(published.task_type, {}, ""), V1, _expected(V1),
                                  data="local files under tests/data/eval")):
        fig = draw_categories([section], "local/model")
        fig.canvas.draw()
        (ax,) = fig.axes
        names = [t.get_text() for t in ax.get_xticklabels()]
        assert "STS (2 tasks)" in names and "Average (4 tasks)" in names, names
        bars = [p for p in ax.patches if p.get_height() > 0]
        assert len(bars) == (8 if section.source else 4)  # 3 categories and the average, once or twice
        labels = [t.get_text() for t in ax.texts]
        assert labels[:4] == ["90.0", "75.0", "75.0", "78.8"], labels  # ours: the categories, then the average
        legend = ax.get_legend().get_window_extent()
        assert not any(legend.overlaps(bar.get_window_extent()) for bar in bars)
        md = to_markdown([section], "local/model")
        if not section.source:  # local data: no published column, no difference, and it says why
            assert "| STS | STSBenchmark | 80.00 |  |" in md and "diff" not in md and "88.60" not in md
            assert "Data: local files under tests/data/eval. The published scores were measured on other data" in md
