"""Time training steps of the recipe: the cached InfoNCE loss at a given per-GPU batch, on a
random model of Mistral-7B's shape (or the tiny smoke model), LoRA r16 on all projections,
gradient checkpointing, bf16 on GPU. Prints one JSON object: s/step, real tokens/s, MFU,
peak memory, and the projected hours for the paper's ~900 steps on N GPUs.

    python benchmarks/train_step.py --shape mistral-7b --batch 256 --gpus 8     # one GPU's share of 2048 on 8
    python benchmarks/train_step.py --shape mistral-7b --batch 2048 --gpus 1    # the whole batch on one GPU
    python benchmarks/train_step.py --shape tiny --batch 32 --steps 2           # anywhere, in seconds

Texts are random token ids with lengths drawn uniformly from [--q_len] and [--d_len], each
ending in EOS, as the EOS contract makes them. Projection for N GPUs: every GPU embeds its
batch share (this measurement at --batch = 2048 / N) plus the all-gather of the embeddings,
which is small (2048 x 3 x 4096 bf16 values = 48 MiB per step) and not measured here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipe.config import load_yaml  # noqa: E402
from recipe.train.config import TrainConfig  # noqa: E402
from recipe.train.loss import build_loss  # noqa: E402
from recipe.train.metrics import StepMeter  # noqa: E402
from recipe.train.model import build_model, enable_checkpointing  # noqa: E402

MISTRAL_7B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=32000)


def random_column(n: int, lengths: tuple[int, int], vocab: int, eos: int, gen) -> dict:
    lens = torch.randint(lengths[0], lengths[1] + 1, (n,), generator=gen)
    width = int(lens.max())
    ids = torch.randint(3, vocab, (n, width), generator=gen)
    mask = torch.arange(width)[None, :] < lens[:, None]  # right padding
    ids[torch.arange(n), lens - 1] = eos
    ids[~mask] = eos  # pad == EOS, as for Mistral
    return {"input_ids": ids, "attention_mask": mask.long()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=["tiny", "mistral-7b"], default="tiny")
    ap.add_argument("--batch", type=int, default=32, help="queries on this GPU per step")
    ap.add_argument("--mini_batch", type=int, default=32, help="GradCache chunk")
    ap.add_argument("--q_len", type=int, nargs=2, default=[16, 96], help="query length range (tokens)")
    ap.add_argument("--d_len", type=int, nargs=2, default=[64, 512], help="document length range (tokens)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps, after one warm-up step")
    ap.add_argument("--gpus", type=int, default=8, help="GPUs for the projection")
    ap.add_argument("--total_steps", type=int, default=900, help="steps of the run to project")
    args = ap.parse_args(argv)

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    cfg = load_yaml(TrainConfig, Path(__file__).resolve().parents[1] / "recipe/configs/smoke.yaml")
    cfg = replace(cfg, torch_dtype="bfloat16" if cuda else "float32", max_length=max(args.d_len))
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(cfg, Path(tmp), ["some words to train a tokenizer on"] * 10)
        if args.shape == "mistral-7b":
            from peft import LoraConfig, get_peft_model
            from sentence_transformers.sentence_transformer.modules import Pooling
            from transformers import MistralConfig, MistralModel

            config = MistralConfig(**MISTRAL_7B, use_cache=False, attn_implementation="sdpa")
            torch.manual_seed(0)
            with torch.device(device):
                big = MistralModel(config).to(torch.bfloat16 if cuda else torch.float32)
            enable_checkpointing(big)
            model[0].model = get_peft_model(big, LoraConfig(
                r=16, lora_alpha=32, lora_dropout=0.1, target_modules=list(cfg.lora_target_modules)))
            model._modules["1"] = Pooling(config.hidden_size, pooling_mode="lasttoken")
    model.to(device).train()
    vocab = model[0].model.config.vocab_size
    n_params = sum(p.numel() for p in model.parameters())
    loss_fn = build_loss(model, cfg.temperature, True, args.mini_batch, gather=False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.1)
    meter = StepMeter(n_params, cached=True, checkpointing=True, world=1)
    gen = torch.Generator().manual_seed(0)
    times, rows = [], []
    for step in range(args.steps + 1):
        cols = [random_column(args.batch, tuple(r), vocab, 2, gen) for r in (args.q_len, args.d_len, args.d_len)]
        real = sum(int(c["attention_mask"].sum()) for c in cols)
        padded = sum(c["attention_mask"].numel() for c in cols)
        cols = [{k: v.to(device) for k, v in c.items()} for c in cols]
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        meter.start()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(cols, None)
            loss.backward()  # GradCache replays the forward inside this backward: keep it in autocast
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step > 0:  # step 0 warms up kernels and allocator
            rows.append(meter.figures(real, padded))
    s_step = sum(r["step_time_s"] for r in rows) / len(rows)
    out = {
        "shape": args.shape, "params": n_params, "batch_per_gpu": args.batch, "mini_batch": args.mini_batch,
        "q_len": args.q_len, "d_len": args.d_len, "s_per_step": s_step,
        "tokens_per_s": sum(r["tokens_per_s"] for r in rows) / len(rows),
        "padding_share": rows[-1]["padding_share"], "peak_memory_gb": max(r["peak_memory_gb"] for r in rows),
        "mfu": rows[-1].get("mfu"), "hfu": rows[-1].get("hfu"),
        "projected_hours": s_step * args.total_steps / 3600, "projection": f"{args.total_steps} steps on "
        f"{args.gpus} GPU(s) at {args.batch} queries per GPU = global batch {args.batch * args.gpus}",
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
