"""InfoNCE over cosine similarities (temperature 0.02), each query against its positive, its hard
negative and every other document of the global batch: sentence-transformers' losses, which
meet the recipe (see docs/training.md and tests/test_train_loss.py for the proofs):

- `CachedMultipleNegativesRankingLoss` (GradCache, Gao et al. 2021, arXiv 2101.06983) embeds the
  batch in mini-batches twice, so 2048 queries x 3 texts fit in one GPU's memory, with the same
  loss and gradients as one plain forward (`MultipleNegativesRankingLoss`).
- `gather_across_devices=True` all-gathers the embeddings with gradients (the backward sums the
  gathered gradients back to their owners; DDP's mean then gives the gradient of the global mean
  loss), and lays the columns out as [positives of all ranks | negatives of all ranks], so that
  label i of rank r is column r * local_batch + i: its own positive.

Inputs: three tokenized columns (queries, positives, negatives), each (local_batch, length).
What we add: length grouping (recipe/train/grouping.py: each column is embedded longest first,
so a mini-batch holds texts of similar length and carries less padding; the embeddings go back
to their rows before the loss), the in-batch accuracy, read off the embeddings the loss already computed, and
float32 for the loss itself: bf16 embeddings give cosines to about 3 digits, and at scale 50 that
is an error of ~0.2 in each logit. The cast is inside autograd, so gradients reach the bf16 leaves.
"""

from __future__ import annotations

import torch
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.util import all_gather, get_rank

from .grouping import length_order, take_rows


def in_batch_accuracy(queries: torch.Tensor, docs: list[torch.Tensor], gather: bool) -> torch.Tensor:
    """Share of this process's queries whose own positive has the highest score of all documents."""
    with torch.no_grad():
        local = queries.shape[0]
        if gather:
            docs = [all_gather(d.detach()) for d in docs]
        offset = get_rank() * local if gather else 0
        scores = queries.detach().float() @ torch.cat(docs).float().T
        target = torch.arange(offset, offset + local, device=queries.device)
        return (scores.argmax(1) == target).float().mean()


class CachedInfoNCE(CachedMultipleNegativesRankingLoss):
    accuracy: torch.Tensor | None = None
    group_by_length: bool = False
    _orders: list[torch.Tensor] | None = None  # per column: the rows in the order they were embedded

    def forward(self, sentence_features, labels=None):
        features = list(sentence_features)
        self._orders = None
        if self.group_by_length:
            self._orders = [length_order(f["attention_mask"]) for f in features]
            features = [take_rows(f, o) for f, o in zip(features, self._orders)]
        return super().forward(features, labels)

    def calculate_loss(self, reps, labels=None, *, with_backward=False):
        reps = [[r.float() for r in column] for column in reps]
        if self._orders is None:
            return self._infonce(reps, labels, with_backward)
        # back to the original rows, so that query i meets positive i. The parent back-propagates
        # chunk by chunk, which an index in the graph would not survive (it frees its saved index
        # after the first chunk), so the rows are restored on fresh leaves and their gradients are
        # handed to the sorted embeddings in one backward at the end.
        sorted_cols = [torch.cat(column) for column in reps]
        restores = [torch.argsort(o).to(c.device) for o, c in zip(self._orders, sorted_cols)]
        if not with_backward:
            return self._infonce([[c[r]] for c, r in zip(sorted_cols, restores)], labels, False)
        leaves = [c.detach()[r].requires_grad_() for c, r in zip(sorted_cols, restores)]
        loss = self._infonce([[leaf] for leaf in leaves], labels, True)
        torch.autograd.backward(sorted_cols, [leaf.grad[o.to(leaf.device)] for leaf, o in zip(leaves, self._orders)])
        return loss

    def _infonce(self, reps, labels, with_backward):
        queries = torch.cat(reps[0])
        self.accuracy = in_batch_accuracy(queries, [torch.cat(r) for r in reps[1:]], self.gather_across_devices)
        return super().calculate_loss(reps, labels, with_backward=with_backward)


class InfoNCE(MultipleNegativesRankingLoss):
    accuracy: torch.Tensor | None = None

    def compute_loss_from_embeddings(self, embeddings, labels):
        embeddings = [e.float() for e in embeddings]
        self.accuracy = in_batch_accuracy(embeddings[0], embeddings[1:], self.gather_across_devices)
        return super().compute_loss_from_embeddings(embeddings, labels)


def build_loss(model, temperature: float, cached: bool, mini_batch_size: int, gather: bool,
               group_by_length: bool = False):
    """The recipe's loss; `gather` when more than one process trains (global in-batch negatives);
    `group_by_length` sorts each column by length before GradCache cuts it into mini-batches."""
    if cached:
        loss = CachedInfoNCE(model, scale=1.0 / temperature, mini_batch_size=mini_batch_size,
                             gather_across_devices=gather)
        loss.group_by_length = group_by_length
        return loss
    return InfoNCE(model, scale=1.0 / temperature, gather_across_devices=gather)
