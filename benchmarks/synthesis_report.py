"""What a synthesis folder holds, read from its files: the figures of a shipped sample's card.

    python benchmarks/synthesis_report.py --input data/samples/real_teacher_2k

Per task group: answers, accepted, each rejection reason; brainstorms: answers, accepted, tasks
per accepted answer, distinct tasks; languages; words per query, positive and negative (median,
10th and 90th percentile); tokens in and out; the settings of every start (runs.jsonl). Prints
Markdown; reads only.
"""

from __future__ import annotations

import collections
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipe import cli  # noqa: E402
from recipe.config import ConfigError, parse, setting  # noqa: E402

GROUPS = ("short-long", "long-short", "short-short", "long-long", "sts", "bitext")


def read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a torn last line of a run still going
    return rows


def quantiles(values: list[int]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return f"{statistics.median(values):g} ({pick(0.1)}-{pick(0.9)})"


def report(folder: Path) -> str:
    examples, rejected = read(folder / "examples.jsonl"), read(folder / "rejected.jsonl")
    tasks, runs = read(folder / "tasks.jsonl"), read(folder / "runs.jsonl")
    lines = [f"Examples {len(examples)} accepted of {len(examples) + len(rejected)} answers "
             f"({100 * len(examples) / max(1, len(examples) + len(rejected)):.1f}%).", "",
             "| task group | answers | accepted | rejected for | words: query | positive | negative |",
             "|---|---:|---:|---|---|---|---|"]
    for g in GROUPS:
        acc = [e for e in examples if e["task_group"] == g]
        rej = collections.Counter(r["reason"] for r in rejected if r["task_group"] == g)
        words = {k: [len(str(e.get(k) or "").split()) for e in acc if e.get(k)] for k in ("query", "positive", "negative")}
        lines.append(f"| {g} | {len(acc) + sum(rej.values())} | {len(acc)} | "
                     + (", ".join(f"{k} {v}" for k, v in rej.most_common()) or "-") + " | "
                     + " | ".join(quantiles(words[k]) for k in ("query", "positive", "negative")) + " |")
    lines += ["", "Words: median (10th-90th percentile) of the accepted examples.", "",
              "| brainstorm group | answers | accepted | tasks per accepted answer | distinct tasks | rejected for |",
              "|---|---:|---:|---:|---:|---|"]
    for g in GROUPS[:4]:
        rows = [t for t in tasks if t["task_group"] == g]
        ok = [t for t in rows if t.get("tasks")]
        every = [x for t in ok for x in t["tasks"]]
        rej = collections.Counter(t.get("reason") for t in rows if not t.get("tasks"))
        lines.append(f"| {g} | {len(rows)} | {len(ok)} | {len(every) / max(1, len(ok)):.1f} | {len(set(every))} | "
                     + (", ".join(f"{k} {v}" for k, v in rej.most_common()) or "-") + " |")
    langs = collections.Counter(e.get("language") for e in examples)
    lines += ["", f"Languages ({len(langs)}): " + ", ".join(f"{k} {v}" for k, v in langs.most_common()) + "."]
    usage = [r.get("usage") or {} for r in examples + rejected + tasks]
    lines += ["", f"Tokens: {sum(u.get('prompt_tokens', 0) for u in usage):,} in, "
              f"{sum(u.get('completion_tokens', 0) for u in usage):,} out, over {len(usage)} answers."]
    for r in runs:
        cfg = r.get("config", {})
        keys = ("model", "temperature", "top_p", "max_tokens", "structured_outputs", "min_tasks_per_brainstorm",
                "concurrency", "num_examples", "seed")
        lines.append(f"Start {r.get('started')}: " + ", ".join(f"{k} {cfg[k]}" for k in keys if k in cfg) + ".")
    return "\n".join(lines)


@dataclass
class SynthesisReportSettings:
    input: str = setting("", "a data/synthesize.py output folder (required)")

    def check(self) -> None:
        folder = Path(self.input)
        if not self.input or not ((folder / "examples.jsonl").is_file() or (folder / "tasks.jsonl").is_file()):
            raise ConfigError(f"--input {self.input!r}: no examples.jsonl or tasks.jsonl (want a "
                              "data/synthesize.py output folder)")


def _main(argv: list[str]) -> int:
    args = parse(SynthesisReportSettings, argv)
    print(report(Path(args.input)))
    return 0


main = cli.command(_main, doc=__doc__, config=SynthesisReportSettings, module=__name__)
