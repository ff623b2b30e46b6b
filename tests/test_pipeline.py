"""The four stages chained as a user runs them: synthesize against the loopback teacher, train the
smoke recipe on that output folder, then evaluate the exported model with eval.py on local data."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(args, env):
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_synthesize_train_evaluate(teacher, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    synth, model, results = tmp_path / "synth", tmp_path / "run", tmp_path / "results"
    _run(["data/synthesize.py", "--config", "recipe/configs/synth_e5.yaml", "--output-dir", str(synth),
          "--num-examples", "64", "--progress", "false"], env)
    _run(["train.py", "--config", "recipe/configs/smoke.yaml", "--data", str(synth), "--num-train-epochs", "1",
          "--output-dir", str(model)], env)
    assert (model / "final" / "modules.json").is_file()
    _run(["eval.py", "--model", str(model / "final"), "--tasks", "STSBenchmark",
          "--data-dir", "tests/data/eval", "--output-dir", str(results)], env)
    table = (results / "results.csv").read_text()
    assert "STSBenchmark" in table
    rows = [json.loads(x) for x in (synth / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 64
