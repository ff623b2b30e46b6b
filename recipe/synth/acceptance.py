"""How often a teacher's answers pass the paper's filters, from what a synthesis folder saved: per
step (brainstorm, generate) and task group, the answers, the accepted ones and each rejection's
reason (the parser's codes); and the table benchmarks/teacher_acceptance.py prints for its runs
with structured outputs off and on, beside the client's and the server's speed."""

from __future__ import annotations

import collections
import json
from pathlib import Path

from .placeholders import BRAINSTORM_GROUPS, GROUPS

MODES = ("off", "on")  # structured outputs


def tally(folder: Path, step: str) -> dict:
    """Per group: answers, accepted, reasons (the parser's codes), from what the folder saved."""
    out: dict[str, dict] = {}

    def row(group):
        return out.setdefault(group, {"answers": 0, "accepted": 0, "reasons": collections.Counter()})

    def lines(name):
        path = folder / f"{name}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []

    if step == "brainstorm":
        for r in lines("tasks"):
            g = row(r["task_group"])
            g["answers"] += 1
            if r.get("tasks"):
                g["accepted"] += 1
                g.setdefault("tasks", []).append(len(r["tasks"]))
            else:
                g["reasons"][r["reason"]] += 1
    else:
        for r in lines("examples"):
            row(r["task_group"])["answers"] += 1
            row(r["task_group"])["accepted"] += 1
        for r in lines("rejected"):
            row(r["task_group"])["answers"] += 1
            row(r["task_group"])["reasons"][r["reason"]] += 1
    return {g: {**v, "reasons": dict(v["reasons"])} for g, v in out.items()}


def table(results: dict) -> str:
    lines = ["| step | task group | off: accepted / answers | off: rejected for | on: accepted / answers | on: rejected for |",
             "|---|---|---:|---|---:|---|"]
    for step in ("brainstorm", "generate"):
        groups = BRAINSTORM_GROUPS if step == "brainstorm" else GROUPS
        totals = {m: [0, 0] for m in MODES}
        for g in groups:
            cells = []
            for m in MODES:
                r = results[m][step].get(g, {"answers": 0, "accepted": 0, "reasons": {}})
                totals[m][0] += r["accepted"]
                totals[m][1] += r["answers"]
                cells += [f"{r['accepted']} / {r['answers']}",
                          ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) or "-"]
            lines.append(f"| {step} | {g} | " + " | ".join(cells) + " |")
        pct = {m: f"{100 * a / n:.0f}%" if n else "-" for m, (a, n) in totals.items()}
        lines.append(f"| {step} | **all** | **{totals['off'][0]} / {totals['off'][1]} ({pct['off']})** | | "
                     f"**{totals['on'][0]} / {totals['on'][1]} ({pct['on']})** | |")
    lines += ["", "| structured outputs | generation wall s | completion tokens | client tok/s | server busy s | "
              "server tok/s (busy) | server decode tok/s | client / server |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in MODES:
        s = results[m]["speed"]
        lines.append(f"| {m} | {s['wall_s']} | {s['completion_tokens']} | {s['client_tok_s']} | {s['server_busy_s']} | "
                     f"{s['server_tok_s']} | {s['server_decode_tok_s']} | {100 * s['client_share']:.1f}% |")
    return "\n".join(lines)
