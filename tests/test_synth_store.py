"""The output folder: torn tails after kill -9, state rebuilt on reopen, clear errors."""

import json

import pytest

from recipe.synth.store import OutputError, Store


def _example(job, q):
    return {"id": str(job), "job": job, "task_group": "sts", "instruction": "i", "query": q,
            "positive": "p", "negative": "n", "language": "English",
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}, "cost_usd": 0.5, "model": "m"}


def test_reopen_rebuilds_state(tmp_path):
    s = Store(tmp_path)
    s.add_example(_example(0, "a"))
    s.add_example(_example(2, "b"))
    s.add_rejected({"job": 1, "reason": "not_json", "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    s.add_tasks({"task_group": "short-long", "call": 0, "tasks": ["t1", "t2"]})
    s.add_tasks({"task_group": "short-long", "call": 1, "tasks": ["t2", "t3"]})
    s.close()
    r = Store(tmp_path)
    assert r.n_examples == 2 and r.done_jobs == {0, 1, 2}
    assert r.rejected == {"not_json": 1} and r.cost == 1.0
    assert r.prompt_tokens == 23 and r.completion_tokens == 11
    assert r.pool("short-long") == ["t1", "t2", "t3"]


def test_torn_last_line_is_moved_aside_not_lost(tmp_path):
    s = Store(tmp_path)
    s.add_example(_example(0, "a"))
    s.close()
    with open(tmp_path / "examples.jsonl", "ab") as f:
        f.write(b'{"id": "1", "job": 1, "query": "half')  # the process died mid-write
    r = Store(tmp_path)
    assert r.n_examples == 1 and r.done_jobs == {0}
    assert (tmp_path / "examples.jsonl.torn").read_bytes() == b'{"id": "1", "job": 1, "query": "half\n'
    r.add_example(_example(1, "b"))
    r.close()
    lines = (tmp_path / "examples.jsonl").read_text().splitlines()
    assert [json.loads(x)["job"] for x in lines] == [0, 1]


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    (tmp_path / "examples.jsonl").write_text(json.dumps(_example(0, "a")) + "\nnot json\n" + json.dumps(_example(1, "b")) + "\n")
    with pytest.raises(OutputError, match=r"examples\.jsonl:2: not valid JSON"):
        Store(tmp_path)


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write to output folder"):
        Store(blocker / "out")
