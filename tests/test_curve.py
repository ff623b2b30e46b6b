"""benchmarks/curve.py's plumbing, small: the shipped real-teacher sample as the synthesis, a tiny
decoder under SmolLM2-Instruct's real tokenizer as the student, one small eval. Every arm, size
and seed runs once, the floors are scored (PromptEOL without EOS), the table and plot are
written, a rerun skips every stage, and bad input is one line with nothing written."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from tests.test_instruct_base import _installed, instruct_folder
from tests.test_miniature import small_eval

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STUDENT = "smollm2-135m-instruct"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "real_teacher"


@pytest.fixture(scope="module")
def curve():
    return importlib.import_module("benchmarks.curve")


def test_the_curve_trains_every_arm_size_and_seed_once_and_resumes(curve, tmp_path, capsys):
    if not _installed(STUDENT):
        pytest.skip(f"{STUDENT} is not installed")
    student = instruct_folder(tmp_path, STUDENT)
    work = tmp_path / "work"
    synthesis = tmp_path / "synthesis"  # 30 of the sample's examples: mining and filtering them is quick
    synthesis.mkdir()
    written = (SAMPLE / "examples.jsonl").read_text().splitlines(True)[:36]  # the curve takes the first 30
    (synthesis / "examples.jsonl").write_text("".join(written))
    argv = ["--synthesis", str(synthesis), "--output-dir", str(work), "--sizes", "4,8", "--seeds", "0,1",
            "--arms", "synthetic,mix",
            "--student", str(student), "--tasks", "STSBenchmark", "--eval-data", str(small_eval(tmp_path)),
            "--max-length", "32", "--batch-size", "4", "--mini-batch-size", "2", "--dev-size", "8",
            "--threads", "1", "--learning-rate", "1e-2,1e-4", "--num-examples", "30"]
    assert curve.main(argv) == 0
    report = json.loads((work / "curve.json").read_text())
    runs = report["results"]
    assert set(runs) == {"base/0", "prompteol/0", "synthetic/4", "synthetic/8", "mix/8"}
    # every seed at the largest N only, and the mix holds both pools' N
    assert [len(runs[k]) for k in ("synthetic/4", "synthetic/8", "mix/8")] == [1, 2, 2]
    assert (work / "data" / "synthesis-examples.jsonl").read_text() == "".join(written[:30])
    mix = (work / "data" / "mix-8.jsonl").read_text().splitlines()
    assert len(mix) == 16
    assert all(0 <= r["dev"] <= 100 for k, rs in runs.items() if "/" in k and not k.startswith(("base", "prompt"))
               for r in rs)
    # the dev pairs never reach a training pool
    dev = {json.loads(x)["query"] for x in (work / "data" / "dev.jsonl").read_text().splitlines()}
    pool = {json.loads(x)["query"] for x in (work / "data" / "synthetic-pool.jsonl").read_text().splitlines()}
    assert len(dev) == 8 and not dev & pool
    # the PromptEOL floor was scored as a plain model with the template, the base under the recipe's
    log = (work / "logs" / "eval-prompteol.log").read_text()
    assert "--text-template" in log and "--protocol plain" in log
    assert (work / "curve.png").stat().st_size > 10_000
    md = (work / "curve.md").read_text()
    assert "± " in md and "untrained, PromptEOL prompt" in md
    assert not any(t["skipped"] for t in report["stages"].values())
    # the sweep: both rates trained at the largest N and the first seed; the better dev chooses, and
    # only the chosen rate's runs are scored on a test set
    sweep = report["sweep"]
    assert set(sweep) == {"0.01", "0.0001"}
    best = max(sweep, key=lambda r: (sweep[r]["dev"], -float(r)))
    assert report["learning_rate"] == float(best)
    other = next(r for r in sweep if r != best)
    assert (work / "runs" / f"synthetic-8-s0-lr{other}" / "final").is_dir()
    assert not (work / "evals" / f"synthetic-8-s0-lr{other}").exists()
    assert {p.name for p in (work / "evals").iterdir()} == {
        "base", "prompteol", *(f"{a}-{n}-s{s}-lr{best}" for a, n, s in
                               [("synthetic", 4, 0), ("synthetic", 8, 0), ("synthetic", 8, 1), ("mix", 8, 0), ("mix", 8, 1)])}
    assert "(chosen)" in md and "The sweep" in md

    assert curve.main(argv) == 0
    again = json.loads((work / "curve.json").read_text())
    assert all(t["skipped"] for t in again["stages"].values())
    assert again["results"] == runs
    assert "| eval-base | " in (work / "curve.md").read_text() and "| done before, skipped |" in (work / "curve.md").read_text()

    # a largest N the filtered pool cannot fill stops after the data stage, before any sweep or
    # training at a smaller N than asked for
    strict = tmp_path / "strict"
    asked = ["--sizes", "4,22", "--filter-top-k", "1", "--output-dir", str(strict)]
    assert curve.main([*argv[:argv.index("--output-dir")], *argv[argv.index("--output-dir") + 2:], *asked]) == 2
    assert "--sizes 22: the data stage kept " in capsys.readouterr().err
    assert not (strict / "runs").exists() and not (strict / "evals").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--sizes", "10,x", "'sizes' = 'x' is not an integer"),
    ("--sizes", "-5", "--sizes -5: give at least one number, none negative"),
    ("--arms", "synthetic,real", "--arms 'real': choose one of synthetic, control, mix"),
    ("--learning-rate", "1e-3,x", "'learning_rate' = 'x' is not a number"),
    ("--learning-rate", "0", "every one above 0"),
    ("--num-examples", "100000", "--num-examples 100000: "),
    ("--sizes", "250,4000", "--sizes 4000: "),  # before any stage pays for it
    ("--sizes", "250,4000 --filter-top-k 0", "dev pairs; give more --num-examples"),  # no filter to blame
    ("--synthesis", "nowhere", "--synthesis nowhere: no examples.jsonl"),
    ("--save-steps", "-1", "--save-steps -1: every N steps, or 0 (never)"),
    ("--filter-top-k", "-1", "--filter-top-k -1: the rank a positive must reach, or 0 (no filter)"),
])
def test_bad_input_is_one_line_and_writes_nothing(curve, tmp_path, capsys, flag, value, message):
    work = tmp_path / "work"
    argv = ["--synthesis", str(SAMPLE), "--output-dir", str(work), flag, *value.split()]
    assert curve.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not work.exists()


def test_a_training_cut_midway_resumes_from_its_checkpoint_on_the_next_run(curve, tmp_path, monkeypatch):
    if not _installed(STUDENT):
        pytest.skip(f"{STUDENT} is not installed")
    student = instruct_folder(tmp_path, STUDENT)
    synthesis = tmp_path / "synthesis"
    synthesis.mkdir()
    (synthesis / "examples.jsonl").write_text("".join((SAMPLE / "examples.jsonl").read_text().splitlines(True)[:30]))
    work = tmp_path / "work"
    argv = ["--synthesis", str(synthesis), "--output-dir", str(work), "--sizes", "8", "--seeds", "0",
            "--arms", "synthetic", "--student", str(student), "--tasks", "STSBenchmark",
            "--eval-data", str(small_eval(tmp_path)), "--max-length", "32", "--batch-size", "4",
            "--mini-batch-size", "2", "--dev-size", "8", "--threads", "1", "--num-train-epochs", "2",
            "--save-steps", "1", "--num-examples", "30"]
    real = curve.command
    calls = []

    def cut_after_three_steps(module, args, log):
        if module == "train":
            calls.append(args)
        if module == "train" and len(calls) == 1:
            real(module, [*args, "--max-steps", "3"], log)  # the sitting is stopped after step 3
            raise SystemExit("train: killed")
        real(module, args, log)

    monkeypatch.setattr(curve, "command", cut_after_three_steps)
    assert curve.main(argv) == 1
    run = work / "runs" / "synthetic-8-s0-lr0.001"
    assert [int(p.name.split("-")[1]) for p in (run / "checkpoints").iterdir()] == [1, 2]
    first = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first] == [1, 2, 3]  # step 3's checkpoint was never written

    assert curve.main(argv) == 0
    assert "--overwrite" in calls[0] and "--resume" in calls[1] and "--overwrite" not in calls[1]
    assert "resumed from step 2" in (work / "logs" / "train-synthetic-8-s0-lr0.001.log").read_text()
    rows = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[:2] == first[:2]
    report = json.loads((work / "curve.json").read_text())
    assert report["results"]["synthetic/8"][0]["steps"] == 4
    # the stage's time counts the steps of the cut sitting too, not only the short one that finished it
    steps_s = report["stages"]["train-synthetic-8-s0-lr0.001"]["steps_s"]
    assert abs(steps_s - sum(r["step_time_s"] for r in rows)) < 0.01 * len(rows) + 0.1
    assert "| train-synthetic-8-s0-lr0.001 | " in (work / "curve.md").read_text()
    assert f" | {steps_s:.0f} | ran |" in (work / "curve.md").read_text()

    # a run of other settings in the folder is replaced, never continued
    (work / "stages" / "train-synthetic-8-s0-lr0.001.json").unlink()
    (work / "runs" / "synthetic-8-s0-lr0.001.stage").write_text("another\n")
    assert curve.main(argv) == 0
    assert len(calls) == 3 and "--overwrite" in calls[2]


def test_filter_top_k_0_keeps_every_mined_pair_as_the_paper_does(curve, tmp_path):
    from types import SimpleNamespace

    lines = (SAMPLE / "examples.jsonl").read_text().splitlines(True)[:30]
    work = tmp_path / "work"
    for k, kept in ((0, 30), (1, None)):
        args = SimpleNamespace(examples="".join(lines), data_seed=0, dev_size=8, sizes=[4], filter_top_k=k)
        data = curve.prepare(args, work / str(k))
        assert data["synthetic_mined"] == 30 and data["dev"] == 8
        if kept:  # unfiltered: the pool is every mined pair but the dev ones
            assert data["synthetic_kept"] == kept and data["synthetic_pool"] == 22
            assert not (work / str(k) / "data" / "synthetic-removed.jsonl").exists()
        else:  # the strictest filter drops some of the same pairs
            assert data["synthetic_kept"] < 30
