"""One optimiser step of the recipe on this process's share of a global batch: tokenize with the
EOS contract checked, the cached InfoNCE with the batch's duplicate mask, backward, gradient
clipping, AdamW and the learning-rate schedule. recipe/train/run.py's Step runs it, for train.py
and for benchmarks/train_throughput.py, so that the benchmark times the step that trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .batch import Batch
from .grouping import computed_tokens
from .tokenize import encode


@dataclass
class StepResult:
    loss: torch.Tensor  # this process's loss, detached
    accuracy: float
    grad_norm: float
    real_tokens: int  # non-pad tokens of this process's texts
    computed_tokens: int  # token positions the model ran (GradCache trims trailing pads; padding_free: no pads)


def train_step(model, loss_fn, batch: Batch, optimizer, scheduler=None, *, cfg, device,
               backward: Callable[[torch.Tensor], None] | None = None, clip: Callable | None = None,
               check: Callable[[torch.Tensor, Batch], None] | None = None) -> StepResult:
    """`cfg`: the recipe (append_eos, cached, mini_batch_size, group_by_length, padding_free, max_grad_norm).
    `backward`/`clip` default to torch's (train.py passes accelerate's); `check(loss, batch)` runs
    before the backward and may stop the run (train.py: a loss that is not finite anywhere)."""
    features = [encode(model, column, cfg.append_eos) for column in batch.columns]
    mini_batch = cfg.mini_batch_size if cfg.cached or cfg.group_by_length else len(batch.columns[0])
    real = sum(int(f["attention_mask"].sum()) for f in features)
    computed = real if cfg.padding_free else sum(
        computed_tokens(f["attention_mask"], mini_batch, cfg.group_by_length) for f in features)
    features = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in f.items()} for f in features]
    loss = loss_fn(features, batch.ids)
    if check:
        check(loss, batch)
    (backward or torch.Tensor.backward)(loss)
    trainable = [p for p in model.parameters() if p.requires_grad]
    grad_norm = (clip or torch.nn.utils.clip_grad_norm_)(trainable, cfg.max_grad_norm or math.inf)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss.detach(), float(loss_fn.accuracy), float(grad_norm), real, computed)
