"""Parsing the teacher's answers: JSON, fenced, prose-wrapped, Python lists; never executed."""

import json

import pytest

from recipe.synth.parse import Rejected, parse_example, parse_tasks

GOOD = {"user_query": "q", "positive_document": "pos", "hard_negative_document": "neg"}


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: f"```json\n{s}\n```",
    lambda s: f"```\n{s}\n```",
    lambda s: f"Here you go:\n{s}\nEnjoy!",
])
def test_example_shapes_accepted(wrap):
    raw, q, p, n = parse_example("short-long", wrap(json.dumps(GOOD)))
    assert (q, p, n) == ("q", "pos", "neg") and raw == GOOD


@pytest.mark.parametrize("group,obj,reason", [
    ("short-long", {k: v for k, v in GOOD.items() if k != "hard_negative_document"}, "missing_key:hard_negative_document"),
    ("short-long", {**GOOD, "user_query": "  "}, "empty:user_query"),
    ("short-long", {**GOOD, "hard_negative_document": "pos"}, "positive_equals_negative"),
    ("long-short", {"input_text": "t", "label": 3, "misleading_label": "b"}, "not_string:label"),
    ("sts", {"S1": "a", "S2": "b", "S3": "b"}, "positive_equals_negative"),
    ("sts", ["S1", "S2"], "not_object"),
])
def test_example_rejections(group, obj, reason):
    with pytest.raises(Rejected) as e:
        parse_example(group, json.dumps(obj))
    assert e.value.reason == reason


def test_short_short_has_no_negative():
    _, q, p, n = parse_example("short-short", '{"input": "a word", "positive_document": "its definition"}')
    assert (q, p, n) == ("a word", "its definition", None)


@pytest.mark.parametrize("text", ["", "   ", None, "{'user_query': 'q'", "not json at all"])
def test_unparseable_is_rejected(text):
    with pytest.raises(Rejected):
        parse_example("short-long", text)


def test_task_lists_json_and_python_literal():
    assert parse_tasks('["a", "b", "a"]') == ["a", "b"]
    assert parse_tasks("```python\n['Retrieve x.', \"Find y's z.\"]\n```") == ["Retrieve x.", "Find y's z."]
    assert parse_tasks('Sure:\n["a",\n "b"]') == ["a", "b"]
    assert parse_tasks('{"tasks": ["a"]}') == ["a"]


def test_model_output_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    for text in (payload, f"[{payload}]", f"```python\n{payload}\n```"):
        with pytest.raises(Rejected):
            parse_tasks(text)
    assert not marker.exists()
