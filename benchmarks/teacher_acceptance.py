"""How often a real local teacher's answers pass the paper's filters, with and without structured
outputs, and how much of the server's speed the synthesis client keeps.

    python benchmarks/teacher_acceptance.py --model qwen2.5-coder-0.5b-instruct --output-dir out/acceptance

One llama.cpp server (data/local_teacher.py's, 127.0.0.1, one slot, `--threads`), then per mode
(structured outputs off = the paper's requests, on = each answer's schema as response_format):
1. brainstorm: `--brainstorms` calls per asymmetric group through the engine's own request and
   filter (recipe.synth.teacher.chat, records.save_brainstorm), each saved in OUT/<mode>/brainstorm;
2. generation: data/synthesize.py's engine itself (recipe.synth.run.synthesize) over the six
   groups, equally weighted, from the same brainstormed pool in both modes (the one of the mode
   `on`, else `off`), so that the two runs ask for the very same jobs in the same order and differ
   only in response_format; each run stops cleanly at `--generation-tokens` tokens (a price of
   1 USD per 1M tokens and --max-cost), so a mode whose answers are all rejected ends too.
Every answer is judged by the project's parser; the table gives, per step, group and mode, the
answers, the accepted share and each rejection reason. Speed, side by side during each
generation run: the client's rate (completion tokens the folder holds / wall time of the run)
against the server's own (the same tokens / the seconds it spent on prompts and generation,
from its /metrics counters), i.e. what the server alone would generate back to back.
Writes OUT/acceptance.json and OUT/acceptance.md into `--output-dir` (new, empty, or this
benchmark's: docs/usage.md, "Output folders") and prints the table.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import TEACHER_PACKAGES, Sitting  # noqa: E402
from benchmarks.teacher_slots import seed_pool  # noqa: E402
from recipe import cli  # noqa: E402
from recipe.config import parse, setting  # noqa: E402
from recipe.errors import Stopped  # noqa: E402
from recipe.files import check_output_dir, mark_output_dir  # noqa: E402
from recipe.synth.acceptance import MODES, table, tally  # noqa: E402
from recipe.synth.local_teacher import LocalTeacher  # noqa: E402
from recipe.synth.placeholders import BRAINSTORM_GROUPS, GROUPS  # noqa: E402
from recipe.synth.save import save_brainstorm  # noqa: E402
from recipe.synth.request import brainstorm as brainstorm_request  # noqa: E402
from recipe.synth.run import synthesize  # noqa: E402
from recipe.synth.settings import SynthConfig  # noqa: E402
from recipe.synth.store import Store  # noqa: E402
from recipe.synth.teacher import chat, make_client  # noqa: E402

RECIPE = ROOT / "recipe" / "configs" / "synth_local.yaml"
TOOL = "benchmarks/teacher_acceptance.py"
REPORTS = ("acceptance.json", "acceptance.md")


def config(args, out: Path, mode: str, *extra: str) -> SynthConfig:
    return parse(SynthConfig, ["--config", str(RECIPE), "--output-dir", str(out), "--model", args.model_name,
                               "--structured-outputs", "true" if mode == "on" else "false",
                               "--max-tokens", str(args.max_tokens), "--max-reject-rate", "1",
                               "--progress", "false", "--seed", str(args.seed), *extra])


async def brainstorm(args, out: Path, mode: str) -> None:
    """The engine's brainstorm request and filter, `--brainstorms` calls per group, one at a time."""
    cfg = config(args, out, mode)
    client, _ = make_client(cfg)
    store = Store(out)
    try:
        for call in range(args.brainstorms):
            for group in BRAINSTORM_GROUPS:
                if call in store.tasks.get(group, {}):
                    continue  # saved by an earlier sitting
                answer = await chat(client, brainstorm_request(cfg, group, call))
                save_brainstorm(store, cfg, group, call, args.model_name, answer)
    finally:
        store.close()
        await client.close()


def generate(args, teacher: LocalTeacher, out: Path, pool: Path, mode: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    groups = [g for g in GROUPS if g not in BRAINSTORM_GROUPS or g in tasks_of(pool)]
    if not (out / "tasks.jsonl").exists():
        seed_pool(out, pool)
    spent = Store(out)  # priced at 1 USD per 1M tokens: its cost is the tokens an earlier sitting spent
    budget = spent.cost + args.generation_tokens / 1e6
    spent.close()
    mix = "{" + ", ".join(f"{g}: 1" for g in groups) + "}"
    # examples_per_task: one task per group is enough, so the copied pool is never brainstormed again
    cfg = config(args, out, mode, "--group-mix", mix, "--num-examples", "1000", "--examples-per-task", "1000",
                 "--prices", f"{{{args.model_name}: [1.0, 1.0]}}", "--max-cost", f"{budget:.6f}")
    before, started = teacher.read_metrics(), time.monotonic()
    try:
        synthesize(cfg)
    except Stopped:
        pass  # the token budget: the stop this measurement asks for
    wall = time.monotonic() - started
    after = teacher.read_metrics()
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    busy = delta["llamacpp:prompt_seconds_total"] + delta["llamacpp:tokens_predicted_seconds_total"]
    tokens = delta["llamacpp:tokens_predicted_total"]
    return {"groups": groups, "wall_s": round(wall, 1), "completion_tokens": int(tokens),
            "server_busy_s": round(busy, 1), "client_tok_s": round(tokens / wall, 2),
            "server_tok_s": round(tokens / busy, 2) if busy else None,
            "server_decode_tok_s": round(tokens / delta["llamacpp:tokens_predicted_seconds_total"], 2),
            "client_share": round(busy / wall, 3)}


def tasks_of(path: Path) -> set[str]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    return {r["task_group"] for r in rows if r.get("tasks")}


@dataclass
class TeacherAcceptanceSettings:
    model: str = setting("qwen2.5-coder-0.5b-instruct", "a local model's name or a .gguf")
    output_dir: str = setting(str(ROOT / "out" / "teacher_acceptance"), "the folder for both modes and the report")
    threads: int = setting(1, "the server's CPU threads")
    brainstorms: int = setting(1, "brainstorm calls per asymmetric group and mode")
    generation_tokens: int = setting(4000, "tokens (prompt + completion) each mode's generation run may spend")
    max_tokens: int = setting(768, "per answer (answers cut by it are rejected)")
    seed: int = setting(0, "the job plan's seed (the same jobs in both modes)")


def _main(argv: list[str]) -> int:
    args = parse(TeacherAcceptanceSettings, argv)
    out = check_output_dir(args.output_dir, TOOL, replaces=REPORTS)
    mark_output_dir(out, TOOL)
    os.environ.setdefault("OPENAI_API_KEY", "local")
    sitting = Sitting("python benchmarks/teacher_acceptance.py " + " ".join(argv), args.threads, TEACHER_PACKAGES,
                      threads_of="server")
    results: dict = {m: {} for m in MODES}
    with LocalTeacher(args.model, threads=args.threads) as teacher:
        args.model_name = teacher.model_name
        os.environ["OPENAI_BASE_URL"] = teacher.base_url
        for m in MODES:
            asyncio.run(brainstorm(args, out / m / "brainstorm", m))
            results[m]["brainstorm"] = tally(out / m / "brainstorm", "brainstorm")
            print(f"brainstorm {m}: {results[m]['brainstorm']}", file=sys.stderr, flush=True)
        pool = next((p for m in ("on", "off") if tasks_of(p := out / m / "brainstorm" / "tasks.jsonl")),
                    out / "on" / "brainstorm" / "tasks.jsonl")
        for m in MODES:
            results[m]["speed"] = generate(args, teacher, out / m / "generate", pool, m)
            results[m]["generate"] = tally(out / m / "generate", "generate")
            print(f"generate {m}: {results[m]['speed']}", file=sys.stderr, flush=True)
    sitting.write_report(out, "acceptance", {"model": args.model, "max_tokens": args.max_tokens,
                                             "pool": str(pool.relative_to(out)), "results": results},
                         table(results), TOOL, REPORTS)
    return 0


main = cli.command(_main, doc=__doc__, config=TeacherAcceptanceSettings, module=__name__)
