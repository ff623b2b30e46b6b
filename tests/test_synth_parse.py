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


# How each group's JSON becomes (query, positive, negative): the paper's appendix C keys, typed
# out by hand from the paper, not from the key table in recipe/synth/parse.py
@pytest.mark.parametrize("group,answer,triple", [
    ("short-long", {"user_query": "fix a flat", "positive_document": "Patch the tube.",
                    "hard_negative_document": "Tyres come in many widths."},
     ("fix a flat", "Patch the tube.", "Tyres come in many widths.")),
    ("long-short", {"input_text": "The app crashed twice today.", "label": "complaint", "misleading_label": "praise"},
     ("The app crashed twice today.", "complaint", "praise")),
    ("short-short", {"input": "a word", "positive_document": "its definition"}, ("a word", "its definition", None)),
    ("long-long", {"input": "An abstract.", "positive_document": "The full paper."},
     ("An abstract.", "The full paper.", None)),
    ("sts", {"S1": "A dog runs.", "S2": "A dog is running.", "S3": "A cat sleeps."},
     ("A dog runs.", "A dog is running.", "A cat sleeps.")),
    ("bitext", {"S1": "Good morning.", "S2": "Guten Morgen.", "S3": "Gute Nacht."},
     ("Good morning.", "Guten Morgen.", "Gute Nacht.")),
])
def test_each_group_becomes_the_papers_triple(group, answer, triple):
    raw, *got = parse_example(group, json.dumps(answer))
    assert tuple(got) == triple and raw == answer


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
