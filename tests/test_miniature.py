"""benchmarks/miniature.py's plumbing, small, through its command line: the loopback teacher
double in place of the local teacher, a tiny decoder under SmolLM2-Instruct's real tokenizer in
place of the student, one small eval. Every stage runs once; a rerun skips them all; a folder it
did not make is refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recipe.schema import TASK_GROUPS
from tests.conftest import ROOT
from tests.test_instruct_base import _installed, instruct_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STUDENT = "smollm2-135m-instruct"
MINIATURE = [sys.executable, str(ROOT / "benchmarks" / "miniature.py")]


def miniature(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MINIATURE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


def small_eval(root: Path) -> Path:
    folder = root / "eval" / "STSBenchmark"
    folder.mkdir(parents=True)
    rows = (Path(__file__).parent / "data" / "eval" / "STSBenchmark" / "test.jsonl").read_text().splitlines()[:60]
    (folder / "test.jsonl").write_text("\n".join(rows) + "\n")
    return folder.parent


def test_the_miniature_runs_every_stage_once_and_resumes(teacher, tmp_path):
    if not _installed(STUDENT):
        pytest.skip(f"{STUDENT} is not installed")
    student = instruct_folder(tmp_path, STUDENT)
    work = tmp_path / "work"
    argv = ["--output-dir", str(work), "--teacher-url", teacher.base_url, "--teacher-model", "fake",
            "--num-examples", "12", "--concurrency", "4", "--student", str(student), "--tasks", "STSBenchmark",
            "--eval-data", str(small_eval(tmp_path)), "--max-length", "32", "--filter-top-k", "12", "--batch-size", "4"]
    done = miniature(*argv)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((work / "miniature.json").read_text())
    assert set(report["synthesis"]["per_group"]) == set(TASK_GROUPS)  # all six groups at this scale
    assert report["data"]["control"] == report["data"]["synthetic_kept"]
    assert set(report["scores"]) == {"base", "synthetic", "control"}
    assert all(-1 <= s["STSBenchmark"] <= 100 for s in report["scores"].values())
    assert (work / "publish" / "README.md").is_file()
    assert not any(t["skipped"] for t in report["stages"].values())
    # evaluation in bfloat16 only where the CPU computes it, and the dtype is part of the stage's signature
    evaluated = json.loads((work / "stages" / "eval-base.json").read_text())["settings"]
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    assert evaluated["dtype"] == ("bfloat16" if "avx512_bf16" in cpu or "amx_bf16" in cpu else "float32")
    # structured outputs are on unless asked otherwise: the teacher was sent each schema
    assert all(e["response_format"] is not None for e in teacher.log)
    table = (work / "miniature.md").read_text()
    assert table.count("| trained on") == 2 and "STSBenchmark" in table
    requests = len(teacher.log)
    assert requests >= 12

    done = miniature(*argv)  # a rerun: nothing to do
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((work / "miniature.json").read_text())
    assert all(t["skipped"] for t in again["stages"].values())
    assert again["scores"] == report["scores"]
    assert len(teacher.log) == requests  # not one teacher call paid twice


def test_a_folder_it_did_not_make_is_refused(tmp_path):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    done = miniature("--output-dir", str(work), "--from-sample", str(tmp_path))
    assert done.returncode == 2
    assert "not made by benchmarks/miniature.py" in done.stderr
    assert [p.name for p in work.iterdir()] == ["notes.txt"]


def test_the_synthesis_stage_sends_no_schema_without_structured_outputs(teacher, tmp_path):
    """The first test sees the schemas sent by default; here the stage runs with them off and the
    command is stopped once the stage is recorded, before the slower stages."""
    work = tmp_path / "work"
    proc = subprocess.Popen([*MINIATURE, "--output-dir", str(work), "--teacher-url", teacher.base_url,
                             "--teacher-model", "fake", "--num-examples", "6", "--concurrency", "2",
                             "--max-tokens", "256", "--structured-outputs", "false"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (work / "stages" / "synthesis.json").is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    proc.kill()
    _, err = proc.communicate()
    assert (work / "stages" / "synthesis.json").is_file(), err[-3000:]
    assert len([line for line in (work / "synthesis" / "examples.jsonl").read_text().splitlines() if line]) == 6
    assert teacher.log and all(e["response_format"] is None for e in teacher.log)
