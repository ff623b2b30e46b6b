"""Length grouping inside GradCache's mini-batches: the loss and gradients are those of the
ungrouped batch, the padding the model runs drops on the synthetic data's length mix, and the
padding train.py logs is what the model actually ran."""

from __future__ import annotations

import pytest
import torch

from recipe.train.grouping import computed_tokens, length_order, padding_share
from recipe.train.loss import build_loss
from recipe.train.tokenize import encode
from tests.train_helpers import assert_same_gradients, columns, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # dropout 0: with dropout the masks are drawn per mini-batch, so a new grouping draws new masks
    return tiny_model(tmp_path_factory.mktemp("tiny"), lora_dropout=0.0)


def _loss_and_grads(model, loss_fn, features):
    model.zero_grad(set_to_none=True)
    loss = loss_fn([{k: v.clone() if torch.is_tensor(v) else v for k, v in f.items()} for f in features], None)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_grouping_keeps_loss_accuracy_and_gradients(tiny):
    model, examples, _ = tiny
    model.train()
    features = [encode(model, col, True) for col in columns(examples[:24])]
    # not vacuous: grouping reorders every column of this batch
    assert all(not torch.equal(length_order(f["attention_mask"]), torch.arange(24)) for f in features)
    plain_fn = build_loss(model, 0.02, True, 5, False, group_by_length=False)
    grouped_fn = build_loss(model, 0.02, True, 5, False, group_by_length=True)
    plain, g_plain = _loss_and_grads(model, plain_fn, features)
    grouped, g_grouped = _loss_and_grads(model, grouped_fn, features)
    assert torch.allclose(grouped, plain, rtol=1e-5, atol=0), (grouped, plain)
    assert torch.equal(grouped_fn.accuracy, plain_fn.accuracy)
    assert_same_gradients(g_grouped, g_plain)
    # and a swap of two queries' rows (labels broken) would change the loss: the check can fail
    swapped = [dict(f) for f in features]
    swapped[0] = {k: v[[1, 0, *range(2, 24)]] if torch.is_tensor(v) else v for k, v in features[0].items()}
    assert not torch.allclose(_loss_and_grads(model, grouped_fn, swapped)[0], plain, atol=1e-3)


def test_padding_share_drops_on_the_synthetic_length_mix(tiny):
    model, examples, cfg = tiny
    shares = {False: [], True: []}
    for start in range(0, 192, 64):  # three global batches of 64, mini-batches of 8
        masks = [encode(model, col, True)["attention_mask"] for col in columns(examples[start:start + 64])]
        for grouped in shares:
            shares[grouped].append(padding_share(masks, 8, grouped))
    before, after = sum(shares[False]) / 3, sum(shares[True]) / 3
    # the sample at the smoke recipe's 64 tokens: 0.17 before, 0.06 after (docs/benchmarks.md)
    assert before > 0.1, before
    assert after < 0.5 * before, (before, after)


def test_logged_computed_tokens_are_what_the_model_runs(tiny):
    model, examples, _ = tiny
    model.train()
    features = [encode(model, col, True) for col in columns(examples[:20])]
    seen = []
    handle = model[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0]["attention_mask"].numel()))
    try:
        for grouped in (False, True):
            seen.clear()
            loss = build_loss(model, 0.02, True, 6, False, group_by_length=grouped)(features, None)
            ran = sum(seen)  # the no-grad pass; the backward replays the same mini-batches
            expected = sum(computed_tokens(f["attention_mask"], 6, grouped) for f in features)
            assert ran == expected, (grouped, ran, expected)
            seen.clear()
            loss.backward()
            assert sum(seen) == expected
    finally:
        handle.remove()


def test_the_plain_forward_in_grouped_mini_batches_keeps_loss_and_gradients_and_runs_fewer_tokens(tiny):
    """`cached: false` with `group_by_length`: one backward through length-grouped mini-batches,
    the loss and gradients of the one padded forward, and only the grouped mini-batches' tokens run."""
    model, examples, _ = tiny
    model.train()
    features = [encode(model, col, True) for col in columns(examples[:24])]
    plain_fn = build_loss(model, 0.02, False, 5, False, group_by_length=False)
    grouped_fn = build_loss(model, 0.02, False, 5, False, group_by_length=True)
    seen = []
    handle = model[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0]["attention_mask"].numel()))
    try:
        plain, g_plain = _loss_and_grads(model, plain_fn, features)
        ran_plain = sum(seen)
        seen.clear()
        grouped, g_grouped = _loss_and_grads(model, grouped_fn, features)
        ran_grouped = sum(seen)
    finally:
        handle.remove()
    assert torch.allclose(grouped, plain, rtol=1e-5, atol=0), (grouped, plain)
    assert torch.equal(grouped_fn.accuracy, plain_fn.accuracy)
    assert_same_gradients(g_grouped, g_plain)
    assert ran_grouped == sum(computed_tokens(f["attention_mask"], 5, True) for f in features)
    assert ran_grouped < 0.9 * ran_plain, (ran_grouped, ran_plain)  # 3913 vs 4608 tokens here
