"""Does a CPU teacher write more accepted examples per hour with several server slots?

    python benchmarks/teacher_slots.py --model qwen2.5-coder-0.5b-instruct --threads 2 --slots 1,2,4,8 \
        --output-dir out/teacher_slots

For each slot count P, side by side on the same machine: a fresh llama.cpp server
(data/local_teacher.py's, 127.0.0.1, `--threads` threads, P slots decoded together: continuous
batching), and data/synthesize.py's engine itself (recipe.synth.run.synthesize) with
recipe/configs/synth_local.yaml's settings at `--concurrency P`, writing `--num-examples`
examples over the six groups, equally weighted. Every P asks for the very same jobs (same seed,
same brainstormed pool, copied from `--pool`, so no row pays for brainstorming) and is judged by
the same filters. Per row: wall time, answers, accepted, completion tokens (the server's own
/metrics counters), generated tokens/s over the wall, and accepted examples per hour, the figure
a long synthesis is paid in. Writes OUT/slots.json and OUT/slots.md into `--output-dir` (new,
empty, or this benchmark's: docs/usage.md, "Output folders") and prints the table.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import TEACHER_PACKAGES, Sitting  # noqa: E402
from recipe import cli  # noqa: E402
from recipe.config import ConfigError, parse, setting  # noqa: E402
from recipe.files import check_output_dir, mark_output_dir  # noqa: E402
from recipe.synth.local_teacher import LocalTeacher  # noqa: E402
from recipe.synth.placeholders import GROUPS  # noqa: E402
from recipe.synth.run import synthesize  # noqa: E402
from recipe.synth.settings import SynthConfig  # noqa: E402

RECIPE = ROOT / "recipe" / "configs" / "synth_local.yaml"
POOL = ROOT / "data" / "samples" / "real_teacher" / "tasks.jsonl"
TOOL = "benchmarks/teacher_slots.py"
REPORTS = ("slots.json", "slots.md")


def count(path: Path) -> int:
    return sum(1 for x in path.read_text().splitlines() if x.strip()) if path.is_file() else 0


def seed_pool(out: Path, pool: Path) -> None:
    """Start a synthesis folder from a brainstormed pool: the store takes a folder holding answers
    only where a run was journalled, so the copy is journalled as this folder's first start."""
    shutil.copy2(pool, out / "tasks.jsonl")
    (out / "runs.jsonl").write_text(json.dumps({"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                                "argv": [], "pool": str(pool)}) + "\n")


def row(args, slots: int, out: Path) -> dict:
    """One slot count: a fresh server, the same jobs, what the folder kept and the server spent."""
    if out.exists():
        shutil.rmtree(out)  # a row is measured whole or not at all: an earlier sitting's half is ours to drop
    out.mkdir(parents=True)
    seed_pool(out, args.pool)
    mix = "{" + ", ".join(f"{g}: 1" for g in GROUPS) + "}"
    with LocalTeacher(args.model, threads=args.threads, parallel=slots, seed=args.seed) as teacher:
        os.environ["OPENAI_BASE_URL"] = teacher.base_url
        # examples_per_task: the copied pool serves every job, so no row brainstorms
        cfg = parse(SynthConfig, ["--config", str(RECIPE), "--output-dir", str(out), "--model", teacher.model_name,
                                  "--concurrency", str(slots), "--num-examples", str(args.num_examples),
                                  "--examples-per-task", "1000", "--group-mix", mix, "--max-reject-rate", "1",
                                  "--progress", "false", "--seed", str(args.seed)])
        before, started = teacher.read_metrics(), time.monotonic()
        synthesize(cfg)
        wall = time.monotonic() - started
        after = teacher.read_metrics()
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    accepted, rejected = count(out / "examples.jsonl"), count(out / "rejected.jsonl")
    tokens = delta["llamacpp:tokens_predicted_total"]
    return {"slots": slots, "wall_s": round(wall, 1), "answers": accepted + rejected, "accepted": accepted,
            "prompt_tokens": int(delta["llamacpp:prompt_tokens_total"]), "completion_tokens": int(tokens),
            "tok_s": round(tokens / wall, 2), "examples_per_hour": round(accepted / wall * 3600, 1)}


def table(rows: list[dict]) -> str:
    base = rows[0]
    lines = ["| slots | wall s | accepted / answers | prompt tokens | completion tokens | generated tok/s | "
             "accepted examples / hour | vs first row |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['slots']} | {r['wall_s']} | {r['accepted']} / {r['answers']} | {r['prompt_tokens']} | "
                     f"{r['completion_tokens']} | {r['tok_s']} | {r['examples_per_hour']} | "
                     f"{r['examples_per_hour'] / base['examples_per_hour']:.2f}x |")
    return "\n".join(lines)


@dataclass
class TeacherSlotsSettings:
    model: str = setting("qwen2.5-coder-0.5b-instruct", "a local model's name or a .gguf")
    output_dir: str = setting(str(ROOT / "out" / "teacher_slots"), "the folder for the rows and the report")
    threads: int = setting(2, "the server's CPU threads, the same for every row")
    slots: list[int] = setting([1, 2, 4, 8], "slot counts to measure, in order")
    num_examples: int = setting(16, "examples each row asks for")
    pool: str = setting(str(POOL), "a brainstormed tasks.jsonl every row shares")
    seed: int = setting(0, "the job plan's and the server's sampling seed")

    def check(self) -> None:
        if not Path(self.pool).is_file():
            raise ConfigError(f"--pool {self.pool}: no such file (a synthesis folder's tasks.jsonl)")


def _main(argv: list[str]) -> int:
    args = parse(TeacherSlotsSettings, argv)
    out = check_output_dir(args.output_dir, TOOL, replaces=REPORTS)
    mark_output_dir(out, TOOL)
    os.environ.setdefault("OPENAI_API_KEY", "local")
    sitting = Sitting("python benchmarks/teacher_slots.py " + " ".join(argv), args.threads, TEACHER_PACKAGES,
                      threads_of="server")
    rows = []
    for p in args.slots:
        rows.append(row(args, p, out / f"slots{p}"))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    sitting.write_report(out, "slots", {"model": args.model, "rows": rows}, table(rows), TOOL, REPORTS)
    return 0


main = cli.command(_main, doc=__doc__, config=TeacherSlotsSettings, module=__name__)
