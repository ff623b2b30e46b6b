"""The paper's ten prompt templates and the only way to fill them.

The files in `prompts/` are byte-for-byte copies of the paper's appendix C (Table 8 short-long,
9 long-short, 10 short-short, 11 long-long, 12 STS, 13 bitext; ACL numbering). `render` fills
one with values that must all come from the paper's sets, so no prompt is ever sent with an
empty, missing or out-of-set placeholder.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

from .placeholders import BRAINSTORM_GROUPS, GROUPS, LANGUAGES, SETS

PROMPT_DIR = Path(__file__).parent / "prompts"
PAPER_TABLE = {"short-long": 8, "long-short": 9, "short-short": 10, "long-long": 11, "sts": 12, "bitext": 13}


def template_name(group: str, step: str) -> str:
    """File stem of a template: `short_long_brainstorm`, `sts_generate`, ..."""
    if group not in GROUPS:
        raise ValueError(f"unknown task group {group!r}; expected one of {', '.join(GROUPS)}")
    if step == "brainstorm" and group not in BRAINSTORM_GROUPS:
        raise ValueError(f"task group {group!r} has no brainstorm step in the paper")
    if step not in ("brainstorm", "generate"):
        raise ValueError(f"unknown step {step!r}")
    return f"{group.replace('-', '_')}_{step}"


@cache
def template(group: str, step: str) -> str:
    # The files end with a newline that is not part of the prompt.
    return (PROMPT_DIR / f"{template_name(group, step)}.txt").read_text(encoding="utf-8").rstrip("\n")


@cache
def fields(group: str, step: str) -> frozenset[str]:
    return frozenset(f for _, f, _, _ in string.Formatter().parse(template(group, step)) if f)


def allowed_values(group: str, name: str) -> tuple[str, ...] | None:
    """The paper's set for a placeholder; None for free text (the brainstormed task)."""
    if name == "task":
        return None
    if name in ("language", "src_lang", "tgt_lang"):
        return LANGUAGES
    try:
        return SETS[group][name]
    except KeyError:
        raise ValueError(f"{group}: no value set for placeholder {{{name}}}") from None


def render(group: str, step: str, values: dict[str, str]) -> str:
    """Fill a template; every placeholder given, non-empty and in the paper's set."""
    need = fields(group, step)
    missing, extra = need - values.keys(), values.keys() - need
    if missing or extra:
        raise ValueError(f"{template_name(group, step)}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for name in need:
        value = values[name]
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{template_name(group, step)}: placeholder {{{name}}} is empty")
        allowed = allowed_values(group, name)
        if allowed is not None and value not in allowed:
            raise ValueError(f"{template_name(group, step)}: {{{name}}}={value!r} is not in the paper's set")
    if group == "bitext" and values["src_lang"] == values["tgt_lang"]:
        raise ValueError("bitext_generate: src_lang and tgt_lang must differ")
    return template(group, step).format(**values)
