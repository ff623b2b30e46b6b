"""One command that proves and measures the GPU path: the CUDA tests, the training
step at Mistral-7B's shape beside plain sentence-transformers, the speed levers, encoding, mining
and the whole 2048 batch, written to DIR/gpu_suite.json and DIR/gpu_suite.md after every job.

    python benchmarks/gpu_suite.py --output-dir out/gpu_suite               # one H100/H200, within --budget-s (510 s)
    python benchmarks/gpu_suite.py --output-dir out/gpu_suite --parts rest  # a second command: what the first left
    python benchmarks/gpu_suite.py --output-dir out/gpu_suite --parts train,levers
    python benchmarks/gpu_suite.py --tiny --output-dir /tmp/gpu_suite       # the same suite on CPU, 2-layer models

Parts (`--parts` takes some of them; `rest` every job of DIR/gpu_suite.json that neither finished
nor ran out of memory):
  tests       `pytest -m gpu tests/test_gpu_path.py`: the CUDA half of the GPU path's checks
  run         train.py's run itself (recipe/train/run.py: build, loop, export) on a Mistral of
              Mistral-7B's width with 2 layers, bf16 weights and bf16 mixed precision: the model
              loaded onto the GPU, accelerate's prepare, two steps with accelerate's backward and
              gradient clipping, a checkpoint after the first, final/ exported and reloaded
  train       the step train.py runs at one GPU's share of the 2048 batch on 8 GPUs (256 queries x 3
              texts, 512 tokens, the synthetic length mix, Mistral-7B's shape with random bf16 weights
              made on the GPU, LoRA r16 on the seven projections, the paper's recipe
              recipe/configs/e5_mistral_7b.yaml, bf16 mixed precision as accelerate applies it: autocast
              around the model's forward, the loss in float32): ours grouped (the recipe's default),
              sentence-transformers' CachedMultipleNegativesRankingLoss on the same texts in the same
              loop, ours ungrouped
  levers      each against the recipe's default: gradient checkpointing off (mini-batch 8, where the
              memory estimate of docs/benchmarks.md fits an H100, then 16, which it fits in an H200's
              memory only), LoRA input cast off (lora_cast_input: false), flash_attention_2 padded and
              packed (padding_free) and Liger kernels where installed, mini-batch 64, 128,
              flex_attention packed (torch only), mini-batch 16
  encode      eval.py's encoding of the 7B shape in fp16 on four MTEB-like length mixes, unsorted and
              sorted, and the hours MTEB(eng, v1) and (eng, v2) take on one GPU
  mine        the paper's miner shape (XLM-R base, 512 tokens, random fp16 weights): texts/s and
              top-100 search
  full-batch  all 2048 queries x 3 texts on one GPU: GradCache's memory does not grow with the batch
Jobs run most valuable first (`jobs` says why): tests, run, ours grouped, sentence-transformers,
the levers but mini-batch 16, encode, mine, ours ungrouped, mini-batch 16, the whole batch. Each is
independent: one that fails is recorded with its one-line error and the next runs (the exit code
is 1 if any failed; "out of memory" is a result). A job starts only if its estimated time (scaled
from the measured grouped step, else a prior) fits in what is left of `--budget-s`; the others are
recorded as skipped, for `--parts rest`. A job needing a package that is not installed
(flash-attn, liger-kernel) is recorded as skipped, naming it.

Figures: real (non-pad) tokens/s; padding share of the positions the model ran; s/step; peak GPU
memory (allocated, and reserved by the caching allocator); MFU = 6 x parameters (every one, the
embedding table and LoRA included) x real tokens/s, against the data-sheet bf16 peak and against
the bf16 matmul ceiling measured here; HFU adds the 2 x parameters per token of GradCache's no-grad
pass and 2 x of the checkpointing recompute; projected hours of the paper's run (880 steps) on 8
GPUs, all-gather not included. `--tiny`: a 2-layer Mistral, tiny encoder and miner on CPU, in
under 2 minutes: the figures mean nothing, the code paths are the GPU's. `--output-dir` is new,
empty, or the suite's own (docs/usage.md, "Output folders"); gpu_suite.json is the state a later
`--parts rest` continues from.
"""

from __future__ import annotations

import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import provenance  # noqa: E402
import train_throughput as tt  # noqa: E402
from gpu_report import goals, markdown  # noqa: E402
from recipe import cli  # noqa: E402
from recipe.cli import one_line  # noqa: E402
from recipe.config import ConfigError, load_yaml, parse, setting  # noqa: E402
from recipe.files import check_output_dir, mark_output_dir, write_text  # noqa: E402
from recipe.train.config import TrainConfig  # noqa: E402
from recipe.train.metrics import peak_tflops  # noqa: E402

PARTS = ("tests", "run", "train", "levers", "encode", "mine", "full-batch")
GPU_PACKAGES = ("torch", "transformers", "sentence-transformers", "peft", "accelerate", "tokenizers", "safetensors",
                "numpy", "flash-attn", "liger-kernel", "triton")
FINISHED = ("ok", "out of memory")  # a figure either way: `--parts rest` runs neither again
GPU_TESTS = "tests/test_gpu_path.py"
TOOL = "benchmarks/gpu_suite.py"
RECIPE = ROOT / "recipe/configs/e5_mistral_7b.yaml"


@dataclass(frozen=True)
class Profile:
    name: str
    shape: dict  # MistralConfig keys of the trained model
    dtype: str
    max_length: int
    batch: int  # queries per timed step: one GPU's share of 2048 on 8 GPUs
    warmup: int  # queries of the untimed first step
    full_batch: int
    mini_batch: int  # the recipe's
    mini_batches: tuple[int, ...]  # the sweep besides the recipe's; the last (smallest) runs late
    no_checkpointing: tuple[int, ...]  # mini-batches tried with checkpointing off, up from one that fits
    run_shape: dict  # the `run` job's tiny_model: MistralConfig keys and the tokenizer's vocabulary
    run_batch: int  # its global batch
    encoder: str  # benchmarks/eval_throughput.py's decoder shape
    encode_texts: int  # per mix
    encode_batch: int
    miner: dict  # XLMRobertaConfig keys
    miner_texts: int
    miner_corpus: int
    matmul: int  # side of the square matmul that measures the ceiling
    budget_s: float
    priors: dict = field(default_factory=dict)  # seconds per job before anything is measured


def profiles() -> dict[str, Profile]:
    from data_throughput import WORDS, XLMR_BASE

    tiny_mistral = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=512, max_position_embeddings=4096)
    wide = {k: v for k, v in tt.MISTRAL_7B.items() if k != "max_position_embeddings"}
    tiny_miner = {**XLMR_BASE, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                  "num_attention_heads": 2, "vocab_size": WORDS + 4}
    # GPU priors: H100 at ~400 TFLOP/s of 8 x 7.1B FLOPs per position, 256 x 3 texts of ~260
    # tokens and ~10% padding: ~30 s a grouped step (docs/benchmarks.md, "GPU suite")
    return {
        "gpu": Profile("gpu", tt.MISTRAL_7B, "bfloat16", 512, 256, 16, 2048, 32, (64, 128, 16), (8, 16),
                       {**wide, "num_hidden_layers": 2, "vocab_size": 512}, 64,
                       "mistral-7b", 1024, 32, XLMR_BASE, 4096, 100_000, 8192, 510,
                       {"tests": 90, "run": 60, "step": 30, "build": 15, "encode": 90, "mine": 40}),
        "tiny": Profile("tiny", tiny_mistral, "float32", 64, 8, 4, 32, 4, (8, 2), (4, 8),
                        {k: v for k, v in tiny_mistral.items() if k != "max_position_embeddings"}, 8,
                        "tiny-decoder", 32, 8, tiny_miner, 64, 1000, 256, 300,
                        {"tests": 30, "run": 10, "step": 1, "build": 2, "encode": 10, "mine": 10}),
    }


@dataclass
class Job:
    part: str
    name: str
    run: Callable[["Suite"], dict]
    cost: Callable[["Suite"], float]  # estimated seconds
    needs: str | None = None  # a package that must be importable
    cuda: bool = False  # runs on CUDA only


class Suite:
    """The run: its profile, budget, device, the state written after every job, shared inputs."""

    def __init__(self, profile: Profile, out: Path, budget_s: float, command: str, state: dict | None):
        self.profile, self.out, self.budget_s = profile, out, budget_s
        self.t0 = time.perf_counter()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.workdir = Path(tempfile.mkdtemp(prefix="gpu_suite-"))
        self.state = state or {"suite": "benchmarks/gpu_suite.py", "profile": profile.name, "parts": {},
                               "commands": []}
        self.state["commands"].append({"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                       "budget_s": budget_s})
        self.state.update(settings=asdict(profile), versions=versions(),
                          machine={**self.state.get("machine", {}), **machine()})
        self._batches: dict[int, list] = {}

    # ---------------------------------------------------------------- state

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def result(self, part: str, name: str) -> dict | None:
        return self.state["parts"].get(part, {}).get(name)

    def figures(self, part: str, name: str) -> dict | None:
        r = self.result(part, name)
        return r.get("figures") if r and r["status"] == "ok" else None

    def record(self, job: Job, status: str, **fields) -> None:
        self.state["parts"].setdefault(job.part, {})[job.name] = {"status": status, **fields}
        self.state["elapsed_s"] = round(self.elapsed(), 1)
        self.save()

    def save(self) -> None:
        self.state["updated"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.state["goals"] = goals(self.state)
        write_text(self.out / "gpu_suite.json", json.dumps(self.state, indent=1) + "\n")
        write_text(self.out / "gpu_suite.md", markdown(self.state))

    # ---------------------------------------------------------------- shared inputs

    def cfg(self, **changes) -> TrainConfig:
        """The paper's recipe with the tiny model's tokenizer (token counts are what matter), in
        this profile's dtype and length and the recipe's mixed precision (bf16: one for the whole
        process, as accelerate keeps it); `changes` are the lever's keys."""
        cfg = load_yaml(TrainConfig, RECIPE)
        cfg = replace(cfg, model="tiny-mistral", dtype=self.profile.dtype, max_length=self.profile.max_length,
                      mini_batch_size=self.profile.mini_batch, require_gpu=False, report_to=[])
        cfg = replace(cfg, **changes)
        cfg.check()
        return cfg

    def batches(self, queries: int) -> list:
        if queries not in self._batches:
            self._batches[queries] = tt.make_batches(self.cfg(), queries, 1, warmup=self.profile.warmup)
        return self._batches[queries]

    def train(self, cfg: TrainConfig, run: str, queries: int, name: str, gpus: int = 8) -> dict:
        """One training run on a fresh model: its figures (train_throughput.summary) and settings.
        `projected_hours`: the paper's 880 steps of `queries` each, on `gpus` GPUs side by side."""
        batches = self.batches(queries)
        # one tokenizer for every run: trained on the texts of the usual batch
        texts = tt.tokenizer_texts(self.batches(self.profile.batch))
        model, loss_fn = tt.make_model(tt.run_cfg(run, cfg), self.device, self.workdir, texts, self.profile.shape)
        n_params = sum(p.numel() for p in model.parameters())
        rows = tt.run(run, cfg, model, loss_fn, batches, baseline="loop")
        del model, loss_fn
        figures = tt.summary(name, rows, n_params, tt.PAPER_STEPS, cfg.gradient_checkpointing,
                             self.state["machine"].get("matmul_tflops"))
        # hours scale with it: the tiny tokenizer cuts English finer than Mistral's (docs/benchmarks.md)
        tokens_per_text = figures["tokens_per_s"] * figures["s_per_step"] / (3 * queries)
        return {**figures, "params": n_params, "queries": queries, "texts": 3 * queries, "gpus_projected": gpus,
                "tokens_per_text": tokens_per_text,
                "mini_batch": cfg.mini_batch_size, "gradient_checkpointing": cfg.gradient_checkpointing,
                "attn_implementation": cfg.attn_implementation, "padding_free": cfg.padding_free,
                "liger_kernels": cfg.liger_kernels, "lora_cast_input": cfg.lora_cast_input,
                "mixed_precision": cfg.mixed_precision}

    def step_s(self) -> float:
        """Seconds of the recipe's grouped step at `batch` queries: measured, else the prior."""
        grouped = self.figures("train", tt.RUN_NAMES["grouped"])
        return grouped["s_per_step"] if grouped else self.profile.priors["step"]


# ---------------------------------------------------------------- the jobs


def tests_job(suite: Suite) -> dict:
    """`pytest -m gpu` in a fresh process (its own CUDA context, freed before the model jobs)."""
    report = suite.out / "pytest_gpu.xml"
    left = max(30.0, suite.budget_s - suite.elapsed())
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                           f"--junit-xml={report}", GPU_TESTS], cwd=ROOT, capture_output=True, text=True,
                          timeout=left, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    tests = []
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome, message = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag], \
                    one_line(found.get("message", ""))[:300]
        tests.append({"name": case.get("name"), "outcome": outcome, "message": message,
                      "seconds": float(case.get("time", 0))})
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "error", "skipped")}
    figures = {**counts, "tests": tests, "exit_code": proc.returncode}
    broken = [t["name"] for t in tests if t["outcome"] in ("failed", "error")]
    if broken:
        raise JobFailed(f"{len(broken)} of {len(tests)} gpu tests failed: {', '.join(broken)}", figures)
    if proc.returncode not in (0, 5):
        raise RuntimeError(f"pytest exited {proc.returncode}: {one_line(proc.stdout[-300:] + proc.stderr[-300:])}")
    return figures


class JobFailed(Exception):
    """A job that ran and has figures, and whose figures say it failed (a gpu test that fails)."""

    def __init__(self, message: str, figures: dict):
        super().__init__(message)
        self.figures = figures


def train_job(run: str) -> Callable[[Suite], dict]:
    return lambda suite: suite.train(suite.cfg(), run, suite.profile.batch, tt.RUN_NAMES[run])


def lever_job(attempts: list[dict], step_up: bool = False) -> Callable[[Suite], dict]:
    """The recipe's grouped step with each attempt's keys in turn, until one fits in memory; with
    `step_up` (attempts ordered from the least memory up) on until one does not, the last that fit
    giving the figures."""

    def job(suite: Suite) -> dict:
        too_big, fit = [], []
        for changes in attempts:
            try:
                with restored_liger_patches():
                    figures = suite.train(suite.cfg(**changes), "grouped", suite.profile.batch, "ours, grouped")
            except RuntimeError as e:
                if not out_of_memory(e):
                    raise
                too_big.append(changes)
                free_memory()
                if step_up:
                    break
                continue
            fit.append({**changes, "tokens_per_s": figures["tokens_per_s"],
                        "peak_reserved_gb": figures["peak_reserved_gb"]})
            if not step_up:
                break
        if not fit:
            raise torch.cuda.OutOfMemoryError(f"out of memory with every setting tried: {too_big}")
        default = suite.figures("train", tt.RUN_NAMES["grouped"])
        speedup = figures["tokens_per_s"] / default["tokens_per_s"] if default else None
        changes = {k: v for k, v in fit[-1].items() if k not in ("tokens_per_s", "peak_reserved_gb")}
        return {**figures, "changes": changes, "fit": fit, "out_of_memory": too_big, "vs_default": speedup}

    return job


def run_records(suite: Suite, path: Path, n: int) -> Path:
    """`n` records of the generated length mix in the synthesis format, for train.py's data loader."""
    rows = [{"instruction": "Given a query, retrieve documents that answer it.", "query": ex.query,
             "positive": ex.positive, "negative": ex.negatives[0], "task_group": ex.task_group}
            for ex in tt.generated_mix(n, "{query}", 0)]
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_part(suite: Suite) -> dict:
    """train.py's run (recipe/train/run.py's train: build, loop, export) on the profile's `run_shape`
    in bf16 weights and the recipe's bf16 mixed precision, two steps with gradient clipping, a
    checkpoint after the first; what it left is checked, and its log is the figures."""
    from recipe.train import outdir, run

    p, out = suite.profile, suite.workdir / "run"
    trackers = ["tensorboard"] if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX") else []
    cfg = suite.cfg(tiny_model=p.run_shape, dtype="bfloat16", output_dir=str(out), global_batch_size=p.run_batch,
                    data=[str(run_records(suite, suite.workdir / "run.jsonl", 3 * p.run_batch))], max_steps=2,
                    save_steps=1, warmup_steps=1, max_grad_norm=1.0, report_to=trackers)
    tt.reset_peak()
    t0 = time.perf_counter()
    final = run.train(cfg, outdir.inspect(out))
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / outdir.LOG).read_text().splitlines()]
    saved = sorted(f.name for f in (out / "checkpoints" / "step-000001").iterdir())
    problems = [what for what, bad in [
        ("2 logged steps", [r["step"] for r in rows] != [1, 2]),
        ("a finite loss and gradient norm", not all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"])
                                                    for r in rows)),
        ("the checkpoint's state and RNG", saved != ["rng-0.pt", "state.pt"]),
        ("final/ with merged weights", not (final / "model.safetensors").is_file())] if bad]
    if problems:
        raise RuntimeError(f"the run left no {', no '.join(problems)} in {out}")
    shape = {k: v for k, v in p.run_shape.items() if k != "vocab_size"}
    return {"seconds": seconds, "steps": rows, "checkpoint": saved, "trackers": trackers,
            "peak_memory_gb": max(r["peak_memory_gb"] for r in rows), "shape": shape,
            "dtype": cfg.dtype, "mixed_precision": cfg.mixed_precision, "global_batch": cfg.global_batch_size}


def full_batch_job(suite: Suite) -> dict:
    p = suite.profile
    return suite.train(suite.cfg(), "grouped", p.full_batch, f"ours, grouped, {p.full_batch} queries", gpus=1)


def encode_job(suite: Suite) -> dict:
    from eval_throughput import BENCHMARKS, MIXES, decoder, measure_mix, project_hours, read_volume

    p = suite.profile
    model, vocab = decoder(p.encoder, suite.device.type)
    rng, mixes = random.Random(0), {}
    for mix in MIXES:
        mixes[mix] = measure_mix(model, mix, p.encode_texts, p.encode_batch, vocab, rng)
    projected = {b: project_hours(mixes, read_volume(b)) for b in BENCHMARKS}
    return {"mixes": mixes, "projected_hours": projected, "batch_size": p.encode_batch,
            "texts_per_mix": p.encode_texts, "dtype": "float16" if suite.device.type == "cuda" else "float32"}


def mine_job(suite: Suite) -> dict:
    from data_throughput import miner, miner_throughput

    p = suite.profile
    model = miner(suite.device.type, p.miner, max_seq_length=512)
    return {**miner_throughput(model, p.miner_texts, p.miner_texts, p.miner_corpus),
            "params": sum(t.numel() for t in model.parameters())}


def jobs(profile: Profile) -> list[Job]:
    """Every job of the suite, in the order they run: what matters most for the least GPU time
    first. The run comes right after the tests: it is what would break the first real run. Ours ungrouped and the smallest mini-batch come after encoding and mining: ungrouped runs
    as long as the sentence-transformers run, whose padding it shares, and a smaller mini-batch
    only saves memory the default does not need. The whole batch, as long as the levers together,
    comes last."""
    p = profile.priors
    step = Suite.step_s
    lever = lambda s: 1.3 * step(s) + p["build"]  # noqa: E731
    padded = lambda s: 2.2 * step(s) + p["build"]  # noqa: E731 - ungrouped: ~2x the positions
    no_ckpt = [{"gradient_checkpointing": False, "mini_batch_size": m} for m in profile.no_checkpointing]
    flash = {"attn_implementation": "flash_attention_2"}
    stepping_up = lambda s: len(no_ckpt) * lever(s)  # noqa: E731
    *larger, smallest = [Job("levers", f"mini-batch {m}", lever_job([{"mini_batch_size": m}]), lever)
                         for m in profile.mini_batches]
    full = profile.full_batch / profile.batch
    return [Job("tests", "pytest -m gpu", tests_job, lambda s: p["tests"]),
            Job("run", "train.py's run", run_part, lambda s: p["run"]),
            Job("train", tt.RUN_NAMES["grouped"], train_job("grouped"), lambda s: 1.2 * step(s) + p["build"]),
            Job("train", tt.RUN_NAMES["baseline"], train_job("baseline"), padded),
            Job("levers", "gradient checkpointing off", lever_job(no_ckpt, step_up=True), stepping_up),
            Job("levers", "LoRA input cast off", lever_job([{"lora_cast_input": False}]), lever),
            Job("levers", "flash_attention_2 + padding_free", lever_job([{**flash, "padding_free": True}]), lever,
                "flash_attn"),
            Job("levers", "flash_attention_2", lever_job([flash]), lever, "flash_attn"),
            Job("levers", "liger kernels", lever_job([{"liger_kernels": True}]), lever, "liger_kernel"),
            *larger,
            # torch compiles flex attention on its first calls: after the levers that need no compiler
            Job("levers", "flex_attention + padding_free", lever_job([{"attn_implementation": "flex_attention",
                                                                       "padding_free": True}]), lever, cuda=True),
            Job("encode", "encode", encode_job, lambda s: p["encode"]),
            Job("mine", "mine", mine_job, lambda s: p["mine"]),
            Job("train", tt.RUN_NAMES["ungrouped"], train_job("ungrouped"), padded),
            smallest,
            Job("full-batch", f"{profile.full_batch} queries", full_batch_job,
                lambda s: 1.05 * full * step(s) + p["build"])]


# ---------------------------------------------------------------- running


def run_job(suite: Suite, job: Job) -> None:
    if job.needs and importlib.util.find_spec(job.needs) is None:
        return suite.record(job, "skipped", reason=f"{job.needs} is not installed (docs/benchmarks.md: wheels)")
    if job.cuda and suite.device.type != "cuda":
        return suite.record(job, "skipped", reason="needs CUDA")
    left, cost = suite.budget_s - suite.elapsed(), job.cost(suite)
    if cost > left:
        return suite.record(job, "skipped", reason=f"budget: needs ~{cost:.0f} s, {max(left, 0):.0f} s left; "
                                                   "run it with --parts rest")
    suite.record(job, "running", estimate_s=round(cost))  # a command killed here still says where
    t = time.perf_counter()
    try:
        figures = job.run(suite)
    except JobFailed as e:
        status, fields = "failed", {"error": one_line(e)[:300], "figures": e.figures}
    except Exception as e:  # noqa: BLE001 - one job's failure is recorded; the others still run
        status = "out of memory" if out_of_memory(e) else "failed"
        fields = {"error": f"{type(e).__name__}: {one_line(e)[:300]}"}
    else:
        status, fields = "ok", {"figures": figures}
    free_memory()
    seconds = round(time.perf_counter() - t, 1)
    suite.record(job, status, seconds=seconds, estimate_s=round(cost), **fields)
    print(f"[{job.part}] {job.name}: {status} in {seconds:.0f} s ({suite.elapsed():.0f} s of {suite.budget_s:.0f})",
          flush=True)


def out_of_memory(e: BaseException) -> bool:
    """CUDA's OOM, also as the plain RuntimeError it can become on its way out of the backward
    (GradCache's second pass runs inside a hook of the autograd engine)."""
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def restored_liger_patches():
    """Liger replaces Mistral's module-level RoPE, RMSNorm and MLP: put them back for later jobs."""
    from transformers.models.mistral import modeling_mistral

    saved = {k: getattr(modeling_mistral, k) for k in ("apply_rotary_pos_emb", "MistralRMSNorm", "MistralMLP")}
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(modeling_mistral, k, v)


def matmul_ceiling(n: int, device: torch.device) -> dict:
    """TFLOP/s of the best of 3 timings of 20 square matmuls: bf16 on GPU, float32 on CPU."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(3):
        t = tt.Clock.now()
        for _ in range(20):
            a @ b
        best = min(best, tt.Clock.now() - t)
    name = str(dtype).split(".")[-1]
    return {"matmul_tflops": 2 * n**3 * 20 / best / 1e12, "matmul": f"{name} {n}^3, best of 3 x 20"}


def versions() -> dict:
    return {"cuda": torch.version.cuda, **provenance.versions(GPU_PACKAGES)}


def machine() -> dict:
    out = {"cpus": os.cpu_count(), "platform": platform.platform()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out.update(device=props.name, memory_gb=round(props.total_memory / 2**30, 1),
                   capability=f"{props.major}.{props.minor}", datasheet_bf16_tflops=peak_tflops())
    else:
        out.update(device=f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads")
    return out


def selected(parts: str, state: dict | None, profile: Profile) -> list[Job]:
    every = jobs(profile)
    if parts == "rest":
        done = {(part, name) for part, js in (state or {}).get("parts", {}).items()
                for name, r in js.items() if r["status"] in FINISHED}
        return [j for j in every if (j.part, j.name) not in done]
    names = PARTS if parts == "all" else parts.split(",")
    return [j for j in every if j.part in names]


@dataclass
class GpuSuiteSettings:
    output_dir: str = setting("", "folder for gpu_suite.json, gpu_suite.md and pytest_gpu.xml (required)")
    parts: list[str] = setting(["all"], f"all, rest, or some of {','.join(PARTS)}", choices=(*PARTS, "all", "rest"))
    budget_s: float | None = setting(None, "start no job that would end after this many seconds "
                                           "(default: 510 on GPU, 300 tiny)")
    tiny: bool = setting(False, "2-layer models on CPU: the suite's code paths, in minutes")
    threads: int | None = setting(None, "torch CPU threads (default: 1 with --tiny)")


def _main(argv: list[str]) -> int:
    args = parse(GpuSuiteSettings, argv)
    out = check_output_dir(args.output_dir, TOOL, replaces=())  # gpu_suite.json: the state it resumes from
    profile = profiles()["tiny" if args.tiny else "gpu"]
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per model built and saved: noise in the log
    threads = args.threads if args.threads is not None else (1 if args.tiny else 0)
    if threads:
        torch.set_num_threads(threads)
    previous = json.loads((out / "gpu_suite.json").read_text()) if (out / "gpu_suite.json").is_file() else None
    if args.parts == ["rest"] and previous and previous.get("profile") != profile.name:
        raise ConfigError(f"{out}/gpu_suite.json holds a {previous.get('profile')} run; --parts rest continues a "
                          f"run of the same profile ({profile.name})")
    mark_output_dir(out, TOOL)
    todo = selected(",".join(args.parts), previous, profile)
    command = "python benchmarks/gpu_suite.py " + " ".join(argv)
    suite = Suite(profile, out, args.budget_s or profile.budget_s, command,
                  previous if args.parts == ["rest"] else None)
    if any(j.part in ("train", "levers", "full-batch") for j in todo):
        suite.state["machine"].update(matmul_ceiling(profile.matmul, suite.device))
        free_memory()
    suite.save()
    for job in todo:
        run_job(suite, job)
    shutil.rmtree(suite.workdir, ignore_errors=True)
    print(markdown(suite.state))
    return int(any(r["status"] == "failed" for js in suite.state["parts"].values() for r in js.values()))


main = cli.command(_main, doc=__doc__, config=GpuSuiteSettings, module=__name__)
