"""Padding-free mini-batches (`padding_free`): each mini-batch GradCache cuts is run as its real
tokens only, packed into one sequence, with position ids that restart at every text and the
varlen arguments of transformers' flash-attention path (the keys, dtypes and values of
`transformers.DataCollatorWithFlattening(return_flash_attn_kwargs=True)`). Each text then attends
to itself only: under `flash_attention_2` through the varlen kernel, under `flex_attention`
through the block-sparse mask transformers builds from the restarting position ids. Last-token
pooling reads each text's last token from `cu_seq_lens_q` (sentence-transformers' Pooling).

Why per mini-batch and not sentence-transformers' own unpadding (`Transformer.unpad_inputs`,
which packs at tokenization): the step needs padded columns until the model runs. The EOS check
and length grouping read the attention mask, GradCache cuts and trims mini-batches by it, and
the padding share train.py logs is computed from it. Packing right before the model keeps all of
that and drops only the pads the model would have run (~10% of positions after grouping at a
mini-batch of 32, docs/benchmarks.md). Needs right padding: positions restart at 0 per text,
as they do for a right-padded row.
"""

from __future__ import annotations

import torch


def pack(features: dict) -> dict:
    """A right-padded mini-batch as one packed sequence of its real tokens (batch axis 1)."""
    mask = features["attention_mask"].bool()
    lengths = mask.sum(1)
    cu_seq_lens = torch.nn.functional.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
    longest = int(lengths.max())
    packed = {}
    for key, value in features.items():
        if key == "attention_mask":
            continue
        if torch.is_tensor(value) and value.shape[:2] == mask.shape:
            value = value[mask][None]
        packed[key] = value
    packed["position_ids"] = (mask.cumsum(1) - 1)[mask][None]
    packed.update(cu_seq_lens_q=cu_seq_lens, cu_seq_lens_k=cu_seq_lens, max_length_q=longest, max_length_k=longest)
    return packed


def pack_before_forward(module, args):
    """Forward pre-hook for the Transformer module: its features dict, packed."""
    features, *rest = args
    return (pack(features), *rest)
