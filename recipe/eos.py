"""The EOS contract, the one copy that training and evaluation both run: every query and document
ends in exactly one EOS token, after truncation.

Decoder embedders pool the last layer's hidden state at that EOS token. Whether a tokenizer
appends EOS by itself changes with the tokenizer and the transformers version (transformers 5
stopped doing it for Mistral: mteb issue 5230), so we do not rely on its default: we make the
tokenizer's own post-processor append EOS (so truncation keeps room for it, and the exported
model's tokenizer does the same after `SentenceTransformer(path)`), make text that happens to
contain the EOS string tokenize as plain text (so no text brings a second EOS), and check it.
The attention mask comes from the tokenizer (lengths), never from `input_ids != pad_id`, so
pad == EOS is safe with left or right padding.
"""

from __future__ import annotations

import torch
from tokenizers import processors

from .errors import InputError


class EOSContractError(InputError):
    """A tokenized text that does not end in exactly one EOS token."""


def ensure_eos(tokenizer, padding_side: str | None = None, where: str = "the tokenizer") -> None:
    """Configure `tokenizer` in place to append one EOS to every text (keeping BOS as it was),
    pad with EOS if it has no pad token, and prove it on a probe; `padding_side` None keeps the
    tokenizer's own. Idempotent. Errors name `where` (the model or its path)."""
    name = f"{where} ({type(tokenizer).__name__})"
    if tokenizer.eos_token_id is None:
        raise EOSContractError(f"{name} has no EOS token, which last-token pooling reads: use an "
                               "encoder pooling (training: append_eos false) or a tokenizer with an EOS token")
    if not getattr(tokenizer, "is_fast", False):
        raise EOSContractError(f"{name} is not a fast (tokenizers) tokenizer: the EOS contract needs its post-processor")
    pad_with_eos(tokenizer)
    if padding_side:
        tokenizer.padding_side = padding_side
    tokenizer.split_special_tokens = True  # "</s>" inside a text is text, not a second EOS
    bos_id = tokenizer.bos_token_id
    bos_first = adds_bos(tokenizer)  # keep what it does now
    if hasattr(type(tokenizer), "add_eos_token"):
        # transformers 5 tokenizers rebuild their post-processor from these two flags (and save them)
        tokenizer.add_bos_token = bos_first
        tokenizer.add_eos_token = True
    if not _appends_eos(tokenizer):
        bos = tokenizer.bos_token if bos_first else None
        single = (f"{bos}:0 " if bos else "") + "$A:0 " + f"{tokenizer.eos_token}:0"
        pair = single + (f" {bos}:1" if bos else "") + f" $B:1 {tokenizer.eos_token}:1"
        specials = [(tokenizer.eos_token, tokenizer.eos_token_id)]
        if bos:
            specials.append((bos, bos_id))
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=specials)
    check_tokenizer(tokenizer, where=name)


def pad_with_eos(tokenizer) -> None:
    """Pad with EOS a tokenizer that has no pad token (Mistral's): safe, because the attention mask
    comes from the tokenizer, never from `input_ids != pad_id`."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer starts a text with BOS, from what it does, not from its attributes:
    after a reload, transformers 5.23 can report add_bos_token False for one that does."""
    ids = tokenizer("a b c")["input_ids"]
    return tokenizer.bos_token_id is not None and len(ids) > 0 and ids[0] == tokenizer.bos_token_id


def _appends_eos(tokenizer) -> bool:
    ids = tokenizer("a b c")["input_ids"]
    return len(ids) >= 2 and ids[-1] == tokenizer.eos_token_id and ids[-2] != tokenizer.eos_token_id


def probe_texts(tokenizer) -> list[str]:
    """Short, truncated, EOS-looking and empty texts: the cases where an EOS goes missing or doubles."""
    return ["short", "a text much longer than the limit " * 8, f"ends with {tokenizer.eos_token}", ""]


def check_tokenizer(tokenizer, max_length: int = 8, where: str = "the tokenizer") -> None:
    """Probe: short, truncated, EOS-looking and empty texts all end in exactly one EOS."""
    probe = probe_texts(tokenizer)
    enc = tokenizer(probe, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    check_features(enc, tokenizer.eos_token_id, probe, where)


def check_features(features: dict, eos_id: int, texts: list[str] | None = None, where: str = "") -> None:
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
        raise EOSContractError(f"{where + ': ' if where else ''}EOS contract broken for {text!r}: tokens end with "
                               f"{ids[i][mask[i]][-3:].tolist()}, EOS id is {eos_id}")
