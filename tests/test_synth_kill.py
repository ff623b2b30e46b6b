"""kill -9 a real synthesis process at several moments; the resumed run ends with exactly N
unique examples and never asks again for an answer that was already saved."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

N = 150


def _count(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def _saved_jobs(out):
    return {json.loads(line)["job"] for name in ("examples", "rejected")
            if (out / f"{name}.jsonl").exists()
            for line in (out / f"{name}.jsonl").read_text().splitlines() if line.strip()}


def _start(out, env, mode="online"):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "data/synthesize.py"), "--config", str(ROOT / "recipe/configs/synth_e5.yaml"),
         "--output-dir", str(out), "--num-examples", str(N), "--concurrency", "16", "--progress", "false",
         "--mode", mode, "--batch-size", "40", "--batch-poll", "0.05"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("kill_at", [0, 20, 60, 110])  # examples on disk when the kill lands
def test_kill9_then_resume_gives_exactly_n_and_never_reasks(teacher, tmp_path, kill_at):
    teacher.latency = 0.02
    teacher.fault_rate = 0.15  # rejections and retries happen around the kill too
    env = dict(os.environ)
    proc = _start(tmp_path, env)
    deadline = time.time() + 60
    watch, at = (tmp_path / "examples.jsonl", kill_at) if kill_at else (tmp_path / "tasks.jsonl", 1)  # 0: mid-brainstorm
    while _count(watch) < at and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _saved_jobs(tmp_path)
    asked_before = len(teacher.log)

    proc = _start(tmp_path, env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    recs = [json.loads(x) for x in (tmp_path / "examples.jsonl").read_text().splitlines()]
    assert len(recs) == N
    assert len({r["id"] for r in recs}) == N and len({r["job"] for r in recs}) == N
    asked_after = {e["job"] for e in teacher.log[asked_before:]}
    assert not {f"generate/{j}" for j in before} & asked_after
