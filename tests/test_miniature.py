"""benchmarks/miniature.py's plumbing, small: the loopback teacher double in place of the local
teacher, a tiny decoder under SmolLM2-Instruct's real tokenizer in place of the student, one
small eval. Every stage runs once; a rerun skips them all; a folder it did not make is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script
from tests.test_instruct_base import _installed, instruct_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STUDENT = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def miniature():
    return load_script("benchmarks/miniature.py")


def small_eval(root: Path) -> Path:
    folder = root / "eval" / "STSBenchmark"
    folder.mkdir(parents=True)
    rows = (Path(__file__).parent / "data" / "eval" / "STSBenchmark" / "test.jsonl").read_text().splitlines()[:60]
    (folder / "test.jsonl").write_text("\n".join(rows) + "\n")
    return folder.parent


def test_the_miniature_runs_every_stage_once_and_resumes(miniature, teacher, tmp_path, capsys):
    if not _installed(STUDENT):
        pytest.skip(f"{STUDENT} is not installed")
    student = instruct_folder(tmp_path, STUDENT)
    work = tmp_path / "work"
    argv = ["--work-dir", str(work), "--teacher-url", teacher.base_url, "--teacher-model", "fake",
            "--num-examples", "12", "--concurrency", "4", "--student", str(student), "--tasks", "STSBenchmark",
            "--eval-data", str(small_eval(tmp_path)), "--max-length", "32", "--filter-top-k", "12", "--batch-size", "4"]
    assert miniature.main(argv) == 0
    report = json.loads((work / "miniature.json").read_text())
    assert set(report["synthesis"]["per_group"]) == set(miniature.GROUPS)  # all six groups at this scale
    assert report["data"]["control"] == report["data"]["synthetic_kept"]
    assert set(report["scores"]) == {"base", "synthetic", "control"}
    assert all(-1 <= s["STSBenchmark"] <= 100 for s in report["scores"].values())
    assert (work / "publish" / "README.md").is_file()
    assert not any(t["skipped"] for t in report["stages"].values())
    # evaluation in bfloat16 only where the CPU computes it, and the dtype is part of the stage's signature
    evaluated = json.loads((work / "stages" / "eval-base.json").read_text())["settings"]
    assert evaluated["dtype"] == ("bfloat16" if miniature.native_bf16() else "float32")
    # structured outputs are on unless asked otherwise: the teacher was sent each schema
    assert all(e["response_format"] is not None for e in teacher.log)
    table = (work / "miniature.md").read_text()
    assert table.count("| trained on") == 2 and "STSBenchmark" in table
    requests = len(teacher.log)
    assert requests >= 12
    capsys.readouterr()

    assert miniature.main(argv) == 0  # a rerun: nothing to do
    again = json.loads((work / "miniature.json").read_text())
    assert all(t["skipped"] for t in again["stages"].values())
    assert again["scores"] == report["scores"]
    assert len(teacher.log) == requests  # not one teacher call paid twice


def test_a_folder_it_did_not_make_is_refused(miniature, tmp_path, capsys):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    assert miniature.main(["--work-dir", str(work), "--from-sample", str(tmp_path)]) == 2
    assert "not made by benchmarks/miniature.py" in capsys.readouterr().err
    assert [p.name for p in work.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("on", [False, True])
def test_the_synthesis_stage_sends_the_schemas_only_with_structured_outputs(miniature, teacher, tmp_path, on):
    import argparse

    args = argparse.Namespace(from_sample="", num_examples=6, teacher_model="fake", concurrency=2, max_tokens=256,
                              structured_outputs=on, teacher_url=teacher.base_url)
    assert miniature.synthesize(args, tmp_path)["examples"] == 6
    assert {e["response_format"] is not None for e in teacher.log} == {on}
