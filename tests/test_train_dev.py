"""The dev set scored during training: held out before the plan (eval_split_size), scored every
eval_steps and at the end, and final/ the best-scoring checkpoint with load_best_model_at_end."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from tests.test_train_run import ENV, train
from tests.train_helpers import ROOT, SMOKE, smoke_config


def _log(out) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_held_out_pairs_never_train_even_when_a_ratio_repeats_them():
    from recipe.schema import RecordError
    from recipe.train.data import hold_out, load_examples

    cfg = smoke_config()
    examples = load_examples(cfg.data, [2.0], cfg.query_template, cfg.seed)  # every record twice
    train_set, dev = hold_out(examples, 20, cfg.seed)
    pairs = {(ex.query, ex.positive) for ex in dev}
    assert len(dev) == len(pairs) == 20
    assert not pairs & {(ex.query, ex.positive) for ex in train_set}
    assert len(train_set) == len(examples) - 2 * 20
    again = hold_out(load_examples(cfg.data, [2.0], cfg.query_template, cfg.seed), 20, cfg.seed)[1]
    assert [ex.where for ex in again] == [ex.where for ex in dev]  # seeded
    with pytest.raises(RecordError, match="eval_split_size 204: the data has 204 distinct query-positive pairs"):
        hold_out(examples, 204, cfg.seed)  # nothing left to train on


def test_dev_rows_never_train_and_are_scored_every_eval_steps_and_at_the_end(tmp_path):
    from recipe.train import outdir, run

    out = tmp_path / "run"
    cfg = smoke_config(output_dir=str(out), max_steps=5, save_steps=0, eval_split_size=24, eval_steps=2,
                       logging_steps=3, global_batch_size=16)
    t = run.build(cfg, outdir.inspect(out))
    held_out = {(ex.query, ex.positive) for ex in t.dev}
    assert len(held_out) == 24
    trained = {(t.examples[i].query, t.examples[i].positive) for batch in t.plan for i in batch}
    assert trained and not trained & held_out
    assert t.summary["records"] + 24 == 204  # the sample's records: held out, not dropped unsaid
    run.loop(t)
    rows = _log(out)
    # logged every 3 steps, scored every 2 and at the end, each beside that step's loss
    assert [r["step"] for r in rows] == [2, 3, 4, 5]
    assert [r["step"] for r in rows if "eval_accuracy" in r] == [2, 4, 5]
    for r in rows:
        assert math.isfinite(r["loss"])
        if "eval_accuracy" in r:
            assert 0 <= r["eval_accuracy"] <= 1 and math.isfinite(r["eval_loss"]) and r["eval_loss"] > 0
            share = r["eval_accuracy"] * 24  # a share of the 24 queries
            assert math.isclose(share, round(share), abs_tol=1e-4)
    assert rows[0]["eval_loss"] != rows[-1]["eval_loss"]  # it scores the weights of its step
    assert t.model.training  # back to train mode after scoring


def _adapter(weights: dict) -> dict:
    """A checkpoint's trainable weights under the names the exported adapter gives them."""
    return {n[n.index("base_model.model."):].replace(".default", ""): w for n, w in weights.items()}


# a learning rate that overshoots: the dev score peaks early, then the steps make it worse
BEST_ARGS = ["--max-steps", "8", "--eval-split-size", "32", "--eval-steps", "2", "--save-steps", "2",
             "--save-total-limit", "1", "--learning-rate", "5e-3", "--warmup-steps", "0",
             "--export-adapter-only", "true", "--load-best-model-at-end", "true"]


def test_final_holds_the_best_checkpoint_and_it_outlives_save_total_limit(tmp_path):
    """And a run killed after the best checkpoint and resumed still exports it: the steps scored
    before the resume count (train_log.jsonl), so final/ is the same as the straight run's."""
    out = tmp_path / "run"
    done = train(out, *BEST_ARGS)
    scored = {r["step"]: r["eval_accuracy"] for r in _log(out) if "eval_accuracy" in r}
    assert sorted(scored) == [2, 4, 6, 8]
    best = max(scored, key=lambda s: (scored[s], -s))  # the earliest of equals
    assert best != 8, f"the last step scored best ({scored}): the test would not tell best from last"
    assert f"final/ is checkpoint step-{best:06d}" in done.stdout
    assert f'"best_model_checkpoint": "step-{best:06d}"' in (out / "final" / "README.md").read_text()
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert f"step-{best:06d}" in kept and "step-000006" in kept  # the best, beside the newest one
    saved = _adapter(torch.load(out / "checkpoints" / f"step-{best:06d}" / "state.pt", weights_only=False)["weights"])
    final = load_file(out / "final" / "adapter_model.safetensors")
    assert final.keys() == saved.keys()
    assert all(torch.equal(final[n], saved[n]) for n in final)

    broken = tmp_path / "broken"
    cmd = [sys.executable, "train.py", "--config", str(SMOKE), "--output-dir", str(broken), *BEST_ARGS]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (broken / "checkpoints" / f"step-{best:06d}").is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (broken / "final").exists(), "the run finished before it could be killed"
    train(broken, *BEST_ARGS, "--resume")
    resumed = load_file(broken / "final" / "adapter_model.safetensors")
    assert all(torch.equal(final[n], resumed[n]) for n in final)


def test_inconsistent_dev_settings_are_refused_in_one_line(tmp_path, capsys):
    from recipe.commands import train as command

    cases = [
        (["--eval-split-size", "16", "--eval-steps", "2", "--save-steps", "3", "--load-best-model-at-end", "true"],
         "'load_best_model_at_end' needs save_steps (3) to be a multiple of eval_steps (2)"),
        (["--load-best-model-at-end", "true"], "'load_best_model_at_end' needs a dev set to pick by"),
        (["--eval-split-size", "16", "--eval-steps", "5", "--load-best-model-at-end", "true",
          "--merge-checkpoints", "2"],
         "'load_best_model_at_end' and 'merge_checkpoints' both say what final/ holds"),
        (["--eval-split-size", "-1"], "'eval_split_size' = -1 must be >= 0"),
    ]
    for i, (args, said) in enumerate(cases):
        out = tmp_path / f"run{i}"
        assert command.main(["--config", str(SMOKE), "--output-dir", str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {said}") and len(err.splitlines()) == 1, err
        assert not out.exists()
