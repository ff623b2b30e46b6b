"""Which evaluation protocol a model gets, and why: `e5` (the E5 authors' instructions) or `plain`
(the model as saved, the way the MTEB leaderboard runs it).

`auto` looks at the model itself, never at its name alone:
- a saved query prompt containing `Instruct:` (what train.py exports) means an E5-style
  instruction model: `e5`;
- so does an mteb ModelMeta that uses instructions with an `Instruct:` template
  (intfloat/e5-mistral-7b-instruct and its kin, whose saved prompts are per task, not "query");
- anything else runs as saved: `plain` (all-MiniLM-L6-v2 then scores what the leaderboard says).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError

PROTOCOLS = ("auto", "e5", "plain")
MARKER = "Instruct:"


@dataclass(frozen=True)
class Choice:
    protocol: str  # "e5" or "plain"
    reason: str    # one clause, printed as `protocol: e5 (reason)`


def registry_meta(name: str):
    """mteb's own ModelMeta for a Hub id, or None (read from the installed registry, offline)."""
    from mteb.models.model_implementations import MODEL_REGISTRY

    return MODEL_REGISTRY.get(name)


def choose(requested: str, model, name: str, custom_template: bool = False) -> Choice:
    """The protocol for `model` (a loaded SentenceTransformer) called `name` (Hub id or local/...)."""
    if requested != "auto":
        choice = Choice(requested, f"--protocol {requested}")
    else:
        choice = _detect(model, name)
    if custom_template and choice.protocol != "e5":
        # a template only means something where instructions are applied; say so rather than ignore it
        raise ConfigError(f"--instruction-template applies under the e5 protocol, and {name} runs "
                          f"plain ({choice.reason}); pass --protocol e5 to use it")
    return choice


def _detect(model, name: str) -> Choice:
    query_prompt = (model.prompts or {}).get("query") or ""
    if MARKER in query_prompt:
        return Choice("e5", f"auto: its saved query prompt contains {MARKER!r}, an E5-style instruction model")
    meta = registry_meta(name)
    template = (meta.loader_kwargs or {}).get("instruction_template") if meta else None
    if meta is not None and meta.use_instructions and isinstance(template, str) and MARKER in template:
        return Choice("e5", f"auto: mteb's ModelMeta for {name} uses instructions with the template {template!r}")
    return Choice("plain", f"auto: no saved query prompt with {MARKER!r} and no mteb ModelMeta with E5 "
                           "instructions, so it runs as saved, as the leaderboard runs it")
