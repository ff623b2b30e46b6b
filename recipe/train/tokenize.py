"""Training's side of tokenization: the tokenizer saved and reloaded before training, so that the
exported model tokenizes exactly as training did, and every training batch checked against the
EOS contract (`recipe/eos.py`, which evaluation runs too).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..eos import EOSContractError, adds_bos, check_features, check_tokenizer, probe_texts


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
        cfg.update(add_bos_token=adds_bos(tokenizer), add_eos_token=True)
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))


def roundtrip(tokenizer, path):
    """Save and reload the tokenizer, and prove the reloaded one encodes exactly as this one does:
    training then uses the reloaded tokenizer, so the exported model tokenizes as training did."""
    from transformers import AutoTokenizer

    save_tokenizer(tokenizer, path)
    again = AutoTokenizer.from_pretrained(path)
    probe = probe_texts(tokenizer)
    a = tokenizer(probe, padding=True, truncation=True, max_length=8)
    b = again(probe, padding=True, truncation=True, max_length=8)
    if a["input_ids"] != b["input_ids"] or a["attention_mask"] != b["attention_mask"]:
        raise EOSContractError(f"the tokenizer saved to {path} encodes differently after reloading: "
                               f"{a['input_ids'][0]} before, {b['input_ids'][0]} after")
    check_tokenizer(again)
    return again


def encode(model, texts: list[str], append_eos: bool) -> dict:
    """Tokenize with the model's own tokenizer (the one the export saves) and check the contract."""
    features = model.preprocess(texts)
    if append_eos:
        check_features(features, model[0].tokenizer.eos_token_id, texts)
    return features
