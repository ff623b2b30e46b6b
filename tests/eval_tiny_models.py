"""Tiny models and data for the evaluation tests, built in a second, never downloaded.

`tiny_mistral_folder` saves what `train.py` writes as its final model: a SentenceTransformer
folder holding a 2-layer Mistral, a Llama-family tokenizer trained on the fly (the class
Mistral's tokenizer loads as, so the transformers >= 5 EOS pitfall is the real one), last-token
pooling, and a saved prompt named "query".
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaTokenizerFast, MistralConfig, MistralModel

CORPUS = [
    "Instruct: Given a question, retrieve passages that answer the question\nQuery: ",
    "what is the capital of france paris is the capital and largest city of france",
    "a man is playing a guitar a woman is slicing an onion the cat sleeps on the mat",
    "retrieve semantically similar text classify the banking intent of the query",
]


def tiny_tokenizer() -> LlamaTokenizerFast:
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(CORPUS * 20, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    # like Mistral-7B-v0.1: <s> in front, no </s> at the end, no pad token
    tok = LlamaTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                             unk_token="<unk>", add_bos_token=True, add_eos_token=False)
    return tok


def tiny_mistral_folder(path: Path, query_prompt: str = "Instruct: retrieve\nQuery: ") -> Path:
    """Save a SentenceTransformer folder with a random 2-layer Mistral and last-token pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    torch.manual_seed(0)
    tok = tiny_tokenizer()
    hf_dir = path / "hf"
    config = MistralConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id)
    MistralModel(config).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=512)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu",
                                prompts={"query": query_prompt})
    out = path / "final"
    model.save(str(out))
    return out


def write_beir(root: Path, task: str = "SciFact") -> Path:
    folder = root / task
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"title {i}", "text": "the cat sleeps on the mat " * (i + 1)}
            for i in range(12)]
    queries = [{"_id": f"q{i}", "text": f"what is the capital {i}"} for i in range(4)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    # header row, and one query without judgements (mteb drops it)
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(3)))
    return root
