"""The loss: InfoNCE over cosine similarities at temperature 0.02, each query against its positive,
its hard negative and every other document of the global batch; cached (GradCache) and plain
forwards agree, and two gloo processes agree with one process on the concatenated batch."""

from __future__ import annotations

import faulthandler
import math
from datetime import timedelta

import pytest
import torch
import torch.multiprocessing as mp

from recipe.train.loss import build_loss
from recipe.train.tokenize import encode
from tests.train_helpers import assert_same_gradients, columns, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loss_and_grads(model, loss_fn, texts):
    model.zero_grad(set_to_none=True)
    features = [encode(model, col, True) for col in texts]
    loss = loss_fn(features, None)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


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


def _worker(rank, world, init_file, workdir, out):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    faulthandler.dump_traceback_later(240, exit=True)  # a hung collective fails the test, loudly
    torch.set_num_threads(1)
    # built before the process group exists: save_pretrained writes only on rank 0 once it does
    model, examples, _ = tiny_model(f"{workdir}/{rank}", lora_dropout=0.0)  # same seed: same weights
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=180))
    try:
        # 1. labels point at the own positive after gathering: queries equal their positives
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        from recipe.train.loss import in_batch_accuracy

        local, dim = 3, 16
        eye = torch.eye(dim)
        q = eye[rank * local:(rank + 1) * local]
        pos, neg = q.clone(), eye[8 + rank * local: 8 + (rank + 1) * local]
        assert in_batch_accuracy(q, [pos, neg], gather=True).item() == 1.0
        assert in_batch_accuracy(q, [neg, pos], gather=True).item() == 0.0  # columns swapped
        mnrl = MultipleNegativesRankingLoss(None, scale=50.0, gather_across_devices=True)
        low = mnrl.compute_loss_from_embeddings([q, pos, neg], None).item()
        high = mnrl.compute_loss_from_embeddings([q, neg, pos], None).item()
        # 2. the training path: cached loss through DDP over each rank's half of the batch
        model.train()
        wrapped = DDP(model)
        # grouped by length, as train.py runs by default; the one-process reference is not grouped
        loss_fn = build_loss(model, 0.02, True, 4, gather=True, group_by_length=True)
        loss_fn.model = wrapped
        half = examples[rank * 6:(rank + 1) * 6]
        loss = loss_fn([encode(model, c, True) for c in columns(half)], None)
        loss.backward()  # DDP averages the gradients over the two processes
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        torch.save({"loss": loss.item(), "grads": grads, "low": low, "high": high,
                    "acc": float(loss_fn.accuracy)}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one_process_on_the_concatenated_batch(tmp_path, tiny):
    model, examples, _ = tiny
    workdir = tmp_path / "model"
    mp.spawn(_worker, args=(2, str(tmp_path / "rdzv"), str(workdir), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for r in ranks:
        assert r["low"] < 1e-6 < 10 < r["high"]  # own positive is the target, not the negative
    # one process, the 12 records at once, same model weights (same seed)
    single, _, _ = tiny_model(tmp_path / "single", lora_dropout=0.0)
    single.train()
    loss, grads = _loss_and_grads(single, build_loss(single, 0.02, True, 4, False), columns(examples[:12]))
    mean_loss = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
    assert math.isclose(mean_loss, loss.item(), rel_tol=1e-5), (mean_loss, loss)
    worst = max((r["grads"][n] - g).abs().max().item() / g.abs().max().item()
                for n, g in grads.items() for r in ranks)
    assert worst < 1e-4, worst  # float32 round-off of a different summation order, nothing more
