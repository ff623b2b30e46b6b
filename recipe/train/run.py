"""One training run in an output dir that the command has already judged: `build` (the machine, the
data and the plan of every global batch, the model, its loss, optimiser and schedule), `loop` (one
global batch per step, logged and checkpointed), `export` (final/, merged and pushed if asked).

`train` runs the three. The recipe's settings are read here, and each module below receives
them once, in the order the run needs it: the model (recipe/train/model.py), the settings a
resume checks (recipe/config.py), the step (recipe/train/step.py), the export
(recipe/train/export.py); every other module receives plain values.
benchmarks/train_throughput.py builds its model with `build_embedder` and its `Step` with
`prepare`, so that it times the step that trains.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs, set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from .. import log
from ..config import ConfigError, to_dict
from ..errors import Stopped
from ..files import atomic_dir
from ..hub import MODEL, push
from ..sources import load_error
from . import checkpoint, merge, outdir
from .batch import Batch, make_batch
from .config import TrainConfig
from .data import Example, complete_negatives, hold_out, load_examples, plan_steps, plan_summary
from .dev import Best, DevScore
from .dev import score as dev_score
from .export import export as export_model
from .export import saved_instruction
from .loss import build_loss
from .metrics import StepMeter
from .model import build_model
from .step import StepResult, train_step


class LossNotFinite(Stopped):
    """The loss became NaN or inf: the run stops before the bad step changes the weights (exit 3)."""


class _NotFinite(Exception):
    """Raised inside a step, before its backward; the loop adds the step's number."""


def param_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices (LoRA A/B included), none on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def build_embedder(cfg: TrainConfig, workdir: Path, texts: list[str] | None = None, *, rank: int = 0,
                   world: int = 1, base=None, device: torch.device | str = "cpu"):
    """The model to train and its loss, as the recipe says: `(model, loss_fn)`, the model's weights
    loaded onto `device`. `texts` train the tiny model's tokenizer; `base` (benchmarks) replaces the
    base model's weights (recipe/train/model.py); with several processes (`world`) the loss gathers
    the batch."""
    try:
        model = build_model(cfg, workdir, texts, rank, base, device)
    except OSError as e:  # transformers' "not found" / "cannot connect" for a Hub id
        raise load_error(cfg.model, "--model", e) from None
    width = model.get_embedding_dimension()
    if any(d > width for d in cfg.matryoshka_dims):
        raise ConfigError(f"matryoshka_dims {cfg.matryoshka_dims}: the model's embedding has {width} dimensions")
    loss_fn = build_loss(model, cfg.temperature, cfg.cached, cfg.mini_batch_size, gather=world > 1,
                         group_by_length=cfg.group_by_length, false_negative_margin=cfg.false_negative_margin,
                         matryoshka_dims=cfg.matryoshka_dims)
    return model, loss_fn


@dataclass
class Step:
    """One optimiser step of the recipe, set up once for a run: called with examples and the indices
    of one global batch, it runs this process's contiguous share of it (recipe/train/step.py).
    `backward`/`clip` default to torch's (the run passes accelerate's); `check(loss, batch)` runs
    before the backward and may stop the run."""

    model: Any
    loss_fn: Any
    optimizer: Any
    scheduler: Any
    cfg: TrainConfig
    device: Any
    rank: int = 0
    world: int = 1
    backward: Callable | None = None
    clip: Callable | None = None
    check: Callable[[torch.Tensor, Batch], None] | None = None

    def __call__(self, examples: list[Example], indices: list[int]) -> StepResult:
        batch = make_batch(examples, indices, self.rank, self.world, self.cfg.num_negatives)
        return train_step(self.model, self.loss_fn, batch, self.optimizer, self.scheduler, cfg=self.cfg,
                          device=self.device, backward=self.backward, clip=self.clip, check=self.check)


def finite_everywhere(loss: torch.Tensor, batch: Batch, accelerator) -> None:
    """Before the backward, so that a bad step never changes the weights on any process."""
    bad = accelerator.reduce(torch.tensor(float(not torch.isfinite(loss)), device=accelerator.device))
    if bad.item() > 0:
        sources = sorted({ex.where for ex in batch.examples})
        raise _NotFinite(f"loss is {loss.item()} on some process; this process's "
                         f"batch came from {sources[:5]}{' ...' if len(sources) > 5 else ''}")


def check_one_gpu_per_process() -> None:
    """The launcher started one process per GPU of this machine at most: accelerate gives process i
    GPU i % count, so more processes than GPUs share one (and DDP's device ids run past the last)."""
    local = log.place().local_world
    if torch.cuda.is_available() and local > torch.cuda.device_count():
        gpus = torch.cuda.device_count()
        raise ConfigError(f"{local} processes were launched on this machine, which has {gpus} GPU(s): launch one "
                          f"per GPU (accelerate launch --num_processes {gpus} on one machine)")


def prepare(model, loss_fn, optimizer, accelerator) -> tuple[Any, Any, dict]:
    """The model and optimizer as accelerate runs them: `prepare` (DDP with several processes;
    mixed precision as autocast around the model's forward alone, its outputs cast to float32, so
    that the loss is computed in float32). `(wrapped model, optimizer, Step's keywords)`: the
    device, this process's place, accelerate's backward and clipping, and the check that the loss
    is finite on every process. Benchmarks build their Step with it too."""
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    loss_fn.model = wrapped  # the loss re-embeds through DDP, so that it can use no_sync
    return wrapped, optimizer, dict(device=accelerator.device, rank=accelerator.process_index,
                                    world=accelerator.num_processes, backward=accelerator.backward,
                                    clip=accelerator.clip_grad_norm_,
                                    check=partial(finite_everywhere, accelerator=accelerator))


@dataclass
class Training:
    """A run, built: what `loop` and `export` need."""

    cfg: TrainConfig
    accelerator: Any
    examples: list[Example]
    plan: list[list[int]]
    total: int
    start: int
    model: Any  # unwrapped; `wrapped` is what the process group trains
    wrapped: Any
    scheduler: Any
    step: Step
    meter: StepMeter
    summary: dict  # what final/ records of the data
    dev: list[Example]  # held out (eval_split_size), scored every eval_steps
    best: Best  # load_best_model_at_end's pick so far


def build(cfg: TrainConfig, state: outdir.RunState) -> Training | None:
    """The machine, the data and its plan, the model, its loss, optimiser and schedule, from a resume
    point or step 0; None when a --resume finds the run already at the planned end (it says so)."""
    # the machine it runs on
    if cfg.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(cfg.cpu_threads)
    check_one_gpu_per_process()
    out = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available(),
        log_with=cfg.report_to or None, project_dir=str(out),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.ddp_find_unused_parameters),
                         # the others wait while rank 0 downloads the base model and exports: not 10 minutes
                         InitProcessGroupKwargs(timeout=timedelta(seconds=cfg.process_group_timeout))])
    rank, world = accelerator.process_index, accelerator.num_processes
    checkpoint.check_shared(out, accelerator)
    # each process its own dropout stream; DDP starts every process from process 0's weights
    set_seed(cfg.seed, device_specific=True)

    if cfg.global_batch_size < world:
        raise ConfigError(f"global_batch_size {cfg.global_batch_size} gives no query to some of the {world} processes")

    # data: every record, and the global batches of the whole run (a pure function of the seed)
    examples = load_examples(cfg.data, cfg.data_ratios, cfg.query_template, cfg.seed, cfg.split,
                             columns=cfg.columns, instructions=cfg.data_instructions,
                             dataset_config=cfg.dataset_config)
    examples, dev = hold_out(examples, cfg.eval_split_size, cfg.seed)  # before the plan: never trained on
    # the saved query prompt's instruction, refused here (before the model loads) when it would be a guess
    instruction = saved_instruction(cfg.query_template, cfg.export_query_instruction,
                                    Counter(ex.instruction for ex in examples))
    digest = outdir.data_digest(examples)
    if cfg.resume:
        outdir.check_resume_data(state, digest)  # every process: each one stops with the same line
    missing = complete_negatives(examples, cfg.num_negatives, cfg.missing_negatives, cfg.seed)
    plan = plan_steps(examples, cfg.global_batch_size, cfg.seed, cfg.num_train_epochs, cfg.homogeneous_batches, cfg.max_steps)
    counts = plan_summary(examples, plan)
    total = len(plan)
    if cfg.merge_checkpoints and (total - 1) // cfg.save_steps + 1 < cfg.merge_checkpoints:
        raise ConfigError(f"merge_checkpoints {cfg.merge_checkpoints}: a run of {total} steps saving every "
                          f"{cfg.save_steps} ends with {(total - 1) // cfg.save_steps + 1} checkpoint(s); "
                          "lower save_steps or merge_checkpoints")
    try:
        resume_from = outdir.resume_point(state, total, cfg.resume)
    except outdir.NothingToDo as at_the_end:
        log.note(str(at_the_end))
        return None

    # model and loss (main process first: it may build and save the tiny base model)
    with accelerator.main_process_first():
        texts = [t for ex in examples[:2000] for t in (ex.query, ex.positive)]
        model, loss_fn = build_embedder(cfg, out / "base", texts, rank=rank, world=world, device=accelerator.device)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.learning_rate)
    # the scheduler stays outside accelerate.prepare: it steps once per optimiser step, whatever the world size
    scheduler = get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, total)
    wrapped, optimizer, on_accelerate = prepare(model, loss_fn, optimizer, accelerator)
    trainable = [p for p in wrapped.parameters() if p.requires_grad]

    start = 0
    if resume_from:
        start = checkpoint.load(resume_from, model, optimizer, scheduler, accelerator)
        log.say(f"resumed from step {start}")
    best = Best()
    for row in outdir.log_rows(out) if cfg.load_best_model_at_end and start else []:  # the steps scored before
        if "eval_accuracy" in row and row["step"] <= start and checkpoint.path_of(out, row["step"]).is_dir():
            best.offer(row["step"], row["eval_accuracy"])
    settings = to_dict(cfg)
    if cfg.report_to:
        accelerator.init_trackers("e5-recipe", config={k: str(v) for k, v in settings.items()})
    if accelerator.is_main_process:
        outdir.prepare(state, start, cfg.overwrite)  # the log holds this run's steps only
        if start == 0:
            outdir.record_settings(out, settings, digest)
        past = " or past max_steps" if cfg.max_steps else ""
        log.say(f"the plan uses {counts['used']} of {counts['read']} records (the rest: the last "
                f"partial batch{past}); {len(plan)} global batches of {cfg.global_batch_size}, "
                f"{total} steps on {world} process(es); {n_params / 1e6:.1f}M parameters, "
                f"{sum(p.numel() for p in trainable) / 1e6:.2f}M trainable"
                + (f"; {len(dev)} more held out as the dev set (eval_split_size), never trained on, "
                   f"scored every {cfg.eval_steps} steps and at the end" if dev else ""))
        for source, n in counts["per_source"].items():
            log.say(f"  {source}: {n['used']} of {n['read']} records")
        if missing:
            how = "fill with random documents" if cfg.missing_negatives == "random" else "in-batch negatives only"
            log.say(f"{missing} records had fewer than {cfg.num_negatives} hard negative(s): "
                    f"missing_negatives {cfg.missing_negatives} ({how})")

    step = Step(model, loss_fn, optimizer, scheduler, cfg, **on_accelerate)
    meter = StepMeter(n_params, cfg.cached, cfg.gradient_checkpointing, world)
    summary = {"sources": cfg.data, "ratios": cfg.data_ratios or [1.0] * len(cfg.data),
               "records": counts["read"], "records_trained": counts["used"],
               "per_source": counts["per_source"], "steps": total, "global_batch_size": cfg.global_batch_size,
               "records_short_of_negatives": missing, "query_instruction": instruction}
    if dev:
        summary["records_held_out"] = len(dev)
    return Training(cfg, accelerator, examples, plan, total, start, model, wrapped, scheduler, step, meter, summary,
                    dev, best)


def evaluate(t: Training, done: int) -> DevScore:
    """The dev set's score after `done` steps; with load_best_model_at_end, offered as final/ where
    that step is a checkpoint or the end."""
    cfg = t.cfg
    scored = dev_score(t.model, t.dev, temperature=cfg.temperature, mini_batch_size=cfg.mini_batch_size,
                       append_eos=cfg.append_eos, device=t.accelerator.device, autocast=t.accelerator.autocast)
    if cfg.load_best_model_at_end and (done % cfg.save_steps == 0 or done == t.total):
        t.best.offer(done, scored.accuracy)
    return scored


def loop(t: Training) -> None:
    """One global batch per step, this process's contiguous share of it: the loss logged every
    `logging_steps` (and at the end), the dev set scored every `eval_steps` (and at the end) and
    logged beside it, a checkpoint saved every `save_steps`."""
    cfg, accelerator, out = t.cfg, t.accelerator, Path(t.cfg.output_dir)
    world = accelerator.num_processes
    log_file = (out / outdir.LOG).open("a") if accelerator.is_main_process else None
    try:
        # a `with`, so that the bar is closed before an error's one line is printed, not after it
        with tqdm(total=t.total, initial=t.start, disable=not log.bars(), desc="train") as bar:
            t.wrapped.train()
            for step in range(t.start, t.total):
                t.meter.start()
                try:
                    result = t.step(t.examples, t.plan[step])
                except _NotFinite as e:
                    raise LossNotFinite(f"step {step + 1}: {e}") from None

                evaluating = t.dev and ((step + 1) % cfg.eval_steps == 0 or step + 1 == t.total)
                if (step + 1) % cfg.logging_steps == 0 or step + 1 == t.total or evaluating:
                    sums = accelerator.reduce(torch.tensor([result.loss.item(), result.accuracy, result.real_tokens,
                                                            result.computed_tokens],
                                                           dtype=torch.float64, device=accelerator.device))
                    row = {"step": step + 1, "loss": sums[0].item() / world, "accuracy": sums[1].item() / world,
                           "lr": t.scheduler.get_last_lr()[0], "grad_norm": result.grad_norm,
                           **t.meter.figures(int(sums[2]), int(sums[3]))}
                    shown = dict(loss=f"{row['loss']:.4f}", acc=f"{row['accuracy']:.3f}",
                                 tok_s=f"{row['tokens_per_s']:.0f}")
                    if evaluating:
                        scored = evaluate(t, step + 1)
                        row.update(eval_accuracy=scored.accuracy, eval_loss=scored.loss)
                        shown.update(eval_acc=f"{scored.accuracy:.3f}", eval_loss=f"{scored.loss:.4f}")
                    if log_file:
                        log_file.write(json.dumps(row) + "\n")
                        log_file.flush()
                    if cfg.report_to:
                        accelerator.log(row, step=step + 1)
                    bar.set_postfix(shown)
                bar.update(1)
                # a merge takes the end of training as its newest checkpoint
                if cfg.save_steps and ((step + 1) % cfg.save_steps == 0 and step + 1 < t.total
                                       or cfg.merge_checkpoints and step + 1 == t.total):
                    best = checkpoint.path_of(out, t.best.step) if t.best.step else None
                    checkpoint.save(out, step + 1, t.model, t.step.optimizer, t.scheduler, accelerator,
                                    cfg.save_total_limit, protect=best)
    finally:
        if log_file:
            log_file.close()


def export(t: Training) -> Path:
    """final/, which loads with SentenceTransformer(path) and embeds as the trained model does,
    written whole by the main process (merged from the last checkpoints if asked, then pushed)."""
    cfg, accelerator, out = t.cfg, t.accelerator, Path(t.cfg.output_dir)
    accelerator.wait_for_everyone()
    final = out / outdir.FINAL
    if accelerator.is_main_process:
        if cfg.merge_checkpoints:
            merged = checkpoint.checkpoints(out)[-cfg.merge_checkpoints:]
            merge.merge_into(accelerator.unwrap_model(t.wrapped), merged, cfg.merge_method)
            log.result(f"final/ is the {cfg.merge_method} of checkpoints {', '.join(p.name for p in merged)}")
        if cfg.load_best_model_at_end and t.best.step not in (0, t.total):
            best = checkpoint.path_of(out, t.best.step)
            checkpoint.load_weights(best, accelerator.unwrap_model(t.wrapped))
            t.summary.update(best_model_checkpoint=best.name, best_eval_accuracy=t.best.accuracy)  # the card says so
            log.result(f"final/ is checkpoint {best.name}, the best eval_accuracy on the dev set "
                       f"({t.best.accuracy:.4f}; train_log.jsonl has every step's)")
        with atomic_dir(final, overwrite=True) as tmp:  # whole or not at all; an older final/ stays until then
            export_model(accelerator.unwrap_model(t.wrapped), cfg, tmp, t.summary)
        log.result(f"model written to {final}")
        if cfg.push_to_hub:
            log.result(f"pushed to {push(final, cfg.hub_model_id, MODEL)}")
    accelerator.wait_for_everyone()
    return final


def train(cfg: TrainConfig, state: outdir.RunState) -> Path | None:
    """Build, loop, export: final/'s path, or None when there was nothing to do. `state`: the
    output dir as the command found it (recipe/train/outdir.py), before anything was loaded."""
    t = build(cfg, state)
    if t is None:
        return None
    loop(t)
    final = export(t)
    # what end_training() does but its destroy_process_group, which the command does once the model is gone
    for tracker in t.accelerator.trackers:
        tracker.finish()
    return final
