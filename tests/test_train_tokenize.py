"""The EOS contract: every query and document ends in exactly one EOS token after truncation,
whatever the tokenizer does by default, with left or right padding, when pad == EOS, and after
the tokenizer is saved and reloaded."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from recipe.eos import EOSContractError, check_features, ensure_eos
from recipe.train.tokenize import roundtrip

TEXTS = ["short", "a text that is much longer than the limit of tokens " * 5, "ends with </s>", ""]


def make_tokenizer(tmp_path, appends_eos: bool, bos: bool = True):
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(TEXTS * 3, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    template = ("<s> " if bos else "") + "$A" + (" </s>" if appends_eos else "")
    bpe.post_processor = processors.TemplateProcessing(single=template, special_tokens=[("<s>", 1), ("</s>", 2)])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.save_pretrained(tmp_path / "raw")
    return AutoTokenizer.from_pretrained(tmp_path / "raw")  # as a user's tokenizer arrives: from disk


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("appends_eos", [False, True])
def test_every_text_ends_in_exactly_one_eos(tmp_path, side, appends_eos):
    tok = make_tokenizer(tmp_path, appends_eos)
    ensure_eos(tok, side)
    assert tok.pad_token_id == tok.eos_token_id  # Mistral has no pad token: pad == EOS
    enc = tok(TEXTS, padding=True, truncation=True, max_length=6, return_tensors="pt")
    check_features(enc, tok.eos_token_id, TEXTS)
    for ids, mask in zip(enc["input_ids"], enc["attention_mask"]):
        real = ids[mask.bool()].tolist()
        assert real[0] == tok.bos_token_id and real[-1] == tok.eos_token_id
        assert real.count(tok.eos_token_id) == 1, real  # "</s>" in the text stays text
        assert len(real) <= 6
    # the mask marks real tokens on the padding side asked for, pads included in ids as EOS
    short = enc["attention_mask"][0]
    assert (short[0] == 0) if side == "left" else (short[-1] == 0)


def test_contract_survives_save_and_reload(tmp_path):
    tok = make_tokenizer(tmp_path, appends_eos=False)
    ensure_eos(tok, "left")
    again = roundtrip(tok, tmp_path / "saved")
    assert again(TEXTS)["input_ids"] == tok(TEXTS)["input_ids"]
    cfg = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())
    assert cfg["add_eos_token"] is True and cfg["padding_side"] == "left" and cfg["split_special_tokens"]
    check_features(again(TEXTS, padding=True, return_tensors="pt"), again.eos_token_id)


def test_a_tokenizer_that_drops_eos_on_reload_is_caught(tmp_path):
    """transformers 5 rebuilds the post-processor from add_eos_token (mteb issue 5230): a saved
    tokenizer_config.json that says false would silently drop the EOS; the round trip says so."""
    tok = make_tokenizer(tmp_path, appends_eos=False)
    ensure_eos(tok, "left")
    tok.save_pretrained(tmp_path / "bad")
    cfg_path = tmp_path / "bad" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(add_bos_token=True, add_eos_token=False)
    cfg_path.write_text(json.dumps(cfg))
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "bad")
    with pytest.raises(EOSContractError, match="EOS contract broken"):
        check_features(reloaded(TEXTS, padding=True, return_tensors="pt"), reloaded.eos_token_id, TEXTS)


def test_check_features_names_the_broken_text():
    ids = torch.tensor([[5, 6, 2], [2, 7, 8]])  # row 1: left-padded, ends in 8, not EOS
    mask = torch.tensor([[1, 1, 1], [0, 1, 1]])
    with pytest.raises(EOSContractError, match="second"):
        check_features({"input_ids": ids, "attention_mask": mask}, 2, ["first", "second"])
    doubled = torch.tensor([[5, 2, 2]])
    with pytest.raises(EOSContractError):
        check_features({"input_ids": doubled, "attention_mask": torch.ones(1, 3)}, 2, ["x"])


def test_pooling_reads_the_eos_state_with_left_and_right_padding(tmp_path):
    """The embedding of a text is the same alone or padded in a batch, on either padding side."""
    from tests.train_helpers import tiny_model

    model, _, _ = tiny_model(tmp_path, lora_dropout=0.0)
    model.eval()
    texts = ["short one", "a much longer text about the weather in the mountains today"]
    alone = torch.stack([model.encode([t], convert_to_tensor=True)[0] for t in texts])
    for side in ("left", "right"):
        model[0].tokenizer.padding_side = side
        batch = model.encode(texts, convert_to_tensor=True)
        assert torch.allclose(batch, alone, atol=1e-5), side


def test_saved_flags_say_what_the_tokenizer_does(tmp_path):
    """Reloading with the saved add_bos_token/add_eos_token must keep BOS and EOS, even after a
    round trip (transformers 5.23 can report add_bos_token False for a tokenizer adding BOS)."""
    tok = make_tokenizer(tmp_path, appends_eos=False)
    ensure_eos(tok, "right")
    again = roundtrip(tok, tmp_path / "once")
    twice = roundtrip(again, tmp_path / "twice")
    cfg = json.loads((tmp_path / "twice" / "tokenizer_config.json").read_text())
    assert cfg["add_bos_token"] is True and cfg["add_eos_token"] is True
    assert twice("a b")["input_ids"] == tok("a b")["input_ids"]
    assert twice("a b")["input_ids"][0] == tok.bos_token_id


def test_a_mistral_style_llama_tokenizer_gets_its_eos(tmp_path):
    """Mistral-7B-v0.1 ships a LlamaTokenizer with add_eos_token false: under transformers 5 it
    appends no EOS (mteb issue 5230). After ensure_eos and a save/reload, every text ends in one."""
    from tests.train_helpers import mistral_style_tokenizer

    tok = mistral_style_tokenizer(tmp_path / "raw", TEXTS)
    assert type(tok).__name__ == "LlamaTokenizer"
    assert tok("a b")["input_ids"][-1] != tok.eos_token_id  # the pitfall, reproduced
    ensure_eos(tok, "right")
    again = roundtrip(tok, tmp_path / "saved")
    assert type(again).__name__ == "LlamaTokenizer"
    check_features(again(TEXTS, padding=True, truncation=True, max_length=6, return_tensors="pt"),
                   again.eos_token_id, TEXTS)
