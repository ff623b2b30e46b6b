"""A model train.py's smoke recipe exported, evaluated as a user would: the protocol eval.py chooses
for it, and `--submission`: the folder the MTEB results repository takes and the ModelMeta for
mteb, checked with mteb's own classes."""

import json
import os
import subprocess
import sys
from datetime import date

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import mteb  # noqa: E402
import pytest  # noqa: E402
from mteb.models.model_meta import ModelMeta  # noqa: E402
from mteb.results import TaskResult  # noqa: E402

import eval as eval_cli  # noqa: E402  (the top-level eval.py)
from recipe.commands.decontaminate import main as decontaminate  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

DATA = Path(__file__).parent / "data" / "eval"
SAMPLE = ROOT / "data" / "samples" / "synthetic_sample.jsonl"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """train.py's smoke recipe, two steps, on a mix: the sample records, half of them labelled as
    the public NQ set (as data/build_mix.py labels each record's source), one synthetic record
    whose positive is an STS Benchmark test sentence, and data/decontaminate.py's --report-only
    report of the mix beside it (so the overlap stays in the training data)."""
    root = tmp_path_factory.mktemp("smoke")
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    sts = json.loads((DATA / "STSBenchmark" / "test.jsonl").read_text().splitlines()[0])["sentence1"]
    records.append({**records[0], "id": "leaked", "positive": sts})
    mix = root / "mix.jsonl"
    mix.write_text("".join(json.dumps({**r, "source": "nq" if i % 2 else "synthetic"}) + "\n"
                           for i, r in enumerate(records)))
    assert decontaminate(["--input", str(mix), "--report-only", "--report", str(root / "mix.decontamination.json"),
                          "--benchmark", "", "--tasks", "STSBenchmark", "--data-dir", str(DATA)]) == 0
    done = subprocess.run(
        [sys.executable, "train.py", "--config", "recipe/configs/smoke.yaml", "--data", str(mix),
         "--max-steps", "2", "--num-train-epochs", "1", "--save-steps", "0", "--output-dir", str(root / "run"),
         "--license", "apache-2.0", "--hub-model-id", "someone/e5-smoke"],
        cwd=ROOT, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run" / "final", len(records)


def test_export_records_what_a_submission_needs(smoke):
    final, n = smoke
    info = json.loads((final / "training_info.json").read_text())
    assert info["base_model"] == "tiny-mistral" and info["license"] == "apache-2.0"
    assert info["hub_model_id"] == "someone/e5-smoke" and info["embed_dim"] == 64
    assert info["n_parameters"] > info["n_embedding_parameters"] > 0
    parts = {p["name"]: p for p in info["training_data"]}
    assert parts["nq"]["hub_id"] == "sentence-transformers/natural-questions"
    assert parts["synthetic"]["hub_id"] is None
    assert parts["nq"]["records"] + parts["synthetic"]["records"] == n


def test_smoke_model_runs_e5_and_submission_is_what_the_results_repository_and_mteb_take(smoke, tmp_path, capsys):
    final, _ = smoke
    data = tmp_path / "data" / "STSBenchmark"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text("".join((DATA / "STSBenchmark" / "test.jsonl").read_text().splitlines(True)[:100]))
    out = tmp_path / "out"
    argv = ["--model", str(final), "--tasks", "STSBenchmark", "--data-dir", str(tmp_path / "data"),
            "--output-dir", str(out), "--submission", "--chart", "false"]
    assert eval_cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "protocol: e5 (auto: its saved query prompt contains 'Instruct:'" in err

    # the results repository's layout: results/<org>__<name>/<revision>/, the Hub id train.py recorded
    (folder,) = (out / "submission" / "results" / "someone__e5-smoke").iterdir()
    (experiment,) = (out / "results").glob("local__*/*/experiments/*")
    assert folder.name == experiment.parent.parent.name  # the revision this run evaluated
    assert sorted(p.name for p in folder.iterdir()) == ["STSBenchmark.json", "model_meta.json", "run_settings.jsonl"]
    result = TaskResult.from_disk(folder / "STSBenchmark.json")
    assert result.get_score() == TaskResult.from_disk(experiment / "STSBenchmark.json").get_score()
    (settings,) = [json.loads(line) for line in (folder / "run_settings.jsonl").read_text().splitlines()]
    assert settings["task"] == "STSBenchmark" and settings["version"]["mteb"] == mteb.__version__

    # model_meta.json: mteb's own ModelMeta reads it, with what the leaderboard asks for
    meta = ModelMeta.model_validate_json_resolved((folder / "model_meta.json").read_text())
    info = json.loads((final / "training_info.json").read_text())
    assert (meta.name, meta.revision) == ("someone/e5-smoke", folder.name)
    assert meta.loader.__name__ == "InstructSentenceTransformerModel" and meta.use_instructions
    assert meta.loader_kwargs["instruction_template"] == "Instruct: {instruction}\nQuery: "
    assert (meta.n_parameters, meta.embed_dim, meta.license) == (info["n_parameters"], 64, "apache-2.0")
    assert meta.release_date == info["exported"] and meta.open_weights
    assert {"NQ", "NQHardNegatives"} <= meta.training_datasets  # the public set in the mix
    assert "synthetic" in meta.training_datasets  # the synthetic data, as its own entry
    assert "STSBenchmark" in meta.training_datasets  # its test sentence stayed in the training data
    (report,) = info["decontamination"]
    assert (report["overlapping_tasks"], report["overlaps_kept"], report["removed"]) == (["STSBenchmark"], True, 1)
    # what the leaderboard shows of a model trained here: none of it left empty
    for key in ("n_parameters", "n_embedding_parameters", "release_date", "training_datasets", "memory_usage_mb",
                "max_tokens", "embed_dim", "license", "open_weights", "framework", "reference", "similarity_fn_name"):
        assert getattr(meta, key) not in (None, "", [], set()), key
    assert meta.release_date == date.today().isoformat()  # the training date (the smoke run trained today)
    assert meta.reference == "https://huggingface.co/someone/e5-smoke" and meta.experiment_kwargs is None

    # model_meta.py: the same ModelMeta as Python for mteb's model_implementations
    namespace = {}
    source = (out / "submission" / "model_meta.py").read_text()
    assert "# decontamination of " in source and "1 of " in source and "tasks: STSBenchmark" in source
    exec(source, namespace)
    (snippet,) = [v for v in namespace.values() if isinstance(v, ModelMeta)]
    from recipe.eval.submission import meta_dict

    assert meta_dict(snippet) == json.loads((folder / "model_meta.json").read_text())

    # every training set named is a task mteb knows
    from recipe.eval.submission import TRAINED_ON

    for name in {t for tasks in TRAINED_ON.values() for t in tasks}:
        assert mteb.get_task(name).metadata.name == name


def test_a_pushed_model_reads_its_training_info_from_the_hub(smoke, monkeypatch):
    """A Hub id: training_info.json comes with the model's revision (hf_hub_download, which reads
    the local cache offline), so a pushed model's ModelMeta is as full as the local folder's."""
    import huggingface_hub

    from recipe.eval.submission import trained_on, training_info

    final, _ = smoke
    asked = []

    def download(repo_id, filename, revision=None, **kwargs):
        asked.append((repo_id, filename, revision))
        return str(final / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    info = training_info("someone/e5-smoke", "0123abcd")
    assert asked == [("someone/e5-smoke", "training_info.json", "0123abcd")]
    assert info == json.loads((final / "training_info.json").read_text())
    assert {"NQ", "synthetic", "STSBenchmark"} <= trained_on(info)
    # a model trained elsewhere has none: no entry rather than an empty one
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: (_ for _ in ()).throw(OSError("404")))
    assert training_info("someone/other", "0123abcd") == {} and trained_on({}) is None
    # records without a source are named by their file, not by where it lay on the training machine
    assert trained_on({"training_data": [{"name": "/home/me/out/synth-clean.jsonl", "hub_id": None},
                                         {"name": "me/e5-data", "hub_id": "me/e5-data"}]}) == {"synth-clean", "me/e5-data"}
