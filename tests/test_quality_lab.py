"""The quality lab (benchmarks/quality.py) runs end to end, so that it cannot rot, and the data it
scores on is what the project says it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys


from tests.conftest import ROOT

EVAL = ROOT / "tests" / "data" / "eval"


def test_quick_lab_trains_through_train_py_and_scores_through_eval_py(tmp_path):
    """--quick: the real model, 3 small steps, STSBenchmark's first 100 pairs; a rerun reuses the rows."""
    work = tmp_path / "lab"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "benchmarks/quality.py", "--quick", "--output-dir", str(work)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((work / "quality.json").read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert list(rows) == ["base", "recipe"]
    # the base model on the first 100 pairs, by hand: cosine Spearman of all-MiniLM-L6-v2 (plain)
    assert 0.5 < rows["base"]["scores"]["STSBenchmark"] / 100 <= 1
    assert rows["base"]["train_s"] == 0 and rows["recipe"]["train_s"] > 0
    trained = [json.loads(line) for line in (work / "runs" / "recipe" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in trained] == [1, 2, 3]
    assert rows["recipe"]["scores"]["STSBenchmark"] != rows["base"]["scores"]["STSBenchmark"]
    assert report["training_seeds"] == [42] and report["data_seed"] == 0 and report["threads"] == 1
    mined = [json.loads(line) for line in (work / "data" / "clean.jsonl").read_text().splitlines()]
    assert len(mined) == 64 and all(r["negative"] and r["negative"] != r["positive"] for r in mined)
    assert "| base | all-MiniLM-L6-v2, not fine-tuned |" in done.stdout
    assert (work / "quality.md").read_text().startswith("| row | what |")

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((work / "quality.json").read_text())["rows"] == report["rows"]  # reused, not rerun


def test_lab_writes_only_into_a_folder_it_made(tmp_path):
    """An --output-dir that holds something else is left as it is: exit 2, one line, nothing written."""
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "train.jsonl").write_text('{"query": "q", "positive": "p"}\n')
    before = sorted((p.relative_to(mine), p.read_bytes() if p.is_file() else None) for p in mine.rglob("*"))
    done = subprocess.run([sys.executable, "benchmarks/quality.py", "--quick", "--output-dir", str(mine)], cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"error: --output-dir {mine}: not empty (data/, data/train.jsonl) and not made by benchmarks/quality.py; "
        "choose a new or empty folder"]
    assert sorted((p.relative_to(mine), p.read_bytes() if p.is_file() else None) for p in mine.rglob("*")) == before


def test_shipped_lab_data_is_what_sha256sums_records():
    """The files in tests/data/eval are exactly those SHA256SUMS names, byte for byte, and
    Banking77's rows name its 77 intents."""
    import hashlib

    sums = dict(reversed(line.split()) for line in (EVAL / "SHA256SUMS").read_text().splitlines())
    shipped = {str(p.relative_to(EVAL)) for p in EVAL.rglob("*") if p.suffix in (".jsonl", ".tsv", ".json")}
    assert set(sums) == shipped
    for name, digest in sums.items():
        assert hashlib.sha256((EVAL / name).read_bytes()).hexdigest() == digest, f"{name} differs from SHA256SUMS"
    names = json.loads((EVAL / "Banking77Classification" / "categories.json").read_text())
    assert len(names) == len(set(names)) == 77
    for split in ("train", "test"):
        lines = (EVAL / "Banking77Classification" / f"{split}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        assert {r["label"] for r in rows} == set(range(77)), split
