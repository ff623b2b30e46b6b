"""The loss: InfoNCE over cosine similarities at temperature 0.02, each query against its positive,
its hard negatives and every other document of the global batch, with duplicates of its own
positive (and empty negative slots) masked out of its softmax; cached (GradCache) and plain
forwards agree, and two gloo processes agree with one process on the concatenated batch. The same
for the keys beyond the paper: the false-negative margin (a rule of the same mask) and Matryoshka
widths (the loss summed over cut embeddings)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest
import torch

from recipe.train.batch import make_batch
from recipe.train.data import Example
from recipe.train.loss import build_loss
from recipe.train.tokenize import encode
from tests.train_helpers import (COLLECTIVE_TIMEOUT, assert_same_gradients, columns, spawn, tiny_model,
                                 watch_for_hangs)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHARED = "Yes, that is right."  # a label-like positive that many records share


def _loss_and_grads(model, loss_fn, texts, ids=None):
    model.zero_grad(set_to_none=True)
    features = [encode(model, col, True) for col in texts]
    loss = loss_fn(features, ids)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def with_duplicates(examples: list[Example]) -> list[Example]:
    """Half the records share one positive text; one record's negative is that text too, one has
    its own positive as its negative, and one has a single negative where the batch takes two."""
    out = [replace(ex, negatives=list(ex.negatives) + [f"another negative {i}"]) for i, ex in enumerate(examples)]
    for i in range(0, len(out), 2):
        out[i].positive = SHARED
    out[1].negatives[0] = SHARED
    out[3].negatives[0] = out[3].positive
    out[5].negatives = out[5].negatives[:1]
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # dropout 0: the plain forward draws its dropout masks differently from GradCache's replay
    return tiny_model(tmp_path_factory.mktemp("tiny"), lora_dropout=0.0)


def test_cached_equals_uncached_loss_and_gradients(tiny):
    model, examples, _ = tiny
    model.train()
    texts = columns(examples[:12])
    cached, g_cached = _loss_and_grads(model, build_loss(model, 0.02, True, 5, False), texts)
    plain, g_plain = _loss_and_grads(model, build_loss(model, 0.02, False, 5, False), texts)
    assert torch.allclose(cached, plain, rtol=1e-5, atol=0), (cached, plain)
    assert_same_gradients(g_cached, g_plain)


def test_masked_cached_equals_uncached_loss_and_gradients(tiny):
    model, examples, _ = tiny
    model.train()
    dups = with_duplicates(examples[:12])
    batch = make_batch(dups, list(range(12)), 0, 1, num_negatives=2)
    masked = {}
    for cached in (True, False):
        loss_fn = build_loss(model, 0.02, cached, 5, False, group_by_length=cached)
        masked[cached] = _loss_and_grads(model, loss_fn, batch.columns, batch.ids) + (loss_fn.accuracy,)
    (cached, g_cached, acc_cached), (plain, g_plain, acc_plain) = masked[True], masked[False]
    assert torch.allclose(cached, plain, atol=1e-5), (cached, plain)
    assert acc_cached == acc_plain
    for name in g_plain:
        assert torch.allclose(g_cached[name], g_plain[name], atol=1e-5, rtol=1e-4), name
    # the mask is not vacuous: without it the same batch has another loss
    unmasked, _ = _loss_and_grads(model, build_loss(model, 0.02, True, 5, False), batch.columns)
    assert unmasked - cached > 0.01  # float noise is ~1e-6


def test_loss_is_infonce_with_the_temperature(tiny):
    """By hand: -log softmax(cos / t) over [all positives | all negatives], target = own positive."""
    model, examples, _ = tiny
    model.eval()
    texts = columns(examples[:8])
    with torch.no_grad():
        q, p, n = (model.encode(col, convert_to_tensor=True, batch_size=8) for col in texts)
        for t in (0.02, 0.05):
            scores = q @ torch.cat([p, n]).T / t  # embeddings are normalised: dot = cosine
            expected = torch.nn.functional.cross_entropy(scores, torch.arange(8))
            got = build_loss(model, t, True, 4, False)([encode(model, c, True) for c in texts], None)
            assert math.isclose(got.item(), expected.item(), rel_tol=1e-4), (t, got, expected)
        # the temperature matters: the two values differ
        s02 = torch.nn.functional.cross_entropy(q @ torch.cat([p, n]).T / 0.02, torch.arange(8))
        s1 = torch.nn.functional.cross_entropy(q @ torch.cat([p, n]).T / 1.0, torch.arange(8))
        assert abs(s02 - s1) > 0.1


def test_duplicates_of_the_positive_are_masked_as_by_hand(tiny):
    """Half the records share one positive: for each of them the others' copies of that text (as
    positives or as negatives) are not negatives, nor is an empty negative slot; everything else is."""
    model, examples, _ = tiny
    model.eval()
    dups = with_duplicates(examples[:8])
    batch = make_batch(dups, list(range(8)), 0, 1, num_negatives=2)
    queries, positives = batch.columns[0], batch.columns[1]
    candidates = [text for column in batch.columns[1:] for text in column]
    assert candidates.count(SHARED) == 5 and candidates.count("") == 1
    with torch.no_grad():
        q = model.encode(queries, convert_to_tensor=True, batch_size=8)
        docs = model.encode(candidates, convert_to_tensor=True, batch_size=24)
        for t in (0.02, 0.05):
            scores = q @ docs.T / t
            losses = []
            for i in range(8):
                keep = [c for c, text in enumerate(candidates)
                        if c == i or (text != "" and text != positives[i])]
                losses.append(torch.logsumexp(scores[i, keep], 0) - scores[i, i])
            expected = torch.stack(losses).mean()
            features = [encode(model, c, True) for c in batch.columns]
            got = build_loss(model, t, True, 3, False, group_by_length=True)(features, batch.ids)
            assert math.isclose(got.item(), expected.item(), rel_tol=1e-4), (t, got, expected)
        # what the mask removes is real: records 0, 2, 4, 6 lose 3 shared copies each, 3 its own
        # negative (equal to its positive), everyone the empty slot
        naive = torch.nn.functional.cross_entropy(scores, torch.arange(8))
        assert not math.isclose(naive.item(), expected.item(), rel_tol=1e-3)


def test_same_query_with_several_positives_masks_each_other(tiny):
    """A FlagEmbedding row with two positives is two records with one query: neither positive is a
    negative for that query, though their texts differ."""
    model, examples, _ = tiny
    model.eval()
    two = [replace(ex, negatives=list(ex.negatives)) for ex in examples[:6]]
    two[1].query = two[0].query
    batch = make_batch(two, list(range(6)), 0, 1, num_negatives=1)
    with torch.no_grad():
        q = model.encode(batch.columns[0], convert_to_tensor=True)
        docs = model.encode(batch.columns[1] + batch.columns[2], convert_to_tensor=True)
        scores = q @ docs.T / 0.02
        losses = [torch.logsumexp(scores[i, [c for c in range(12) if c == i or {i, c} != {0, 1}]], 0) - scores[i, i]
                  for i in range(6)]
        got = build_loss(model, 0.02, True, 4, False)([encode(model, c, True) for c in batch.columns], batch.ids)
    assert math.isclose(got.item(), torch.stack(losses).mean().item(), rel_tol=1e-4)


def margin_between_gaps(gaps: torch.Tensor) -> float:
    """A margin halfway between two of the given (candidate - positive) cosine gaps, near their
    middle: it masks some candidates and keeps others, and no gap lies within float noise of it."""
    values = torch.sort(gaps[gaps > 0].flatten()).values
    middle = len(values) // 2
    assert len(values) > 4 and values[middle] - values[middle - 1] > 1e-4
    return float(values[middle - 1] + values[middle]) / 2


def test_false_negative_margin_masks_as_by_hand(tiny):
    """With a margin, a candidate whose cosine exceeds the positive's by more than the margin is
    left out as well (Qwen3-Embedding's rule), on top of the duplicates; never the positive itself."""
    model, examples, _ = tiny
    model.eval()
    dups = with_duplicates(examples[:8])
    batch = make_batch(dups, list(range(8)), 0, 1, num_negatives=2)
    positives = batch.columns[1]
    candidates = [text for column in batch.columns[1:] for text in column]
    with torch.no_grad():
        q = model.encode(batch.columns[0], convert_to_tensor=True, batch_size=8)
        cos = q @ model.encode(candidates, convert_to_tensor=True, batch_size=24).T
    gaps = cos - cos.diagonal()[:, None]
    margin = margin_between_gaps(gaps)
    losses, by_margin = [], 0
    for i in range(8):
        keep = []
        for c, text in enumerate(candidates):
            duplicate = c != i and (text == "" or text == positives[i])
            above = c != i and cos[i, c] > cos[i, i] + margin
            by_margin += above and not duplicate
            if not (duplicate or above):
                keep.append(c)
        losses.append(torch.logsumexp(cos[i, keep] / 0.02, 0) - cos[i, i] / 0.02)
    assert 0 < by_margin < 8 * 23  # the rule is not vacuous, nor does it empty the softmax
    features = [encode(model, c, True) for c in batch.columns]
    with torch.no_grad():
        got = build_loss(model, 0.02, True, 3, False, group_by_length=True, false_negative_margin=margin)(
            features, batch.ids)
        without = build_loss(model, 0.02, True, 3, False, group_by_length=True)(features, batch.ids)
    assert math.isclose(got.item(), torch.stack(losses).mean().item(), rel_tol=1e-4)
    assert without.item() - got.item() > 0.01  # leaving harder candidates out lowers the loss


def test_matryoshka_loss_is_the_sum_over_cut_embeddings_as_sentence_transformers_computes_it(tiny):
    """Each width: the embeddings cut to it and re-normalised, InfoNCE over them; summed with
    weight 1. By hand, and equal to sentence-transformers' MatryoshkaLoss around its cached loss."""
    from sentence_transformers.sentence_transformer.losses import (CachedMultipleNegativesRankingLoss,
                                                                   MatryoshkaLoss)

    model, examples, _ = tiny
    model.eval()
    texts = columns(examples[:8])
    dims = [16, 64, 32]  # any order; the hidden size is 64
    with torch.no_grad():
        q, p, n = (model.encode(col, convert_to_tensor=True, batch_size=8) for col in texts)
        expected = 0.0
        for d in dims:
            unit = [torch.nn.functional.normalize(e[:, :d], dim=1) for e in (q, p, n)]
            expected += torch.nn.functional.cross_entropy(unit[0] @ torch.cat(unit[1:]).T / 0.02, torch.arange(8))
        features = [encode(model, c, True) for c in texts]
        ours = build_loss(model, 0.02, True, 4, False, matryoshka_dims=dims)(features, None)
        theirs = MatryoshkaLoss(model, CachedMultipleNegativesRankingLoss(model, scale=50.0, mini_batch_size=4),
                                dims)(features, None)
        whole = build_loss(model, 0.02, True, 4, False)(features, None)
    assert math.isclose(ours.item(), expected.item(), rel_tol=1e-4), (ours, expected)
    assert math.isclose(ours.item(), theirs.item(), rel_tol=1e-4), (ours, theirs)
    assert ours.item() > whole.item() + 0.1  # three terms, not the whole embedding's one


@pytest.mark.parametrize("keys", [{"false_negative_margin": 0.0}, {"matryoshka_dims": [64, 32, 8]},
                                  {"false_negative_margin": 0.0, "matryoshka_dims": [64, 8]}],
                         ids=["margin", "matryoshka", "both"])
def test_margin_and_matryoshka_cached_equal_uncached_loss_and_gradients(tiny, keys):
    model, examples, _ = tiny
    model.train()
    batch = make_batch(with_duplicates(examples[:12]), list(range(12)), 0, 1, num_negatives=2)
    got = {}
    for cached in (True, False):
        loss_fn = build_loss(model, 0.02, cached, 5, False, group_by_length=cached, **keys)
        got[cached] = _loss_and_grads(model, loss_fn, batch.columns, batch.ids)
    assert torch.allclose(got[True][0], got[False][0], atol=1e-5), (got[True][0], got[False][0])
    assert_same_gradients(got[True][1], got[False][1])
    plain, _ = _loss_and_grads(model, build_loss(model, 0.02, True, 5, False), batch.columns, batch.ids)
    assert abs(plain - got[True][0]) > 0.01  # the keys change the loss


def _worker(rank, world, init_file, workdir, out, device, margin, records):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from recipe.train.loss import infonce

    watch_for_hangs(out, rank)
    torch.set_num_threads(1)
    # built before the process group exists: save_pretrained writes only on rank 0 once it does
    model, examples, _ = tiny_model(f"{workdir}/{rank}", lora_dropout=0.0)  # same seed: same weights
    model.to(device)  # "cuda": both processes share one GPU; gloo gathers CUDA tensors through the host
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=COLLECTIVE_TIMEOUT))
    try:
        # 1. labels point at the own positive after gathering: queries equal their positives
        local = 3
        eye = torch.eye(2 * local * world, device=device)
        q = eye[rank * local:(rank + 1) * local]
        pos, neg = q.clone(), eye[(world + rank) * local:(world + rank + 1) * local]
        low, acc = infonce(q, [pos, neg], None, 50.0, gather=True, chunk=2)
        high, acc_swapped = infonce(q, [neg, pos], None, 50.0, gather=True, chunk=2)  # columns swapped
        # 2. the training path: cached loss through DDP over each rank's half of a batch whose
        # duplicates span both halves; grouped by length, as train.py runs by default (the
        # one-process reference is not grouped)
        model.train()
        wrapped = DDP(model)
        loss_fn = build_loss(model, 0.02, True, 4, gather=True, group_by_length=True)
        loss_fn.model = wrapped
        batch = make_batch(with_duplicates(examples[:records]), list(range(records)), rank, world, num_negatives=2)

        def features_on(device):
            return [{k: v.to(device) if torch.is_tensor(v) else v for k, v in encode(model, c, True).items()}
                    for c in batch.columns]

        loss = loss_fn(features_on(device), batch.ids)
        loss.backward()  # DDP averages the gradients over the two processes
        grads = {n: p.grad.cpu() for n, p in model.named_parameters() if p.requires_grad}
        # 3. the same batch with the false-negative margin and Matryoshka widths
        model.zero_grad(set_to_none=True)
        beyond = build_loss(model, 0.02, True, 4, gather=True, group_by_length=True, false_negative_margin=margin,
                            matryoshka_dims=[64, 16])
        beyond.model = wrapped
        loss_beyond = beyond(features_on(device), batch.ids)
        loss_beyond.backward()
        grads_beyond = {n: p.grad.cpu() for n, p in model.named_parameters() if p.requires_grad}
        torch.save({"rows": len(batch.columns[0]), "loss": loss.item(), "grads": grads, "low": low.item(), "high": high.item(),
                    "acc": (acc.item(), acc_swapped.item()), "batch_acc": float(loss_fn.accuracy),
                    "loss_beyond": loss_beyond.item(), "grads_beyond": grads_beyond},
                   f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one_process_on_the_concatenated_batch(tmp_path, tiny):
    two_processes_against_one(tmp_path, tiny, "cpu")


def test_three_processes_on_a_batch_that_does_not_split_evenly_equal_one_process(tmp_path, tiny):
    """11 records on 3 processes (shares of 3, 4 and 4 rows, as 2048 on 3, 5, 6 or 7 GPUs): the
    gather pads the shorter share and cuts the padding out, and the mean over processes of their
    losses, accuracies and gradients is the one process's on the whole batch."""
    two_processes_against_one(tmp_path, tiny, "cpu", world=3, records=11)


def two_processes_against_one(tmp_path, tiny, device: str, world: int = 2, records: int = 12) -> None:
    """The processes on `device` (tests/test_gpu_path.py runs them on one GPU), the reference on CPU.
    Also with the false-negative margin and Matryoshka widths: the margin's mask, made of the
    scores after gathering, is the one a single process makes on the whole batch."""
    model, examples, _ = tiny
    workdir = tmp_path / "model"
    # the single process: the reference, and a margin that masks some of its candidates
    single, _, _ = tiny_model(tmp_path / "single", lora_dropout=0.0)
    single.train()
    batch = make_batch(with_duplicates(examples[:records]), list(range(records)), 0, 1, num_negatives=2)
    with torch.no_grad():
        q, *docs = (single.encode(c, convert_to_tensor=True, batch_size=records) for c in batch.columns)
        cos = q @ torch.cat(docs).T
    margin = margin_between_gaps(cos - cos.diagonal()[:, None])
    spawn(_worker, (world, str(tmp_path / "rdzv"), str(workdir), str(tmp_path), device, margin, records), world,
          tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    assert sorted(r["rows"] for r in ranks) == sorted(records * (i + 1) // world - records * i // world
                                                      for i in range(world))
    for r in ranks:
        assert r["low"] < 1e-6 < 10 < r["high"]  # own positive is the target, not the negative
        assert r["acc"] == (1.0, 0.0)
    # one process, the 12 records at once, same model weights (same seed)
    loss_fn = build_loss(single, 0.02, True, 4, False)
    loss, grads = _loss_and_grads(single, loss_fn, batch.columns, batch.ids)
    mean_loss = sum(r["loss"] for r in ranks) / world
    assert math.isclose(mean_loss, loss.item(), rel_tol=1e-5), (mean_loss, loss)
    assert math.isclose(sum(r["batch_acc"] for r in ranks) / world, float(loss_fn.accuracy))
    worst = max((r["grads"][n] - g).abs().max().item() / g.abs().max().item()
                for n, g in grads.items() for r in ranks)
    assert worst < 1e-4, worst  # float32 round-off of a different summation order, nothing more
    beyond, grads_beyond = _loss_and_grads(single, build_loss(single, 0.02, True, 4, False, false_negative_margin=margin,
                                                              matryoshka_dims=[64, 16]), batch.columns, batch.ids)
    mean_beyond = sum(r["loss_beyond"] for r in ranks) / world
    assert math.isclose(mean_beyond, beyond.item(), rel_tol=1e-5), (mean_beyond, beyond)
    assert abs(beyond.item() - loss.item()) > 0.01  # the keys are on
    for r in ranks:
        assert_same_gradients(r["grads_beyond"], grads_beyond)
