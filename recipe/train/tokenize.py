"""The EOS contract: every query and document ends in exactly one EOS token, after truncation.

Decoder embedders pool the last layer's hidden state at that EOS token. Whether a tokenizer
appends EOS by itself changes with the tokenizer and the transformers version (transformers 5
stopped doing it for Mistral: mteb issue 5230), so we do not rely on its default: we make the
tokenizer's own post-processor append EOS (so truncation keeps room for it, and the exported
model's tokenizer does the same after `SentenceTransformer(path)`), make text that happens to
contain the EOS string tokenize as plain text (so no text brings a second EOS), and check every
batch. The attention mask comes from the tokenizer (lengths), never from `input_ids != pad_id`,
so pad == EOS is safe with left or right padding.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import processors

from ..errors import InputError


class EOSContractError(InputError):
    """A tokenized text that does not end in exactly one EOS token."""


def ensure_eos(tokenizer, padding_side: str = "left") -> None:
    """Configure `tokenizer` in place to append one EOS to every text; pad with EOS if it has no pad."""
    if tokenizer.eos_token_id is None:
        raise EOSContractError(f"{type(tokenizer).__name__} has no EOS token: set append_eos false "
                               "and an encoder pooling, or use a tokenizer with an EOS token")
    if not getattr(tokenizer, "is_fast", False):
        raise EOSContractError(f"{type(tokenizer).__name__} is not a fast (tokenizers) tokenizer: "
                               "the EOS contract needs its post-processor")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    tokenizer.split_special_tokens = True  # "</s>" inside a text is text, not a second EOS
    bos_id = tokenizer.bos_token_id
    ids = tokenizer("a b c")["input_ids"]
    adds_bos = bos_id is not None and len(ids) > 0 and ids[0] == bos_id  # keep what it does now
    if hasattr(type(tokenizer), "add_eos_token"):
        # transformers 5 tokenizers rebuild their post-processor from these two flags (and save them)
        tokenizer.add_bos_token = adds_bos
        tokenizer.add_eos_token = True
    if not _appends_eos(tokenizer):
        bos = tokenizer.bos_token if adds_bos else None
        single = (f"{bos}:0 " if bos else "") + "$A:0 " + f"{tokenizer.eos_token}:0"
        pair = single + (f" {bos}:1" if bos else "") + f" $B:1 {tokenizer.eos_token}:1"
        specials = [(tokenizer.eos_token, tokenizer.eos_token_id)]
        if bos:
            specials.append((bos, bos_id))
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=specials)
    check_tokenizer(tokenizer)


def save_tokenizer(tokenizer, path) -> None:
    """Save so that `AutoTokenizer.from_pretrained(path)` keeps the contract: the flags that make
    transformers 5 rebuild the post-processor, the padding side and split_special_tokens are
    written into tokenizer_config.json, which is where from_pretrained reads them."""
    tokenizer.save_pretrained(path)
    cfg_path = Path(path) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    for key in ("max_length", "stride", "truncation_strategy"):  # call-time settings, not config
        cfg.pop(key, None)
    cfg.update(padding_side=tokenizer.padding_side, split_special_tokens=True)
    if hasattr(type(tokenizer), "add_eos_token"):
        # from what the tokenizer does, not from its attributes: after a reload, transformers 5.23
        # can report add_bos_token False for a tokenizer that does add BOS
        ids = tokenizer("a b c")["input_ids"]
        adds_bos = tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
        cfg.update(add_bos_token=bool(adds_bos), add_eos_token=True)
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))


def roundtrip(tokenizer, path):
    """Save and reload the tokenizer, and prove the reloaded one encodes exactly as this one does:
    training then uses the reloaded tokenizer, so the exported model tokenizes as training did."""
    from transformers import AutoTokenizer

    save_tokenizer(tokenizer, path)
    again = AutoTokenizer.from_pretrained(path)
    probe = ["short", "a text much longer than the limit " * 8, f"ends with {tokenizer.eos_token}", ""]
    a = tokenizer(probe, padding=True, truncation=True, max_length=8)
    b = again(probe, padding=True, truncation=True, max_length=8)
    if a["input_ids"] != b["input_ids"] or a["attention_mask"] != b["attention_mask"]:
        raise EOSContractError(f"the tokenizer saved to {path} encodes differently after reloading: "
                               f"{a['input_ids'][0]} before, {b['input_ids'][0]} after")
    check_tokenizer(again)
    return again


def _appends_eos(tokenizer) -> bool:
    ids = tokenizer("a b c")["input_ids"]
    return len(ids) >= 2 and ids[-1] == tokenizer.eos_token_id and ids[-2] != tokenizer.eos_token_id


def check_tokenizer(tokenizer, max_length: int = 8) -> None:
    """Probe: short, truncated, EOS-looking and empty texts all end in exactly one EOS."""
    probe = ["short", "a text much longer than the limit " * 8, f"ends with {tokenizer.eos_token}", ""]
    enc = tokenizer(probe, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    check_features(enc, tokenizer.eos_token_id, probe)


def check_features(features: dict, eos_id: int, texts: list[str] | None = None) -> None:
    """Every row's last real token (by the attention mask) is EOS and the one before it is not."""
    ids, mask = features["input_ids"], features["attention_mask"].bool()
    lengths = mask.sum(1)
    # index of the last real token, with left or right padding alike
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, pos, torch.full_like(pos, -1)).max(1).values
    last_tok = ids.gather(1, last.clamp(min=0)[:, None])[:, 0]
    prev_tok = ids.gather(1, (last - 1).clamp(min=0)[:, None])[:, 0]
    prev_real = mask.gather(1, (last - 1).clamp(min=0)[:, None])[:, 0] & (last > 0)
    bad = (lengths == 0) | (last_tok != eos_id) | (prev_real & (prev_tok == eos_id) & (lengths > 1))
    if bad.any():
        i = int(bad.nonzero()[0])
        text = texts[i][:80] if texts else f"row {i}"
        raise EOSContractError(f"EOS contract broken for {text!r}: tokens end with "
                               f"{ids[i][mask[i]][-3:].tolist()}, EOS id is {eos_id}")


def encode(model, texts: list[str], append_eos: bool) -> dict:
    """Tokenize with the model's own tokenizer (the one the export saves) and check the contract."""
    features = model.preprocess(texts)
    if append_eos:
        check_features(features, model[0].tokenizer.eos_token_id, texts)
    return features
