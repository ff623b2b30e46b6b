"""The dataset card of a published synthesis run: what was generated, how, at what cost, under
which terms, and how to train on it.

`summarize` turns a synthesis output folder's files into facts (counts per task group and
language, tokens and cost per stage and teacher, sampling, the run configs with credentials
redacted); `render` fills recipe/templates/dataset_card.md with them for README.md: YAML front
matter the Hub reads (configs, languages, licence, size) and the card text. Everything in it is
computed from the folder, nothing typed in.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import cards
from ..schema import negatives
from .languages import ISO
from .redact import redact

PAPER = "Improving Text Embeddings with Large Language Models"
# where each group's prompt templates come from (ACL version's table numbers, appendix C)
PROMPT_TABLES = {"short-long": 8, "long-short": 9, "short-short": 10, "long-long": 11, "sts": 12, "bitext": 13}
# the teacher's terms decide what the generated text may be used for; we point to them, we do
# not restate them (they change), and say plainly when we do not know the teacher
TEACHER_TERMS = [
    (re.compile(r"^(gpt-|o\d|chatgpt|text-davinci|azure/)", re.I),
     "OpenAI Terms of Use (https://openai.com/policies/terms-of-use) and Usage Policies; among "
     "them a restriction on using Output to develop models that compete with OpenAI"),
    (re.compile(r"claude", re.I), "Anthropic's Usage Policy and Commercial/Consumer Terms (https://www.anthropic.com/legal)"),
    (re.compile(r"llama", re.I), "the Meta Llama licence and Acceptable Use Policy of the model version used (https://www.llama.com/license/)"),
    (re.compile(r"gemini|gemma", re.I), "Google's Gemini API / Gemma terms (https://ai.google.dev/gemma/terms, https://ai.google.dev/gemini-api/terms)"),
]


@dataclass
class Facts:
    n_examples: int = 0
    by_group: Counter = field(default_factory=Counter)
    by_group_language: dict = field(default_factory=lambda: defaultdict(Counter))
    n_instructions: int = 0
    # stage -> model -> {"calls", "prompt_tokens", "completion_tokens", "cost_usd", "cost_unknown"}
    usage: dict = field(default_factory=dict)
    sampling: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    runs: list = field(default_factory=list)
    n_negative_null: int = 0
    # characters per text (words mean nothing in Japanese or Thai): queries, and documents
    # (positives and hard negatives)
    lengths: dict = field(default_factory=lambda: {"queries": [], "documents": []})


def _add_usage(usage: dict, stage: str, rec: dict) -> None:
    row = usage.setdefault(stage, {}).setdefault(rec.get("model") or "unknown", {
        "calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "cost_unknown": 0})
    u = rec.get("usage") or {}
    row["calls"] += 1
    row["prompt_tokens"] += int(u.get("prompt_tokens") or 0)
    row["completion_tokens"] += int(u.get("completion_tokens") or 0)
    if rec.get("cost_usd") is None:
        row["cost_unknown"] += 1
    else:
        row["cost_usd"] += float(rec["cost_usd"])


def summarize(examples: list[dict], runs: list[dict], tasks: list[dict], rejected: list[dict]) -> Facts:
    facts = Facts(n_examples=len(examples), runs=[redact(r) for r in runs])
    instructions = set()
    for rec in examples:
        facts.by_group[rec["task_group"]] += 1
        facts.by_group_language[rec["task_group"]][rec["language"]] += 1
        instructions.add(rec["instruction"])
        facts.n_negative_null += rec.get("negative") is None
        facts.lengths["queries"].append(len(rec["query"]))
        facts.lengths["documents"] += [len(t) for t in [rec["positive"], *negatives(rec)]]
        facts.sampling[json.dumps(rec.get("sampling") or {}, sort_keys=True)] += 1
        _add_usage(facts.usage, "examples kept", rec)
    for rec in tasks:
        _add_usage(facts.usage, "brainstorm", rec)
    for rec in rejected:
        facts.rejected[rec.get("reason") or "unknown"] += 1
        _add_usage(facts.usage, "rejected outputs", rec)
    facts.n_instructions = len(instructions)
    return facts


def language_codes(names) -> list[str]:
    codes = set()
    for name in names:  # bitext records may name a pair, e.g. "English-French"
        for part in re.split(r"\s*(?:->|→|/|,|-| to )\s*", name):
            part = re.sub(r"\s*\(.*\)|\s+Romanized", "", part).strip()
            if part in ISO:
                codes.add(ISO[part])
    return sorted(codes)


def size_category(n: int) -> str:
    for limit, label in [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]:
        if n < limit:
            return label
    return "10M<n<100M"


def teacher_terms(models) -> list[str]:
    lines = []
    for model in sorted(models):
        terms = next((t for pattern, t in TEACHER_TERMS if pattern.search(model)), None)
        lines.append(f"- `{model}`: " + (terms or "terms of use not known to this tool: read the "
                                          "licence/terms of the model or API that served it"))
    return lines


def front_matter(facts: Facts, groups: list[str], license: str, pretty_name: str) -> dict:
    languages = {lang for counts in facts.by_group_language.values() for lang in counts}
    configs = [{"config_name": "all", "default": True,
                "data_files": [{"split": "train", "path": [f"{g}/train-*.parquet" for g in groups]}]}]
    configs += [{"config_name": g, "data_files": [{"split": "train", "path": f"{g}/train-*.parquet"}]}
                for g in groups]
    codes = language_codes(languages)
    meta = {
        "license": license, "pretty_name": pretty_name, "language": codes,
        "multilinguality": "multilingual" if len(codes) > 1 else "monolingual",
        "size_categories": [size_category(facts.n_examples)],
        "task_categories": ["sentence-similarity", "text-retrieval", "text-classification"],
        "tags": ["synthetic", "text-embeddings", "e5-mistral", "e5-recipe"],
        "configs": configs,
    }
    if not codes:
        del meta["language"]  # the Hub wants ISO codes or nothing
    return meta


def pictures(images: list[str]) -> list[str]:
    from .card_plots import PICTURES

    return [f"![{PICTURES[Path(p).name]}]({p})" for p in images]


def overlap(report: dict | None) -> dict | None:
    """What the card says of overlap with evaluation data (data/decontaminate.py's report); None:
    not measured."""
    if report is None:
        return None
    k = report["by_kind"]
    rows = [r for r in report["table"] if r["records"]]
    return {
        "evaluation_texts": f"{report['evaluation_texts']:,}", "tasks": len(report["tasks"]),
        "against": f"`{report['benchmark']}`" if report.get("benchmark") else "the tasks below",
        "date": report.get("date", "date not recorded"), "removed": f"{report['removed']:,}",
        "records": f"{report['records']:,}", "exact": f"{k['exact']:,}", "contained": f"{k['contained']:,}",
        "near": f"{k['near']:,}",
        "done": ("these records were removed from it" if report.get("output") and not report.get("report_only")
                 else "these records are still in the published data"),
        "rows": [[r["task"], f"{r['eval_texts']:,}", r["eval_texts_matched"], r["records"], r["exact"], r["contained"],
                  r["near"]] for r in rows],
        "clean": len(report["table"]) - len(rows), "settings": report.get("settings", {}),
    }


def cost(usage: dict) -> dict:
    """The tokens and cost table, per stage and teacher, and its total."""
    rows, total_cost, unknown, calls = [], 0.0, 0, 0
    for stage, per_model in usage.items():
        for model, u in sorted(per_model.items()):
            # a teacher with no known price (a local server) cost unknown, not 0 USD
            cell = ("unknown" if u["cost_unknown"] == u["calls"] else f"{u['cost_usd']:,.4f}"
                    + (f" (+{u['cost_unknown']} unpriced)" if u["cost_unknown"] else ""))
            rows.append([stage, f"`{model}`", f"{u['calls']:,}", f"{u['prompt_tokens']:,}",
                         f"{u['completion_tokens']:,}", cell])
            total_cost += u["cost_usd"]
            unknown += u["cost_unknown"]
            calls += u["calls"]
    tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for s in usage.values() for u in s.values())
    if unknown and unknown == calls:
        spent = "cost unknown (no call had a known price)"
    else:
        spent = f"{total_cost:,.4f} USD" + (f" ({unknown:,} call{'s' if unknown != 1 else ''} had no known price, "
                                             "not counted)" if unknown else "")
    return {"usage": rows, "tokens": f"{tokens:,}", "spent": spent}


def render(facts: Facts, repo_id: str, groups: list[str], license: str = "other",
           extra_terms: str | None = None, images: list[str] | None = None,
           decontamination: dict | None = None) -> str:
    """README.md: recipe/templates/dataset_card.md filled with the facts."""
    from huggingface_hub import DatasetCard, DatasetCardData

    by_language = facts.by_group_language
    languages = sorted({lang for c in by_language.values() for lang in c},
                       key=lambda lang: -sum(c[lang] for c in by_language.values()))
    models = {m for stage in facts.usage.values() for m in stage}
    seeds = sorted({str(r.get("config", {}).get("seed")) for r in facts.runs if isinstance(r.get("config"), dict)
                    and "seed" in r["config"]})
    shown = pictures(images or [])
    data = DatasetCardData(**front_matter(facts, groups, license, repo_id.split("/", 1)[1]))
    return cards.render(
        DatasetCard, "dataset_card.md", data, paper=PAPER, repo_id=repo_id, groups=groups, extra_terms=extra_terms,
        n_examples=f"{facts.n_examples:,}", n_instructions=f"{facts.n_instructions:,}",
        configs=[["all", f"{facts.n_examples:,}", len(languages)]]
        + [[g, f"{facts.by_group[g]:,}", len(by_language[g])] for g in groups],
        languages=[[lang] + [by_language[g][lang] for g in groups] + [sum(by_language[g][lang] for g in groups)]
                   for lang in languages],
        first_picture=shown[0] if shown else None, more_pictures=shown[1:],
        no_negative=f"{facts.n_negative_null:,}" if facts.n_negative_null else None,
        teachers=", ".join(f"`{m}`" for m in sorted(models)) or "not recorded",
        prompt_tables=", ".join(f"{g} Table {PROMPT_TABLES[g]}" for g in groups if g in PROMPT_TABLES),
        sampling="; ".join(f"{s} ({n:,} examples)" for s, n in facts.sampling.most_common()) or "not recorded",
        rejected=(" Rejected: " + ", ".join(f"{r} {n:,}" for r, n in facts.rejected.most_common()) + "."
                  if facts.rejected else ""),
        seeds=", ".join(seeds) if seeds else "not recorded",
        runs_yaml=yaml.safe_dump(facts.runs, sort_keys=False, allow_unicode=True).strip() if facts.runs else None,
        overlap=overlap(decontamination), terms=teacher_terms(models) or ["- no teacher recorded"],
        **cost(facts.usage))
