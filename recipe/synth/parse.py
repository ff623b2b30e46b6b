"""Read the teacher's answers without ever executing them.

Accepted shapes: plain JSON, JSON inside a fenced ``` / ```json block, JSON with prose around it,
and (for brainstormed task lists, which the paper asks for as "a python list of strings") a
Python literal read by `ast.literal_eval`, which evaluates literals only. Anything else is a
`Rejected` with a short reason code, counted by the engine and kept in rejected.jsonl.
"""

from __future__ import annotations

import ast
import json
import re

# The JSON keys the paper's generation prompts ask for, and how they become a training triple.
KEYS = {
    "short-long": ("user_query", "positive_document", "hard_negative_document"),
    "long-short": ("input_text", "label", "misleading_label"),
    "short-short": ("input", "positive_document", None),
    "long-long": ("input", "positive_document", None),
    "sts": ("S1", "S2", "S3"),
    "bitext": ("S1", "S2", "S3"),
}

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)


class Rejected(ValueError):
    """An answer that cannot be used; `reason` is a short code such as 'missing_key:label'."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _candidates(text: str, open_: str, close: str):
    text = text.strip()
    yield text
    for block in _FENCE.findall(text):
        yield block.strip()
    start, end = text.find(open_), text.rfind(close)
    if 0 <= start < end:
        yield text[start : end + 1]


def _load(text: str, open_: str, close: str, literal: bool):
    for candidate in _candidates(text, open_, close):
        try:
            return json.loads(candidate)
        except ValueError:
            pass
        if literal:
            try:
                return ast.literal_eval(candidate)
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                pass
    raise Rejected("not_json")


def parse_example(group: str, text: str | None) -> tuple[dict, str, str, str | None]:
    """The teacher's JSON object and its (query, positive, negative) for one generation answer."""
    if not text or not text.strip():
        raise Rejected("empty_response")
    obj = _load(text, "{", "}", literal=False)
    if not isinstance(obj, dict):
        raise Rejected("not_object")
    values = []
    for key in KEYS[group]:
        if key is None:
            values.append(None)
            continue
        if key not in obj:
            raise Rejected(f"missing_key:{key}")
        value = obj[key]
        if not isinstance(value, str):
            raise Rejected(f"not_string:{key}")
        if not value.strip():
            raise Rejected(f"empty:{key}")
        values.append(value.strip())
    query, positive, negative = values
    if negative is not None and negative == positive:
        raise Rejected("positive_equals_negative")
    if query == positive:
        raise Rejected("query_equals_positive")
    return obj, query, positive, negative


def parse_tasks(text: str | None) -> list[str]:
    """A brainstormed list of task definitions: non-empty strings, in order, without repeats."""
    if not text or not text.strip():
        raise Rejected("empty_response")
    obj = _load(text, "[", "]", literal=True)
    if isinstance(obj, dict) and len(obj) == 1:  # {"tasks": [...]} from JSON-mode servers
        (obj,) = obj.values()
    if not isinstance(obj, (list, tuple)):
        raise Rejected("not_list")
    tasks = list(dict.fromkeys(t.strip() for t in obj if isinstance(t, str) and t.strip()))
    if not tasks:
        raise Rejected("no_tasks")
    return tasks
