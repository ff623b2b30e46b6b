"""The dev set's score during training (eval_split_size, eval_steps): each held-out query against
every held-out positive, in-batch style, as the loss scores a training batch: accuracy@1 (the share
of queries whose own positive scores highest) and the mean InfoNCE at the recipe's temperature.

The queries carry the instruction they would have trained with (recipe/train/data.py formats them)
and every text is tokenized under the EOS contract, as a training step does (`encode`). No hard
negatives and no false-negative margin: the score is the same whatever the recipe's negatives, so
two recipes' dev scores on one split compare. Every process computes it on the whole dev set with
the same weights, so all of them agree on it without communication; the main process logs it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .batch import make_batch
from .data import Example
from .loss import infonce
from .tokenize import encode


@dataclass
class DevScore:
    accuracy: float
    loss: float


def _embed(model, texts: list[str], chunk: int, append_eos: bool, device) -> torch.Tensor:
    parts = []
    for begin in range(0, len(texts), chunk):
        features = encode(model, texts[begin:begin + chunk], append_eos)
        features = {k: v.to(device) if torch.is_tensor(v) else v for k, v in features.items()}
        parts.append(model(features)["sentence_embedding"].float())
    return torch.cat(parts)


def score(model, dev: list[Example], *, temperature: float, mini_batch_size: int, append_eos: bool, device,
          autocast=contextlib.nullcontext) -> DevScore:
    """The dev set's accuracy@1 and mean InfoNCE under the model's current weights, in eval mode
    (no dropout) and without gradients; the model is back in train mode afterwards. `autocast`:
    the run's mixed precision (accelerate's), so that the dev set embeds as training does."""
    # the mask of training: a positive repeated by another dev record is not a negative of its query
    batch = make_batch(dev, list(range(len(dev))), 0, 1, 0)
    queries, positives = batch.columns
    model.eval()
    try:
        with torch.no_grad(), autocast():
            q = _embed(model, queries, mini_batch_size, append_eos, device)
            p = _embed(model, positives, mini_batch_size, append_eos, device)
            loss, accuracy = infonce(q, [p], batch.ids, 1.0 / temperature, gather=False, chunk=mini_batch_size)
    finally:
        model.train()
    return DevScore(float(accuracy), float(loss))


@dataclass
class Best:
    """load_best_model_at_end's pick among the scored steps final/ could be (the checkpoints and the
    end of training): the highest eval_accuracy, the earliest of equals, as transformers' Trainer."""

    step: int = 0
    accuracy: float = float("-inf")

    def offer(self, step: int, accuracy: float) -> None:
        if accuracy > self.accuracy:
            self.step, self.accuracy = step, accuracy
