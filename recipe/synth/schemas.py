"""Structured outputs (`structured_outputs: true`): each answer's JSON schema, sent as the request's
`response_format`, so that the server constrains decoding to it.

OpenAI's structured outputs take `{"type": "json_schema", "json_schema": {"name", "schema",
"strict"}}`; llama.cpp's server (it turns the schema into a grammar) and vLLM's take the same
field. Strict mode wants an object at the root, every property required and no others, so a
generation answer is the object of exactly the keys the paper's prompt asks for (parse.KEYS),
and a brainstorm answer, which the paper asks for as "a python list of strings", is
`{"tasks": [...]}` (parse.parse_tasks reads a one-key object as its list). The paper's teacher
had no such constraint: this is off by default, and the prompts are sent unchanged either way.
"""

from __future__ import annotations

from .parse import KEYS


def _object(properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def answer_schema(group: str, step: str, min_tasks: int = 1) -> dict:
    """The JSON schema of one answer: step 'generate' (an example) or 'brainstorm' (a task list of
    at least `min_tasks` items: a small teacher left free stops after three or four)."""
    if step == "brainstorm":
        return _object({"tasks": {"type": "array", "items": {"type": "string"}, "minItems": min_tasks}})
    if step != "generate":
        raise ValueError(f"unknown step {step!r}")
    return _object({key: {"type": "string"} for key in KEYS[group] if key is not None})


def response_format(cfg, group: str, step: str) -> dict | None:
    """The request's `response_format`, or None when structured outputs are off (the paper's way)."""
    if not cfg.structured_outputs:
        return None
    name = f"{group.replace('-', '_')}_{'tasks' if step == 'brainstorm' else 'example'}"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": answer_schema(group, step, cfg.min_tasks_per_brainstorm),
                                                         "strict": True}}
