"""The record reader every stage uses: JSONL, Parquet, a synthesis folder, a published dataset;
our format, sentence-transformers columns, FlagEmbedding JSONL and a column mapping; bad input
named by file, line and field."""

import json
from pathlib import Path

import pytest

from recipe.data.records import RecordError, parse_columns, read_located, read_records
from recipe.files import write_jsonl
from recipe.schema import SYNTHESIS

SYNTH = Path(__file__).parent / "data" / "synth_output"


def _examples():
    return [json.loads(line) for line in (SYNTH / "examples.jsonl").read_text().strip("\n").split("\n")]


def test_reads_a_synthesis_folder_and_its_file():
    from_dir = list(read_records(SYNTH))
    from_file = list(read_records(SYNTH / "examples.jsonl"))
    assert from_dir == from_file == _examples()
    assert len(from_dir) == 30


def test_reads_parquet_with_json_fields_decoded(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = _examples()[:5]
    rows = [{**r, "raw": json.dumps(r["raw"]), "placeholders": json.dumps(r["placeholders"]),
             "sampling": json.dumps(r["sampling"])} for r in recs]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    assert list(read_records(tmp_path / "x.parquet")) == recs


def test_write_then_read_round_trip(tmp_path):
    recs = _examples()
    assert write_jsonl(recs, tmp_path / "a" / "b.jsonl") == 30
    assert list(read_records(tmp_path / "a" / "b.jsonl")) == recs


@pytest.mark.parametrize("field,required", [("query", None), ("positive", None), ("instruction", SYNTHESIS),
                                            ("negative", SYNTHESIS), ("id", SYNTHESIS)])
def test_missing_field_names_file_line_and_field(tmp_path, field, required):
    """Training and mining need a query and a positive; publishing needs every synthesis field."""
    lines = (SYNTH / "examples.jsonl").read_text().strip("\n").split("\n")
    bad = json.loads(lines[6])
    del bad[field]
    lines[6] = json.dumps(bad)
    (tmp_path / "examples.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=rf"examples.jsonl:7: missing field '{field}'"):
        list(read_records(tmp_path, **({"required": required} if required else {})))
    if required:
        assert len(list(read_records(tmp_path))) == 30  # optional for training and mining


def test_the_other_formats_become_our_records(tmp_path):
    rows = [{"anchor": "q", "positive": "p", "negative_2": "n2", "negative_1": "n1", "extra": 1},
            {"query": "q", "pos": ["p", "p2"], "neg": ["n"], "prompt": "Task"},
            {"question": "q", "answer": "p", "id": 7}]
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = list(read_records(tmp_path / "x.jsonl", columns=parse_columns(["query=question", "positive=answer"])))
    assert got == [{"query": "q", "positive": "p", "negative": ["n1", "n2"], "extra": 1},
                   {"query": "q", "positive": "p", "negative": "n", "instruction": "Task"},
                   {"query": "q", "positive": "p2", "negative": "n", "instruction": "Task"},
                   {"query": "q", "positive": "p", "negative": None, "id": "7"}]
    with pytest.raises(RecordError, match=r"'columns': 'query' is not FIELD=COLUMN"):
        parse_columns(["query"])
    (tmp_path / "y.jsonl").write_text(json.dumps({"question": "q", "answer": "p"}) + "\n")
    with pytest.raises(RecordError, match=r"y.jsonl:1: missing field 'query' or 'anchor'.*--columns query=COLUMN"):
        list(read_records(tmp_path / "y.jsonl"))
    (tmp_path / "z.jsonl").write_text(json.dumps({"query": "q", "positive": "p", "negative": ["n", ""]}) + "\n")
    with pytest.raises(RecordError, match=r"z.jsonl:1: field 'negative' must be null, a non-empty string"):
        list(read_records(tmp_path / "z.jsonl"))


def test_parquet_encoding_refuses_several_negatives():
    from recipe.schema import encode_row, parquet_columns

    rec = {**_examples()[0], "negative": ["a", "b"]}
    with pytest.raises(RecordError, match="several negatives"):
        encode_row(rec, parquet_columns([rec]), "x.jsonl")


def test_bad_values_and_bad_json_are_named(tmp_path):
    rec = _examples()[0]
    for change, message in [({"query": ""}, r"x.jsonl:1: field 'query' must be a non-empty string"),
                            ({"negative": 3}, r"x.jsonl:1: field 'negative'"),
                            ({"task_group": "retrieval"}, r"x.jsonl:1: field 'task_group' is 'retrieval'")]:
        (tmp_path / "x.jsonl").write_text(json.dumps({**rec, **change}) + "\n")
        with pytest.raises(RecordError, match=message):
            list(read_records(tmp_path / "x.jsonl"))
    (tmp_path / "x.jsonl").write_text(json.dumps(rec) + "\n\n{oops\n")
    with pytest.raises(RecordError, match=r"x.jsonl:3: not valid JSON"):
        list(read_records(tmp_path / "x.jsonl"))


def test_unknown_sources_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RecordError, match="no such file or folder, and not a Hub dataset id"):
        list(read_records(tmp_path / "missing.jsonl"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(RecordError, match="unknown record file type '.txt'"):
        list(read_records(tmp_path / "notes.txt"))
    with pytest.raises(RecordError, match="no examples.jsonl and no dataset"):
        list(read_records(tmp_path))
    with pytest.raises(RecordError, match=r"nobody-here/no-such-dataset split train: cannot load") as e:
        list(read_records("nobody-here/no-such-dataset"))
    assert "\n" not in str(e.value)


def test_reads_a_published_copy_by_config(tmp_path):
    """A folder laid out as the Hub repo (what `publish.py --dry-run` writes) reads like the Hub id."""
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    subprocess.run([sys.executable, str(root / "data" / "publish.py"), "--input", str(SYNTH), "--repo-id", "me/x",
                    "--dry-run", "--output-dir", str(tmp_path / "pub")], check=True, capture_output=True)
    by_id = {r["id"]: r for r in _examples()}
    got = list(read_records(tmp_path / "pub", config="all"))
    assert len(got) == 30
    for rec in got:
        want = by_id[rec["id"]]
        assert {k: rec[k] for k in want} == want  # every field round-trips, dicts included
    assert {r["task_group"] for r in read_records(tmp_path / "pub", config="sts")} == {"sts"}


def test_reads_a_save_to_disk_folder_and_names_a_missing_split(tmp_path):
    """`datasets.load_dataset` refuses what save_to_disk wrote ("use load_from_disk"), which no flag
    offers: the reader loads it from disk, a Dataset as it is and a DatasetDict by --split."""
    from datasets import Dataset, DatasetDict

    rows = [{"anchor": f"q{i}", "positive": f"p{i}", "negative": f"n{i}"} for i in range(3)]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))
    DatasetDict({"train": Dataset.from_list(rows[:2]), "dev": Dataset.from_list(rows[2:])}).save_to_disk(
        str(tmp_path / "dict"))
    expected = [{"query": r["anchor"], "positive": r["positive"], "negative": r["negative"]} for r in rows]
    assert list(read_records(tmp_path / "one")) == expected
    assert list(read_records(tmp_path / "dict", split="dev")) == expected[2:]
    with pytest.raises(RecordError, match=r"dict: no split 'test' \(it has train, dev\); choose one with --split"):
        list(read_records(tmp_path / "dict", split="test"))


def test_csv_and_tsv_read_like_jsonl(tmp_path):
    """A spreadsheet export reads as JSONL does: a header row names the columns, --columns maps
    them, an empty cell is no value, and errors name the file and line."""
    (tmp_path / "pairs.csv").write_text('question,answer,wrong\n"how, really?",It works.,\nwhy?,Because.,No.\n')
    (tmp_path / "pairs.tsv").write_text("anchor\tpositive\nwhere?\tHere.\n")
    got = list(read_located(tmp_path / "pairs.csv", columns={"query": "question", "positive": "answer",
                                                             "negative": "wrong"}))
    assert [(r["query"], r["positive"], r["negative"], where) for r, where in got] == [
        ("how, really?", "It works.", None, f"{tmp_path / 'pairs.csv'}:2"),
        ("why?", "Because.", "No.", f"{tmp_path / 'pairs.csv'}:3")]
    assert [(r["query"], r["positive"]) for r in read_records(tmp_path / "pairs.tsv")] == [("where?", "Here.")]
    with pytest.raises(RecordError, match=r"pairs\.csv:2: missing field 'query'"):
        list(read_records(tmp_path / "pairs.csv"))
    (tmp_path / "ragged.csv").write_text("query,positive\nq,p,extra\n")
    with pytest.raises(RecordError, match=r"ragged\.csv:2: more cells than the header has columns"):
        list(read_records(tmp_path / "ragged.csv"))
