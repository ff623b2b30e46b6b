"""Per-step training figures: loss, accuracy, learning rate, gradient norm, real (non-pad) tokens
per second, padding share, peak memory and, on GPU, model FLOPs utilisation (MFU)."""

from __future__ import annotations

import resource
import sys
import time

import torch

# dense bf16 peak TFLOP/s per GPU, from the vendors' data sheets (no sparsity); H100/H200 = SXM
PEAK_TFLOPS = {"H200": 989.0, "H200 NVL": 835.0, "H100": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0,
               "A100": 312.0, "A10G": 125.0, "L40S": 362.0, "L4": 121.0, "V100": 125.0, "A6000": 155.0,
               "4090": 165.0}


def peak_tflops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    # the longest name that matches: "H100 PCIe" before "H100"
    return next((PEAK_TFLOPS[k] for k in sorted(PEAK_TFLOPS, key=len, reverse=True) if k in name), None)


def peak_memory_gb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**30 if sys.platform == "darwin" else 2**20)


def flops_per_token(n_params: int, cached: bool, checkpointing: bool) -> tuple[float, float]:
    """(model, hardware) FLOPs per real token. MFU uses the usual 6N (forward 2N, backward 4N);
    HFU adds what this recipe actually recomputes: the 2N no-grad forward of GradCache and the 2N
    re-forward of gradient checkpointing. (With LoRA the backward skips most weight gradients, so
    6N overstates the useful work a little; the convention keeps figures comparable.)"""
    model = 6 * n_params
    return model, model + 2 * n_params * (int(cached) + int(checkpointing))


class StepMeter:
    def __init__(self, n_params: int, cached: bool, checkpointing: bool, world: int):
        self.model_fpt, self.hw_fpt = flops_per_token(n_params, cached, checkpointing)
        self.world = world
        self.peak = peak_tflops()
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def figures(self, real_tokens: int, padded_tokens: int) -> dict:
        """`real_tokens`/`padded_tokens`: summed over all processes for this step."""
        dt = time.perf_counter() - self.t0
        out = {"step_time_s": dt, "tokens_per_s": real_tokens / dt,
               "padding_share": 1 - real_tokens / max(padded_tokens, 1), "peak_memory_gb": peak_memory_gb()}
        if self.peak:
            peak = self.peak * 1e12 * self.world
            out["mfu"] = self.model_fpt * real_tokens / dt / peak
            out["hfu"] = self.hw_fpt * real_tokens / dt / peak
        return out
