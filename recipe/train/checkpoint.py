"""Checkpoints that resume exactly: trainable weights (the adapter), optimizer, scheduler, the
step (which, with the seeded batch plan, is the data position) and every process's RNG state.

Only trainable parameters are saved: for LoRA on a 7B model that is 42M parameters, not 14 GB.
A checkpoint is written to a temporary folder and renamed when complete, so a run killed while
saving leaves the previous checkpoint intact. Process 0 creates that folder and every process
writes its RNG state into it, so the output dir must be one folder for every process, on every
machine: `check_shared` says so in one line before anything is loaded, not at the first save.
"""

from __future__ import annotations

import random
import shutil
import uuid
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..errors import InputError, OneProcessInputError
from .outdir import checkpoints


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_shared(output_dir: Path, accelerator) -> None:
    """Every process sees what process 0 writes in `output_dir` (several machines: a filesystem
    they share); else every process stops with the same line."""
    if accelerator.num_processes == 1:
        return
    from accelerate.utils import broadcast_object_list

    probe = Path(output_dir) / ".written-by-process-0"
    token = [uuid.uuid4().hex if accelerator.is_main_process else None]
    if accelerator.is_main_process:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(token[0])
    broadcast_object_list(token)  # process 0 has written it before any process reads it
    try:
        seen = probe.read_text() == token[0]
    except OSError:
        seen = False
    blind = int(accelerator.reduce(torch.tensor(float(not seen), device=accelerator.device)).item())
    if accelerator.is_main_process:
        probe.unlink()
    if blind:
        raise ConfigError(f"output_dir {output_dir}: {blind} of {accelerator.num_processes} processes do not see "
                          "what process 0 writes there (another machine's own disk?); checkpoints and --resume need "
                          "one folder for all: put output_dir on a filesystem every machine shares")


def path_of(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def save(output_dir: Path, step: int, model, optimizer, scheduler, accelerator, keep: int,
         protect: Path | None = None) -> Path:
    """The trainable weights, optimizer, scheduler and RNG states at `step`; then the oldest past the
    newest `keep` are deleted, but `protect` (load_best_model_at_end's best so far)."""
    final = path_of(output_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(_rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        weights = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
        torch.save({"step": step, "weights": weights, "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()}, tmp / "state.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        tmp.rename(final)
        for old in checkpoints(output_dir)[:-keep] if keep > 0 else []:
            if old != protect:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def load_weights(path: Path, model) -> dict:
    """Copy the trainable weights saved at `path` into `model`; the checkpoint's whole state."""
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    missing = [n for n in state["weights"] if n not in params]
    if missing:
        raise InputError(f"{path}: checkpoint weights {missing[:3]} are not in this model (another recipe?)")
    with torch.no_grad():
        for n, w in state["weights"].items():
            params[n].copy_(w)
    return state


def load(path: Path, model, optimizer, scheduler, accelerator) -> int:
    """Restore everything saved at `path`; return the number of steps already done."""
    state = load_weights(path, model)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = path / f"rng-{accelerator.process_index}.pt"
    if not rng.is_file():
        raise OneProcessInputError(f"{path}: no RNG state for process {accelerator.process_index} "
                         "(resume with the number of processes that wrote it)")
    _set_rng_state(torch.load(rng, weights_only=False))
    return state["step"]
