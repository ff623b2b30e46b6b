"""The LoRA adapter training puts on the model is the paper's (section 3.2; the released
`lora/adapter_config.json`): rank 16 on the seven projections of every layer, alpha 32, so the
update B·A·x is scaled by 32 / 16 = 2, and dropout 0.1 on its input: 42M trainable parameters
on Mistral-7B. peft's defaults differ (alpha 8, only q_proj and v_proj for Mistral), so each
setting must reach peft from the recipe."""

from __future__ import annotations

import pytest
import torch
from peft.tuners.lora import LoraLayer

from tests.train_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PAPER = dict(lora_r=16, lora_alpha=32, lora_dropout=0.1, lora_target_modules=PROJECTIONS)


def lora_parameters(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, r: int = 16) -> int:
    """r x (inputs + outputs) for each of the seven projections of a Mistral layer: q and o are
    hidden -> hidden, k and v hidden -> kv_heads x head size, gate and up hidden -> intermediate,
    down intermediate -> hidden."""
    kv = hidden // heads * kv_heads
    per_layer = 2 * (2 * hidden) + 2 * (hidden + kv) + 2 * (hidden + intermediate) + (intermediate + hidden)
    return r * per_layer * layers


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    # LoRA B warm (random): at init it is zero and the scaled update would be zero too
    built, _, cfg = tiny_model(tmp_path_factory.mktemp("lora"), **PAPER)
    return built, cfg.tiny_model


def test_rank_16_on_the_seven_projections_of_every_layer(model):
    built, shape = model
    # the formula is the paper's count: Mistral-7B's shape gives 42M
    assert round(lora_parameters(4096, 14336, 32, 32, 8) / 1e6) == 42
    trainable = sum(p.numel() for p in built.parameters() if p.requires_grad)
    assert trainable == lora_parameters(shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"],
                                        shape["num_attention_heads"], shape["num_key_value_heads"])
    adapted = [name.rsplit(".", 1)[-1] for name, m in built.named_modules() if isinstance(m, LoraLayer)]
    assert sorted(adapted) == sorted(PROJECTIONS * shape["num_hidden_layers"])


def test_update_is_scaled_by_alpha_over_r_and_its_input_dropped_at_0_1(model):
    built, _ = model
    built.eval()  # dropout off, so the forward is the formula
    gen = torch.Generator().manual_seed(0)
    layers = [m for m in built.modules() if isinstance(m, LoraLayer)]
    assert layers
    with torch.no_grad():
        for layer in layers:
            a, b = layer.lora_A["default"], layer.lora_B["default"]
            x = torch.randn(3, a.in_features, generator=gen)
            update = b(a(x))
            assert update.abs().max() > 1e-3  # B is not zero: the scale is visible
            torch.testing.assert_close(layer(x), layer.base_layer(x) + 2.0 * update)
            assert layer.lora_dropout["default"].p == 0.1
