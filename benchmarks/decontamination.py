"""Time and peak memory of data/decontaminate.py's work at 10k, 100k and 500k records.

    python benchmarks/decontamination.py                       # 10k, 100k, 500k records; 100k evaluation texts
    python benchmarks/decontamination.py --records 10000 --eval-texts 20000

Each size runs in a fresh process (peak memory is the process's maximum resident set): build the
index of a fixed evaluation set, then match the records against it, as the command does after
reading its input. The evaluation set is the real texts of tests/data/eval (STS Benchmark, Banking77
test, the MS MARCO and DBpedia slices) filled up to --eval-texts with generated ones in MTEB's
mix of lengths (half short, ~12 words, like STS sentences and queries; half passages, ~150
words). The records are generated like the synthetic data's (a query of ~10 words, a positive
and a hard negative of ~100 words each, sentences of a Zipf-distributed vocabulary); 1% of them
carry an evaluation text (exact, a case variant, a passage of 40 words or more inside a longer
document, or such a passage reworded: every twelfth word replaced), so the
matching pays for its hits too. Nothing is downloaded; mteb is not needed for the timed part.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from recipe import cli  # noqa: E402
from recipe.config import parse, setting  # noqa: E402

EVAL = ROOT / "tests" / "data" / "eval"


def _vocabulary(rng, size: int = 30000) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 11, size)
    return np.array(["".join(rng.choice(letters, n)) for n in lengths])


class Writer:
    """Sentences of Zipf-distributed words, with capitals and punctuation as text has."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.vocab = _vocabulary(self.rng)
        p = 1 / np.arange(1, len(self.vocab) + 1)
        self.p = p / p.sum()

    def texts(self, n: int, mean_words: int) -> list[str]:
        counts = np.maximum(3, self.rng.poisson(mean_words, n))
        words = self.rng.choice(self.vocab, int(counts.sum()), p=self.p)
        out, at = [], 0
        for c in counts:
            w = list(words[at:at + c])
            at += c
            w[0] = w[0].capitalize()
            for k in range(11, len(w), 12):
                w[k] += "."
            out.append(" ".join(w) + ".")
        return out


def real_eval_texts() -> list[tuple[str, str]]:
    texts = []
    for task, files in {"STSBenchmark": ["test.jsonl"], "Banking77Classification": ["test.jsonl"],
                        "MSMARCO": ["corpus.jsonl", "queries.jsonl"], "DBPedia": ["corpus.jsonl", "queries.jsonl"]}.items():
        for name in files:
            for line in (EVAL / task / name).read_text(encoding="utf-8").split("\n"):
                if not line.strip():
                    continue
                row = json.loads(line)
                for col in ("sentence1", "sentence2", "text"):
                    if isinstance(row.get(col), str):
                        texts.append((task, row[col]))
    return texts


def evaluation_set(n: int):
    from recipe.data.decontamination import EvalText

    real = real_eval_texts()
    w = Writer(seed=7)
    short = (n - len(real)) // 2
    made = w.texts(short, 12) + w.texts(n - len(real) - short, 150)
    return [EvalText(task, "test", str(i), "text", t) for i, (task, t) in enumerate(real)] + \
        [EvalText("Generated", "test", str(i), "text", t) for i, t in enumerate(made)]


def records(n: int, evals) -> list[dict]:
    w = Writer(seed=11)
    q, pos, neg = w.texts(n, 10), w.texts(n, 100), w.texts(n, 100)
    recs = [{"query": a, "positive": b, "negative": c} for a, b, c in zip(q, pos, neg)]
    rng = np.random.default_rng(3)
    long = [e.text for e in evals if len(e.text.split()) >= 40]
    for k, i in enumerate(rng.choice(n, max(1, n // 100), replace=False)):
        t = evals[int(rng.integers(len(evals)))].text
        if k % 4 == 0:
            recs[i]["query"] = t
        elif k % 4 == 1:
            recs[i]["positive"] = t.upper() + "!"
        elif k % 4 == 2:  # a passage inside a longer document
            t = long[int(rng.integers(len(long)))]
            recs[i]["negative"] = recs[i]["negative"] + " " + t + " " + recs[i]["positive"]
        else:  # reworded: every twelfth word replaced
            words = long[int(rng.integers(len(long)))].split()
            recs[i]["positive"] = " ".join("altered" if j % 12 == 6 else w for j, w in enumerate(words))
    return recs


def worker(n_records: int, n_eval: int) -> dict:
    from recipe.data import decontamination as dc

    evals = evaluation_set(n_eval)
    recs = records(n_records, evals)
    settings = dc.DecontaminationSettings()
    t0, c0 = time.perf_counter(), time.process_time()
    index = dc.EvalIndex(settings).add(evals).finish()
    t1, c1 = time.perf_counter(), time.process_time()
    out = dc.decontaminate(recs, index, settings.fields)
    t2, c2 = time.perf_counter(), time.process_time()
    planted = max(1, n_records // 100)
    return {"records": n_records, "eval_texts": len(index.meta), "index_s": round(t1 - t0, 1),
            "match_s": round(t2 - t1, 1),
            "index_cpu_s": round(c1 - c0, 1), "match_cpu_s": round(c2 - c1, 1), "removed": len(out.removed), "planted": planted,
            "by_kind": out.by_kind, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


@dataclass
class DecontaminationSettings:
    records: list[int] = setting([10_000, 100_000, 500_000], "record counts, each timed in a fresh process")
    eval_texts: int = setting(100_000, "size of the fixed evaluation set")
    worker: int = setting(0, "internal: time this many records in this process and print its JSON")


def _main(argv: list[str]) -> int:
    args = parse(DecontaminationSettings, argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.eval_texts)))
        return 0
    import datasketch

    print(f"python {platform.python_version()}, numpy {np.__version__}, datasketch {datasketch.__version__}, "
          f"{platform.machine()} {platform.processor() or ''}".strip())
    # wall and CPU seconds both: on a shared machine the wall clock counts other processes' turns
    print("| records | evaluation texts | index s (CPU) | match s (CPU) | records/CPU s | peak RSS MB | removed (planted) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.records:
        res = subprocess.run([sys.executable, __file__, "--worker", str(n), "--eval-texts", str(args.eval_texts)],
                             capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"| {n:,} | {r['eval_texts']:,} | {r['index_s']} ({r['index_cpu_s']}) | {r['match_s']} "
              f"({r['match_cpu_s']}) | {n / r['match_cpu_s']:,.0f} | "
              f"{r['peak_rss_mb']:,} | {r['removed']} ({r['planted']}) |", flush=True)
    return 0


main = cli.command(_main, doc=__doc__, config=DecontaminationSettings, module=__name__)
