"""The lines of recipe/train/ and benchmarks/gpu_suite.py that only run on CUDA, run here on CPU with
torch.cuda's answers mocked, so that a typo in them fails CI rather than the first GPU run:
checkpoints' CUDA RNG states, the peak TFLOP/s, peak memory and MFU of the logged figures, Liger's
patch call, and the suite's out-of-memory handling, lever order and GPU properties. (The
TensorBoard tracker's lines: tests/test_train_run.py; CUDA itself: tests/test_gpu_path.py.)"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch

from recipe.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


class OneProcess:
    """What checkpoint.save/load ask of accelerate on a single process."""

    is_main_process, process_index, num_processes = True, 0, 1

    def wait_for_everyone(self):
        pass


@pytest.fixture
def cuda(monkeypatch):
    """torch.cuda as it answers on one H100, with the calls recorded."""
    calls = {}

    def record(name, result=None):
        def call(*args, **kwargs):
            calls.setdefault(name, []).append(args)
            return result
        return call

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 30 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.tensor([1, 2, 3], dtype=torch.uint8)])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", record("set_rng_state_all"))
    monkeypatch.setattr(torch.cuda, "empty_cache", record("empty_cache"))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(
        name="NVIDIA H100 80GB HBM3", total_memory=80 * 10**9, major=9, minor=0))
    return calls


def test_a_checkpoint_saves_and_restores_the_cuda_rng_states(tmp_path, cuda):
    from recipe.train import checkpoint

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    path = checkpoint.save(tmp_path, 3, model, optimizer, scheduler, OneProcess(), keep=2)
    assert torch.equal(torch.load(path / "rng-0.pt", weights_only=False)["cuda"][0], torch.tensor([1, 2, 3]))
    assert checkpoint.load(path, model, optimizer, scheduler, OneProcess()) == 3
    (restored,), = cuda["set_rng_state_all"]
    assert torch.equal(restored[0], torch.tensor([1, 2, 3], dtype=torch.uint8))


def test_the_logged_figures_on_a_gpu_have_its_peak_memory_and_mfu(cuda, monkeypatch):
    from recipe.train import metrics

    assert metrics.peak_tflops() == 989.0 and metrics.peak_memory_gb() == 30.0
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 PCIe")
    assert metrics.peak_tflops() == 756.0  # the longest name that matches
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a GPU of no data sheet")
    assert metrics.peak_tflops() is None
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    meter = metrics.StepMeter(7_000_000_000, cached=True, checkpointing=True, world=8)
    meter.t0 -= 10.0  # a step of 10 s
    row = meter.figures(real_tokens=800_000, padded_tokens=1_000_000)
    assert row["peak_memory_gb"] == 30.0 and abs(row["padding_share"] - 0.2) < 1e-9
    mfu = 6 * 7e9 * 80_000 / (8 * 989e12)  # 6N per real token at 80k tokens/s over 8 GPUs' peak
    assert abs(row["mfu"] / mfu - 1) < 0.01 and abs(row["hfu"] / row["mfu"] - 10 / 6) < 1e-9


def test_liger_is_applied_with_its_kernels_and_none_of_its_losses(monkeypatch, tmp_path):
    """liger-kernel is CUDA-only and not installed here: its apply function is a stand-in that
    records what it was given; one release's apply takes no `cross_entropy`, and gets none.
    `liger_kernels: true` applies it to the decoder the recipe builds."""
    from recipe.train.model import apply_liger
    from tests.train_helpers import tiny_model

    given = {}

    def apply_mistral(model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                      fused_linear_cross_entropy=True):
        given["mistral"] = dict(model=model, rope=rope, rms_norm=rms_norm, swiglu=swiglu,
                                cross_entropy=cross_entropy, fused_linear_cross_entropy=fused_linear_cross_entropy)

    def apply_older(model, rope=True, rms_norm=True, swiglu=True, fused_linear_cross_entropy=True):
        given["older"] = dict(fused_linear_cross_entropy=fused_linear_cross_entropy)

    patch = types.ModuleType("liger_kernel.transformers.monkey_patch")
    patch.MODEL_TYPE_TO_APPLY_LIGER_FN = {"mistral": apply_mistral, "older": apply_older}
    for name in ("liger_kernel", "liger_kernel.transformers"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers.monkey_patch", patch)
    mistral = types.SimpleNamespace(config=types.SimpleNamespace(model_type="mistral"))
    apply_liger(mistral)
    assert given["mistral"] == dict(model=mistral, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)
    apply_liger(types.SimpleNamespace(config=types.SimpleNamespace(model_type="older")))
    assert given["older"] == {"fused_linear_cross_entropy": False}
    with pytest.raises(ConfigError, match="liger-kernel has no kernels for model type 'bert'"):
        apply_liger(types.SimpleNamespace(config=types.SimpleNamespace(model_type="bert")))
    model, _, _ = tiny_model(tmp_path, liger_kernels=True)
    assert type(given["mistral"]["model"]).__name__ == "MistralModel"
    assert given["mistral"]["model"] is model[0].auto_model.get_base_model()  # before LoRA wraps it


@pytest.fixture
def gpu_suite():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_suite

    return gpu_suite


def test_the_suite_records_the_gpu_and_frees_its_cache(cuda, gpu_suite):
    machine = gpu_suite.machine()
    assert machine["device"] == "NVIDIA H100 80GB HBM3" and machine["memory_gb"] == 74.5
    assert machine["capability"] == "9.0" and machine["datasheet_bf16_tflops"] == 989.0
    gpu_suite.free_memory()
    assert cuda["empty_cache"]


def out_of_memory_at(limit: int):
    """A stand-in for Suite.train that runs out of memory above `limit` texts per mini-batch."""
    tried = []

    def train(cfg, run, queries, name):
        tried.append(cfg.mini_batch_size)
        if cfg.mini_batch_size > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return figures(1000.0 + cfg.mini_batch_size, float(cfg.mini_batch_size))

    return train, tried


def figures(tokens_per_s: float, reserved_gb: float | None) -> dict:
    """What Suite.train returns, as far as the suite's report reads it."""
    return {"tokens_per_s": tokens_per_s, "tokens_per_text": 250.0, "padding_share": 0.1, "s_per_step": 30.0,
            "peak_memory_gb": 20.0, "peak_reserved_gb": reserved_gb, "mfu": 0.3, "mfu_ceiling": 0.5, "hfu": 0.4,
            "projected_hours": 7.0, "gpus_projected": 8}


@pytest.mark.parametrize("limit, tried, fit, status", [
    (64, [8, 16], [8, 16], "ok"),  # both fit: the larger gives the figures
    (8, [8, 16], [8], "ok"),  # steps up until one does not fit
    (4, [8], [], "out of memory")])  # the first does not: no larger one is tried
def test_the_checkpointing_off_lever_steps_up_from_a_mini_batch_that_fits(tmp_path, gpu_suite, limit, tried, fit,
                                                                         status):
    profile = gpu_suite.profiles()["gpu"]
    suite = gpu_suite.Suite(profile, tmp_path, 600.0, "test", None)
    suite.train, seen = out_of_memory_at(limit)
    job = next(j for j in gpu_suite.jobs(profile) if j.name == "gradient checkpointing off")
    gpu_suite.run_job(suite, job)
    result = json.loads((tmp_path / "gpu_suite.json").read_text())["parts"]["levers"]["gradient checkpointing off"]
    assert seen == tried and result["status"] == status
    if fit:
        assert [f["mini_batch_size"] for f in result["figures"]["fit"]] == fit
        assert result["figures"]["changes"] == {"gradient_checkpointing": False, "mini_batch_size": fit[-1]}
    else:
        assert "out of memory with every setting tried" in result["error"]


def test_a_lever_tries_its_next_setting_after_running_out_of_memory(tmp_path, gpu_suite):
    """Without step_up: the first that fits, also when the error reaches the suite as the plain
    RuntimeError it becomes on its way out of GradCache's backward hook."""
    suite = gpu_suite.Suite(gpu_suite.profiles()["tiny"], tmp_path, 100.0, "test", None)
    tried = []

    def train(cfg, run, queries, name):
        tried.append(cfg.mini_batch_size)
        if cfg.mini_batch_size == 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return figures(1.0, None)

    suite.train = train
    result = gpu_suite.lever_job([{"mini_batch_size": 64}, {"mini_batch_size": 16}, {"mini_batch_size": 8}])(suite)
    assert tried == [64, 16] and result["out_of_memory"] == [{"mini_batch_size": 64}]
    assert result["changes"] == {"mini_batch_size": 16}


def test_a_lever_that_fails_otherwise_than_out_of_memory_fails(tmp_path, gpu_suite):
    suite = gpu_suite.Suite(gpu_suite.profiles()["tiny"], tmp_path, 100.0, "test", None)

    def train(cfg, run, queries, name):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    suite.train = train
    with pytest.raises(RuntimeError, match="illegal memory access"):
        gpu_suite.lever_job([{"mini_batch_size": 64}, {"mini_batch_size": 16}])(suite)


@pytest.mark.parametrize("junit, code, error", [
    ('<testcase name="test_a"/><testcase name="test_b"><failure message="bf16\nmismatch"/></testcase>', 1,
     "1 of 2 gpu tests failed: test_b"),
    ('<testcase name="test_a"/>', 2, "pytest exited 2: interrupted")], ids=["a gpu test fails", "pytest breaks"])
def test_gpu_tests_that_fail_or_a_pytest_that_breaks_fail_the_tests_job(tmp_path, gpu_suite, monkeypatch, junit,
                                                                        code, error):
    """What the suite makes of `pytest -m gpu` failing, which only a GPU can make it do."""
    suite = gpu_suite.Suite(gpu_suite.profiles()["gpu"], tmp_path, 600.0, "test", None)

    def pytest_run(cmd, **kwargs):
        report = next(a for a in cmd if a.startswith("--junit-xml=")).split("=", 1)[1]
        Path(report).write_text(f"<testsuites><testsuite>{junit}</testsuite></testsuites>")
        return types.SimpleNamespace(returncode=code, stdout="interrupted", stderr="")

    monkeypatch.setattr(gpu_suite.subprocess, "run", pytest_run)
    gpu_suite.run_job(suite, gpu_suite.jobs(suite.profile)[0])
    result = json.loads((tmp_path / "gpu_suite.json").read_text())["parts"]["tests"]["pytest -m gpu"]
    assert result["status"] == "failed" and error in result["error"], result
