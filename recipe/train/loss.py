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
What we add: the in-batch accuracy, read off the embeddings the loss already computed, and
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

    def calculate_loss(self, reps, labels=None, *, with_backward=False):
        reps = [[r.float() for r in column] for column in reps]
        queries = torch.cat(reps[0])
        self.accuracy = in_batch_accuracy(queries, [torch.cat(r) for r in reps[1:]], self.gather_across_devices)
        return super().calculate_loss(reps, labels, with_backward=with_backward)


class InfoNCE(MultipleNegativesRankingLoss):
    accuracy: torch.Tensor | None = None

    def compute_loss_from_embeddings(self, embeddings, labels):
        embeddings = [e.float() for e in embeddings]
        self.accuracy = in_batch_accuracy(embeddings[0], embeddings[1:], self.gather_across_devices)
        return super().compute_loss_from_embeddings(embeddings, labels)


def build_loss(model, temperature: float, cached: bool, mini_batch_size: int, gather: bool):
    """The recipe's loss; `gather` when more than one process trains (global in-batch negatives)."""
    if cached:
        return CachedInfoNCE(model, scale=1.0 / temperature, mini_batch_size=mini_batch_size,
                             gather_across_devices=gather)
    return InfoNCE(model, scale=1.0 / temperature, gather_across_devices=gather)
