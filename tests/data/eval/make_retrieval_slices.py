"""Write the MSMARCO/ and DBPedia/ slices of this folder from the upstream BEIR subsets.

    python tests/data/eval/make_retrieval_slices.py --source DIR [--check]

DIR holds `msmarco-subset/` and `dbpedia-subset/` in BEIR layout (corpus.jsonl, queries.jsonl,
qrels/test.tsv): datasets/msmarco and datasets/dbpedia of
github.com/agentset-ai/embedding-leaderboard at commit 7a1376ca, saved under those two names.
The subsets (5000 documents each) take ~4 minutes per model to encode on 2 CPU cores; the
quality lab (benchmarks/quality.py) scores a dozen models, so it reads these slices instead
(README.md here: what they keep). Deterministic: the same upstream files give the same bytes,
and `--check` says whether the shipped slices are what this script writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# task folder (mteb's name) -> (upstream subset under --source, mteb's evaluation split: MSMARCO scores "dev")
SLICES = {"MSMARCO": ("msmarco-subset", "dev"), "DBPedia": ("dbpedia-subset", "test")}
RELEVANT_PER_QUERY = 10  # the most relevant judged documents a query keeps (grade, then qrels order)
DOCUMENTS = 1000


def lines(path: Path) -> list[str]:
    """The file's lines, unchanged (texts may hold U+2028 and the like, which `splitlines` would cut at)."""
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    rows = []
    for line in lines(path):
        q, d, score = line.split("\t")
        if q != "query-id":
            rows.append((q, d, int(score)))
    return rows


def make_slice(source: Path, out: Path, split: str) -> None:
    qrels = read_qrels(source / "qrels" / "test.tsv")
    kept: dict[str, list[tuple[str, int]]] = {}
    for q, d, score in sorted((r for r in qrels if r[2] > 0), key=lambda r: -r[2]):  # stable: qrels order in a grade
        if len(kept.setdefault(q, [])) < RELEVANT_PER_QUERY:
            kept[q].append((d, score))
    relevant = {d for docs in kept.values() for d, _ in docs}
    # distractors: first the documents judged not relevant to a kept query (DBpedia has them),
    # then the subset's other documents, in file order
    judged_zero = [d for q, d, score in qrels if score == 0 and q in kept and d not in relevant]
    corpus = [(json.loads(line)["_id"], line) for line in lines(source / "corpus.jsonl")]
    fill = list(dict.fromkeys(judged_zero + [doc for doc, _ in corpus if doc not in relevant]))
    chosen = relevant | set(fill[:DOCUMENTS - len(relevant)])
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(line + "\n" for doc, line in corpus if doc in chosen)
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for line in lines(source / "queries.jsonl"):
            if json.loads(line)["_id"] in kept:
                f.write(line + "\n")
    with (out / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, docs in kept.items():
            f.writelines(f"{q}\t{d}\t{score}\n" for d, score in docs)


def write_all(source: Path, root: Path) -> None:
    for task, (subset, split) in SLICES.items():
        make_slice(source / subset, root / task, split)


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, metavar="DIR",
                        help="folder holding msmarco-subset/ and dbpedia-subset/ (BEIR layout, from upstream)")
    parser.add_argument("--check", action="store_true", help="compare with the shipped slices; write nothing")
    args = parser.parse_args(argv)
    if not args.check:
        write_all(args.source, HERE)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write_all(args.source, Path(tmp))
        differ = [t for t in SLICES if not same_files(Path(tmp) / t, HERE / t)]
    print("the shipped slices match" if not differ else f"differ from what the script writes: {', '.join(differ)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
