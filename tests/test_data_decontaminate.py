"""data/decontaminate.py finds training records that overlap real evaluation data (the STS
Benchmark test split, the MS MARCO and DBpedia slices in tests/data/eval, loaded into mteb's own
task definitions through --data-dir): an exact copy, a case and punctuation variant, a reworded
near duplicate and a document containing a test passage are all removed, each naming its task,
split and text; a clean set loses nothing; --report-only changes nothing."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from recipe.commands.decontaminate import main  # noqa: E402
from recipe.data import decontamination as dc  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

DATA = ROOT / "tests" / "data" / "eval"
SAMPLE = ROOT / "data" / "samples" / "synthetic_sample.jsonl"
TASKS = ["--benchmark", "", "--tasks", "STSBenchmark,MSMARCO,DBPedia", "--data-dir", str(DATA)]


def _first(path: Path) -> dict:
    return json.loads(path.read_text().splitlines()[0])


STS = json.loads((DATA / "STSBenchmark" / "test.jsonl").read_text().splitlines()[0])  # "A girl is styling her hair."
MARCO_QUERY = _first(DATA / "MSMARCO" / "queries.jsonl")        # 19335, judged in qrels/dev.tsv
MARCO_DOC = _first(DATA / "MSMARCO" / "corpus.jsonl")            # the Fahrenheit passage
DBPEDIA_DOC = _first(DATA / "DBPedia" / "corpus.jsonl")          # <dbpedia:Stopped_note>


def _reword(text: str) -> str:
    """Every twelfth word replaced: too few 8-grams survive for containment, most 3-grams do."""
    words = text.split()
    return " ".join("altered" if i % 12 == 6 else w for i, w in enumerate(words))


PLANTED = {
    "exact": {"query": MARCO_QUERY["text"], "positive": "The environment is studied by anthropologists as culture."},
    "variant": {"query": "how does she do her hair",
                "positive": "a GIRL is   styling her hair!!!" if STS["sentence1"] == "A girl is styling her hair." else ""},
    "reworded": {"query": "who invented the mercury thermometer", "positive": _reword(MARCO_DOC["text"])},
    "contains": {"query": "what does a stopped note mean", "positive": "Music terms explained for beginners.",
                 "negative": "A short glossary for players. " + DBPEDIA_DOC["text"] + " Next we turn to the "
                             "meaning of harmonics, which are produced by touching the string lightly."},
}
EXPECTED = {  # planted record -> (kind, task, split, text id, field)
    "exact": ("exact", "MSMARCO", "dev", MARCO_QUERY["_id"], "query"),
    "variant": ("exact", "STSBenchmark", "test", "sentence1:0", "positive"),
    "reworded": ("near", "MSMARCO", "dev", MARCO_DOC["_id"], "positive"),
    "contains": ("contained", "DBPedia", "test", DBPEDIA_DOC["_id"], "negative"),
}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decon")
    clean = _read(SAMPLE)
    records = clean[:50] + [{**rec, "id": name, "instruction": "x", "task_group": "short-long"}
                            for name, rec in PLANTED.items()] + clean[50:]
    data = tmp / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp / "clean.jsonl"
    code = main(["--input", str(data), "--output", str(out), *TASKS])
    assert code == 0
    return tmp, out, len(clean)


def test_planted_overlaps_are_all_found_each_with_its_task_split_text_and_kind(planted, capsys):
    tmp, out, n_clean = planted
    removed = {r["id"]: r for r in _read(tmp / "clean.removed.jsonl")}
    assert set(removed) == set(PLANTED)
    for name, (kind, task, split, text_id, field) in EXPECTED.items():
        r = removed[name]
        assert (r["contamination_kind"], r["contamination_task"], r["contamination_split"],
                r["contamination_text_id"], r["contamination_field"]) == (kind, task, split, text_id, field), name
        # the record's own fields travel with it
        assert r["query"] == PLANTED[name]["query"] and r["instruction"] == "x"
    assert removed["reworded"]["contamination_eval_kind"] == "document"
    assert 0.5 <= removed["reworded"]["contamination_score"] < 1
    assert removed["contains"]["contamination_score"] >= 0.8
    kept = _read(out)
    assert len(kept) == n_clean and not {r["id"] for r in kept} & set(PLANTED)
    report = json.loads((tmp / "clean.decontamination.json").read_text())
    assert (report["records"], report["removed"]) == (n_clean + 4, 4)
    assert report["by_kind"] == {"exact": 2, "contained": 1, "near": 1}
    rows = {r["task"]: r for r in report["table"]}
    assert rows["MSMARCO"]["records"] == 2 and rows["MSMARCO"]["exact"] == 1 and rows["MSMARCO"]["near"] == 1
    assert rows["DBPedia"]["contained"] == 1 and rows["STSBenchmark"]["exact"] == 1
    assert rows["STSBenchmark"]["eval_texts"] == 2 * 1379  # both sentences of every pair


def test_a_clean_set_loses_nothing(tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    assert main(["--input", str(SAMPLE), "--output", str(out), *TASKS]) == 0
    assert [r["id"] for r in _read(out)] == [r["id"] for r in _read(SAMPLE)]
    assert (tmp_path / "kept.removed.jsonl").read_text() == ""
    text = capsys.readouterr().out
    assert "| DBPedia | 1040 | 0 | 0 | 0 | 0 | 0 |" in text
    assert f"0 of {len(_read(SAMPLE))} records overlap" in text


def test_report_only_changes_nothing_but_prints_the_table(planted, capsys):
    tmp, _, _ = planted
    before = {p: p.read_bytes() for p in tmp.iterdir()}
    capsys.readouterr()
    assert main(["--input", str(tmp / "train.jsonl"), "--report-only", *TASKS]) == 0
    assert {p: p.read_bytes() for p in tmp.iterdir()} == before
    assert "4 of " in capsys.readouterr().out
    # an existing output is refused before anything is read
    assert main(["--input", str(tmp / "train.jsonl"), "--output", str(tmp / "clean.jsonl"), *TASKS]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp.iterdir()} == before


def test_normalisation_folds_case_width_and_punctuation():
    assert dc.normalize("  Ｃａｆé,  DU—monde!! ") == dc.normalize("café du monde") == "café du monde"


def test_the_signature_is_datasketchs_minhash():
    from datasketch import MinHash

    index = dc.EvalIndex(dc.DecontaminationSettings())
    text = dc.normalize(MARCO_DOC["text"])
    sig, rows = index.signatures([text, "too short to sketch"])
    assert list(rows) == [0]
    _, hashes, _ = dc.word_ngrams([text], 3)
    m = MinHash(num_perm=128, seed=1, scheme="affine32", hashfunc=int)
    m.update_batch((hashes & np.uint64(0xFFFFFFFF)).tolist())
    assert np.array_equal(m.hashvalues, sig[0])
