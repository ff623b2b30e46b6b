"""benchmarks/gpu_suite.py: `--tiny` runs every part on CPU as the GPU machine would run it (in a
process that cannot import mteb, openai, datasets or what only they bring, which that machine
lacks) and leaves every figure in gpu_suite.json; a job past the budget or failing is recorded and
the next still runs; `--parts rest` picks up what a run left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# not on the GPU machine: the evaluation and synthesis stacks, and what only they or datasets bring
ABSENT = ("mteb", "openai", "datasets", "pyarrow", "pandas", "matplotlib", "aiohttp")

# sitecustomize for the child processes (PYTHONPATH carries it to the pytest process the suite
# starts too): sys.path's finder made blind to the packages, modules and metadata alike, since
# sentence-transformers asks importlib.metadata whether datasets is installed
SITECUSTOMIZE = f'''
import importlib.machinery
import sys
from importlib.metadata import DistributionFinder

ABSENT = {ABSENT!r}


class Absent:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        return None if name.partition(".")[0] in ABSENT else self.finder.find_spec(name, path, target)

    def find_distributions(self, context=DistributionFinder.Context()):
        return (d for d in self.finder.find_distributions(context)
                if (d.metadata["Name"] or "").lower() not in ABSENT)

    def invalidate_caches(self):
        self.finder.invalidate_caches()


sys.meta_path[:] = [Absent(f) if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
'''


def without_absent_packages(tmp_path: Path) -> dict:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_tiny_suite_runs_every_part_without_mteb_openai_or_datasets(tmp_path):
    env = without_absent_packages(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import importlib.util as u, importlib.metadata as m, sys; "
                            f"sys.exit(any(u.find_spec(p) for p in {ABSENT!r}) or bool({set(ABSENT)!r} & "
                            "{(d.metadata['Name'] or '').lower() for d in m.distributions()}))"], env=env)
    assert probe.returncode == 0  # the blocker works: the run below cannot import them
    out = tmp_path / "suite"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--tiny", "--output-dir", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = json.loads((out / "gpu_suite.json").read_text())
    parts = state["parts"]
    assert list(parts) == ["tests", "run", "train", "levers", "encode", "mine", "full-batch"]  # in the order they first ran
    for part, jobs in parts.items():
        for name, r in jobs.items():
            assert r["status"] == "ok" or "not installed" in r["reason"] or r["reason"] == "needs CUDA", (part, r)

    tests = parts["tests"]["pytest -m gpu"]["figures"]
    assert tests["skipped"] == len(tests["tests"]) >= 9 and tests["failed"] == tests["error"] == 0
    assert all("CUDA" in t["message"] or "not installed" in t["message"] for t in tests["tests"])

    run = parts["run"]["train.py's run"]["figures"]  # train.py's build, loop and export in bf16 + bf16
    assert [s["step"] for s in run["steps"]] == [1, 2] and run["checkpoint"] == ["rng-0.pt", "state.pt"]
    assert run["dtype"] == "bfloat16" and run["mixed_precision"] == "bf16" and run["trackers"] == ["tensorboard"]

    train = {name: r["figures"] for name, r in parts["train"].items()}
    assert set(train) == {"ours, grouped", "sentence-transformers", "ours, ungrouped"}
    for f in train.values():
        assert f["tokens_per_s"] > 0 and f["s_per_step"] > 0 and f["mfu_ceiling"] > 0 and f["projected_hours"] > 0
        assert 0 < f["tokens_per_text"] <= state["settings"]["max_length"]
        assert f["params"] > 0 and f["texts"] == 3 * state["settings"]["batch"] and f["peak_memory_gb"] > 0
        assert f["mixed_precision"] == "bf16"  # the recipe's, as accelerate applies it
    assert train["ours, grouped"]["padding_share"] < train["ours, ungrouped"]["padding_share"]

    levers = parts["levers"]
    off = levers["gradient checkpointing off"]["figures"]
    assert off["gradient_checkpointing"] is False and off["vs_default"] > 0
    assert [f["mini_batch_size"] for f in off["fit"]] == list(state["settings"]["no_checkpointing"])  # stepped up
    assert levers["LoRA input cast off"]["figures"]["lora_cast_input"] is False
    assert {n for n, r in levers.items() if r["status"] == "skipped"} == {
        "flash_attention_2", "flash_attention_2 + padding_free", "liger kernels", "flex_attention + padding_free"}
    assert all(levers[f"mini-batch {m}"]["figures"]["mini_batch"] == m for m in state["settings"]["mini_batches"])

    encode = parts["encode"]["encode"]["figures"]
    assert set(encode["mixes"]) == {"query", "sentence", "passage", "long"}
    assert all(m["sorted"]["tokens_per_s"] > 0 and m["unsorted"]["tokens_per_s"] > 0 for m in encode["mixes"].values())
    assert set(encode["projected_hours"]) == {"MTEB(eng, v1)", "MTEB(eng, v2)"}
    assert encode["projected_hours"]["MTEB(eng, v1)"] > encode["projected_hours"]["MTEB(eng, v2)"] > 0
    mine = parts["mine"]["mine"]["figures"]
    assert mine["passages"]["texts_per_s"] > 0 and mine["search"]["queries_per_s"] > 0
    full = parts["full-batch"][f"{state['settings']['full_batch']} queries"]["figures"]
    assert full["texts"] == 3 * state["settings"]["full_batch"] and full["gpus_projected"] == 1

    assert [g["goal"].split(" ")[0] for g in state["goals"]] == ["MFU", "peak", "real", "hours"]
    assert state["machine"]["matmul_tflops"] > 0 and state["versions"]["torch"]
    md = (out / "gpu_suite.md").read_text()
    assert "Tiny mode" in md and all(f"## {p}" in md.splitlines() for p in ["Goals", *parts])


@pytest.fixture
def suite(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_suite

    return gpu_suite, gpu_suite.Suite(gpu_suite.profiles()["tiny"], tmp_path, 100.0, "test", None)


def test_a_job_past_the_budget_or_failing_is_recorded_and_the_next_runs(suite, tmp_path):
    gpu_suite, s = suite
    Job = gpu_suite.Job

    def fails(_):
        raise ValueError("broken\nacross lines")

    def tests_fail(_):
        raise gpu_suite.JobFailed("1 of 2 gpu tests failed: test_x", {"passed": 1, "failed": 1})

    def sees_the_earlier_jobs(_):
        state = json.loads((tmp_path / "gpu_suite.json").read_text())  # written after every job
        assert state["parts"]["check"]["late"]["status"] == "running"  # and before, naming the one running
        return {"earlier": sorted(state["parts"]["train"])}

    for job in [Job("train", "too long", lambda _: {}, lambda _: 1000.0),
                Job("train", "fails", fails, lambda _: 1.0),
                Job("check", "tests fail", tests_fail, lambda _: 1.0),
                Job("levers", "needs a package", lambda _: {}, lambda _: 1.0, needs="no_such_package_here"),
                Job("check", "late", sees_the_earlier_jobs, lambda _: 1.0)]:
        gpu_suite.run_job(s, job)
    state = json.loads((tmp_path / "gpu_suite.json").read_text())
    too_long, fails_ = state["parts"]["train"]["too long"], state["parts"]["train"]["fails"]
    assert too_long["status"] == "skipped" and "--parts rest" in too_long["reason"]
    assert fails_["status"] == "failed" and fails_["error"] == "ValueError: broken across lines"
    assert "not installed" in state["parts"]["levers"]["needs a package"]["reason"]
    assert state["parts"]["check"]["tests fail"] == {**state["parts"]["check"]["tests fail"], "status": "failed",
                                                     "figures": {"passed": 1, "failed": 1}}
    assert state["parts"]["check"]["late"] == {**state["parts"]["check"]["late"], "status": "ok",
                                              "figures": {"earlier": ["fails", "too long"]}}
    assert "failed: ValueError: broken across lines" in (tmp_path / "gpu_suite.md").read_text()


def test_rest_runs_what_did_not_finish(suite):
    gpu_suite, s = suite
    every = gpu_suite.selected("all", None, s.profile)
    order = [j.name for j in every]
    # the checks first, then the goals' figures
    assert order[:4] == ["pytest -m gpu", "train.py's run", "ours, grouped", "sentence-transformers"]
    assert order[-1] == "32 queries" and {j.part for j in every} == set(gpu_suite.PARTS)
    state = {"parts": {"train": {"ours, grouped": {"status": "ok"}, "ours, ungrouped": {"status": "running"}},
                       "encode": {"encode": {"status": "failed"}},
                       "full-batch": {"32 queries": {"status": "out of memory"}}}}
    rest = [(j.part, j.name) for j in gpu_suite.selected("rest", state, s.profile)]
    assert ("train", "ours, grouped") not in rest and ("train", "ours, ungrouped") in rest
    assert ("encode", "encode") in rest and ("full-batch", "32 queries") not in rest and len(rest) == len(every) - 2
    assert {j.part for j in gpu_suite.selected("train,levers", None, s.profile)} == {"train", "levers"}
