"""Estimated peak GPU memory of the recipe's training step at Mistral-7B's shape, for the recipe's
default and each lever of benchmarks/gpu_suite.py: the table of docs/benchmarks.md, until the
suite replaces it with measured figures.

    python benchmarks/memory_estimate.py          # CPU, about a minute

How: autograd's saved tensors (torch.autograd.graph.saved_tensors_hooks, each storage counted once,
the weights left out) are counted on CPU for one text of `--length` tokens through a Mistral of
Mistral-7B's width with 1 and then 2 decoder layers, built by recipe/train/run.py's build_embedder
with the recipe's keys (LoRA r16 on the seven projections, dropout 0.1, bf16 weights, sdpa) under
bf16 autocast as accelerate applies it, with LoRA's input cast on and off. The difference is one
layer's saved activations per token, the rest what lies outside the layers. The step's peak is then
reached in GradCache's backward of the widest mini-batch (grouped: m texts of the longest length):

    weights (bf16) + LoRA weights, gradients and AdamW's two moments (float32)
    + checkpointing on:  every layer's input (m x length x hidden, bf16) + one layer's saved
                         activations (recomputed for its backward)
      checkpointing off: every layer's saved activations
    + outside the layers + the backward's working set, taken as one layer's saved activations.

Not counted: the CUDA context (outside torch's allocator), the caching allocator's fragmentation
(reserved exceeds allocated), kernels' workspaces; the GPU's attention kernels save what the CPU's
flash kernel saves here (q, k, v, the output, the log-sum-exp: nothing of length squared), which
the script checks by counting at two lengths.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import train_throughput as tt  # noqa: E402
from recipe import cli  # noqa: E402
from recipe.config import load_yaml, parse, setting  # noqa: E402
from recipe.train.config import TrainConfig  # noqa: E402

GIB = 2**30
GPUS = {"H100 80 GB": 79.1, "H200 141 GB": 139.8}  # GiB torch reports as the device's total memory
FRAGMENTATION = 1.10  # reserved over allocated, assumed: the suite measures both


def saved_bytes(cfg: TrainConfig, layers: int, length: int, workdir: Path) -> int:
    """Bytes autograd saves for one text of `length` tokens through `layers` layers at 7B's width."""
    shape = {**tt.MISTRAL_7B, "num_hidden_layers": layers}
    model, _ = tt.make_model(cfg, torch.device("cpu"), workdir, ["some words"] * 20, shape)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in weights:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    ids = torch.randint(3, 500, (1, length))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    return sum(seen.values())


def per_token(cfg: TrainConfig, length: int, workdir: Path) -> tuple[float, float]:
    """(one layer's saved bytes per token, the bytes per token outside the layers)."""
    one, two = (saved_bytes(cfg, n, length, workdir) for n in (1, 2))
    return (two - one) / length, max(2 * one - two, 0) / length


def estimate(layer: float, outside: float, tokens: int, checkpointing: bool, static: float) -> float:
    """Peak GiB of one mini-batch of `tokens` positions, as the module docstring says."""
    hidden, layers = tt.MISTRAL_7B["hidden_size"], tt.MISTRAL_7B["num_hidden_layers"]
    held = layers * tokens * hidden * 2 + tokens * layer if checkpointing else layers * tokens * layer
    return (static + held + tokens * (outside + layer)) / GIB


@dataclass
class MemoryEstimateSettings:
    length: int = setting(512, "tokens of each text of the widest mini-batch")


def _main(argv: list[str]) -> int:
    args = parse(MemoryEstimateSettings, argv)
    torch.manual_seed(0)
    base = replace(load_yaml(TrainConfig, ROOT / "recipe/configs/e5_mistral_7b.yaml"), model="tiny-mistral",
                   require_gpu=False, max_length=args.length)
    with tempfile.TemporaryDirectory() as tmp:
        per_cast = {cast: per_token(replace(base, lora_cast_input=cast, gradient_checkpointing=False), args.length,
                                    Path(tmp)) for cast in (True, False)}
        short = per_token(replace(base, gradient_checkpointing=False, max_length=args.length // 4), args.length // 4,
                          Path(tmp))
        model, _ = tt.make_model(base, torch.device("meta"), Path(tmp), ["some words"] * 20, tt.MISTRAL_7B)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    static = frozen * 2 + lora * 16  # bf16 weights; float32 LoRA weights, gradients, AdamW's m and v
    rows = [("recipe default", "checkpointing, mini-batch 32", True, 32, True),
            ("mini-batch 16", "", True, 16, True), ("mini-batch 64", "", True, 64, True),
            ("mini-batch 128", "", True, 128, True), ("LoRA input cast off", "lora_cast_input: false", False, 32, True),
            *[("gradient checkpointing off", f"mini-batch {m}", True, m, False) for m in (4, 8, 16)],
            *[("checkpointing off + cast off", f"mini-batch {m}", False, m, False) for m in (8, 16)]]
    out = []
    for lever, keys, cast, mini_batch, checkpointing in rows:
        layer, outside = per_cast[cast]
        gib = estimate(layer, outside, mini_batch * args.length, checkpointing, static)
        out.append({"lever": lever, "setting": keys, "allocated_gib": gib,
                    **{gpu: gib * FRAGMENTATION <= total for gpu, total in GPUS.items()}})
    print(f"weights {frozen / 1e9:.2f}B bf16 + LoRA {lora / 1e6:.1f}M (weights, gradients, AdamW: float32) = "
          f"{static / GIB:.2f} GiB; saved per layer and token at {args.length} tokens: "
          f"{per_cast[True][0] / 1024:.0f} KiB (LoRA input cast on), {per_cast[False][0] / 1024:.0f} KiB (off); "
          f"at {args.length // 4} tokens {short[0] / 1024:.0f} KiB (no length-squared term); outside the layers "
          f"{per_cast[True][1] / 1024:.0f} KiB")
    print(f"| lever | setting | est. peak allocated, GiB | fits {' | fits '.join(GPUS)} |\n|---|---|---:|---|---|")
    for r in out:
        print(f"| {r['lever']} | {r['setting']} | {r['allocated_gib']:.1f} | "
              + " | ".join("yes" if r[g] else "no" for g in GPUS) + " |")
    return 0


main = cli.command(_main, doc=__doc__, config=MemoryEstimateSettings, module=__name__)
