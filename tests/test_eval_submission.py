"""A model train.py's smoke recipe exported, evaluated as a user would: the protocol eval.py chooses
for it, and `--submission`: the folder the MTEB results repository takes and the ModelMeta for
mteb, checked with mteb's own classes."""

import json
import os
import subprocess
import sys

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import mteb  # noqa: E402
import pytest  # noqa: E402
from mteb.models.model_meta import ModelMeta  # noqa: E402
from mteb.results import TaskResult  # noqa: E402

import eval as eval_cli  # noqa: E402  (the top-level eval.py)
from tests.conftest import ROOT  # noqa: E402

DATA = Path(__file__).parent / "data" / "eval"
SAMPLE = ROOT / "data" / "samples" / "synthetic_sample.jsonl"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """train.py's smoke recipe, two steps, on a mix: the sample records, half of them labelled as
    the public NQ set (as data/build_mix.py labels each record's source)."""
    root = tmp_path_factory.mktemp("smoke")
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    mix = root / "mix.jsonl"
    mix.write_text("".join(json.dumps({**r, "source": "nq" if i % 2 else "synthetic"}) + "\n"
                           for i, r in enumerate(records)))
    done = subprocess.run(
        [sys.executable, "train.py", "--config", "recipe/configs/smoke.yaml", "--data", str(mix),
         "--max-steps", "2", "--epochs", "1", "--save-steps", "0", "--output-dir", str(root / "run"),
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
    assert meta.reference == "https://huggingface.co/someone/e5-smoke" and meta.experiment_kwargs is None

    # model_meta.py: the same ModelMeta as Python for mteb's model_implementations
    namespace = {}
    exec((out / "submission" / "model_meta.py").read_text(), namespace)
    (snippet,) = [v for v in namespace.values() if isinstance(v, ModelMeta)]
    assert snippet.to_dict() == json.loads((folder / "model_meta.json").read_text())

    # every training set named is a task mteb knows
    from recipe.eval.submission import TRAINED_ON

    for name in {t for tasks in TRAINED_ON.values() for t in tasks}:
        assert mteb.get_task(name).metadata.name == name
