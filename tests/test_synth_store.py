"""The output folder: torn tails after kill -9, state rebuilt on reopen, clear errors."""

import json

import pytest

from recipe.synth.store import OutputError, Store


def _example(job, q):
    return {"id": str(job), "job": job, "task_group": "sts", "instruction": "i", "query": q,
            "positive": "p", "negative": "n", "language": "English",
            "usage": {"prompt_tokens": 10, "completion_tokens": 5}, "cost_usd": 0.5, "model": "m"}


def _started(path):
    """A store as a synthesis leaves it: runs.jsonl is written before any request."""
    s = Store(path)
    s.add_run({"started": "now"})
    return s


def test_reopen_rebuilds_state(tmp_path):
    s = _started(tmp_path)
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
    s = _started(tmp_path)
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
    _started(tmp_path).close()
    (tmp_path / "examples.jsonl").write_text(json.dumps(_example(0, "a")) + "\nnot json\n" + json.dumps(_example(1, "b")) + "\n")
    with pytest.raises(OutputError, match=r"examples\.jsonl:2: not valid JSON"):
        Store(tmp_path)


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write to output folder"):
        Store(blocker / "out")


@pytest.mark.parametrize("first", [
    {"query": "my own", "positive": "data"},  # a user's pairs: no job
    None,  # a user's file, no runs.jsonl either
])
def test_a_foreign_examples_file_is_refused_before_anything_is_repaired(tmp_path, first):
    if first is not None:
        _started(tmp_path).close()
    rows = [{"query": f"q{i}", "positive": f"p{i}"} for i in range(3)]
    body = "".join(json.dumps(r) + "\n" for r in rows) + '{"query": "last line, no newline"}'
    (tmp_path / "examples.jsonl").write_text(body)
    with pytest.raises(OutputError, match="examples.jsonl"):
        Store(tmp_path)
    assert (tmp_path / "examples.jsonl").read_text() == body  # not cut
    assert not (tmp_path / "examples.jsonl.torn").exists()


def test_the_request_journal_counts_what_was_sent_and_never_saved(tmp_path):
    s = _started(tmp_path)
    for job in ("generate/0", "generate/1", "generate/2", "generate/3"):
        s.request_sent(job, "m", 0.25)
    s.request_refused("generate/1", 500)  # refused: not billed
    s.add_example(_example(0, "a"))  # answered and saved: cost_usd 0.5
    s.close()
    r = Store(tmp_path)  # generate/2 and generate/3 were in flight at a kill
    assert r.unsaved_before == r.unsaved() == 2
    assert r.unsaved_cost() == pytest.approx(2 * 0.5)  # the mean saved answer's cost
