"""Keep credentials out of everything `data/publish.py` writes: the card, its config dump, logs.

Two layers, because either alone can miss: (1) `redact` blanks config values whose key names a
credential or whose text looks like one (OpenAI `sk-...`, Hugging Face `hf_...`, `Bearer ...`,
`api-key=...` in a URL); (2) `known_secrets` collects the actual values of credential-like
environment variables and the Hub token, and `find_secret` checks written text for any of them,
so a key that slipped through under an innocent name still stops the publish.
"""

from __future__ import annotations

import os
import re

REDACTED = "<redacted>"
# a key NAMES a credential when it ends in one of these words ("OPENAI_API_KEY", "hf_token",
# "Authorization"); plural counters such as "max_tokens" or "prompt_tokens" do not
SECRET_KEY = re.compile(r"(^|[^a-z])(key|token|secret|password|passwd|authori[sz]ation|credentials?|cookie)$", re.I)
SECRET_TEXT = re.compile(
    r"(sk-[A-Za-z0-9_\-]{12,}|hf_[A-Za-z0-9]{12,}|Bearer\s+[A-Za-z0-9._\-]{8,}"
    r"|(?<=[?&])(?:api[_-]?key|key|token|sig)=[^&\s\"']+)", re.I)


def redact(obj):
    """A copy of `obj` (nested dicts/lists/strings) with credential-like values replaced."""
    if isinstance(obj, dict):
        return {k: (REDACTED if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "", False)
                    else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):  # an argv: also the value after "--api-key" and "--token=..."
        out = []
        for i, v in enumerate(obj):
            prev = obj[i - 1] if i else None
            if isinstance(v, str) and v.startswith("-") and "=" in v and _secret_flag(v.split("=", 1)[0]):
                out.append(v.split("=", 1)[0] + "=" + REDACTED)
            elif isinstance(prev, str) and _secret_flag(prev) and "=" not in prev and isinstance(v, str):
                out.append(REDACTED)
            else:
                out.append(redact(v))
        return out
    if isinstance(obj, str):
        return SECRET_TEXT.sub(REDACTED, obj)
    return obj


def _secret_flag(arg: str) -> bool:
    return arg.startswith("-") and bool(SECRET_KEY.search(arg.lstrip("-")))


def known_secrets(extra: list[str | None] = ()) -> set[str]:
    """Values of credential-like environment variables (and `extra`, e.g. the Hub token in use)."""
    values = {v for k, v in os.environ.items() if SECRET_KEY.search(k)}
    values.update(v for v in extra if v)
    return {v for v in values if len(v) >= 8}  # short values ("1", "true") are flags, not keys


def find_secret(text: str, secrets: set[str], patterns: bool = True) -> str | None:
    """The first secret that occurs in `text`, else None.

    With `patterns`, credential-looking strings count too: right for text we generate (the card),
    wrong for the teacher's examples, where "Bearer ..." may be an honest example about HTTP.
    """
    for s in secrets:
        if s in text:
            return s
    m = SECRET_TEXT.search(text) if patterns else None
    return m.group(0) if m else None
