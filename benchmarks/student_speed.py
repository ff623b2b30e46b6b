"""The miniature student's training step: which settings make it faster, and what they cost the loss.

    python benchmarks/student_speed.py --output-dir out/student_speed --threads 2

train.py itself (recipe/configs/mini_e5.yaml, SmolLM2-135M-Instruct, LoRA r16, EOS pooling,
InfoNCE), one fresh process per arm, on the same records with the same seed, so every arm sees
the same batches in the same order: `--max-steps` steps each. The arms:
- `float32, cached` (mini_e5.yaml as shipped: float32 weights, GradCache at mini-batch 8);
- `bfloat16, cached`: bfloat16 weights with accelerate's bf16 mixed precision (`--dtype bfloat16
  --mixed-precision bf16`), where the CPU computes bfloat16 natively (else it is emulated and slow);
- `float32, not cached` and `bfloat16, not cached` (`--cached false`: no GradCache replay, one
  backward through the activations of every length-grouped mini-batch, all held at once);
- and `bfloat16, not cached` at each larger `--batch-sizes` (more in-batch negatives per step).
Per arm: seconds per step (the median of steps 2 on: the first pays for warm-up), real tokens per
second, peak memory, and the loss at every step, set beside the first arm's so that a dtype that
changes what is learned shows in the same table. Writes OUT/speed.json and OUT/speed.md into
`--output-dir` (new, empty, or this benchmark's: docs/usage.md, "Output folders").
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe import cli  # noqa: E402
from recipe.config import ConfigError, parse, setting  # noqa: E402
from recipe.files import check_output_dir, mark_output_dir  # noqa: E402

from benchmarks.provenance import Sitting  # noqa: E402

MINI = ROOT / "recipe" / "configs" / "mini_e5.yaml"
DATA = ROOT / "data" / "samples" / "real_teacher" / "examples.jsonl"
TOOL = "benchmarks/student_speed.py"
REPORTS = ("speed.json", "speed.md")


def arms(batch: int, batch_sizes: list[int]) -> list[dict]:
    fp32 = {"dtype": "float32", "mixed_precision": "no"}
    bf16 = {"dtype": "bfloat16", "mixed_precision": "bf16"}
    rows = [{"name": "float32, cached", **fp32, "cached": True, "batch": batch},
            {"name": "bfloat16, cached", **bf16, "cached": True, "batch": batch},
            {"name": "float32, not cached", **fp32, "cached": False, "batch": batch},
            {"name": "bfloat16, not cached", **bf16, "cached": False, "batch": batch}]
    return rows + [{"name": f"bfloat16, not cached, batch {b}", **bf16, "cached": False, "batch": b}
                   for b in batch_sizes if b != batch]


def run_arm(args, arm: dict, out: Path) -> dict:
    log = out.with_suffix(".log")
    argv = [sys.executable, str(ROOT / "train.py"), "--config", str(MINI), "--model", args.student,
            "--data", str(args.data), "--output-dir", str(out), "--overwrite", "--seed", str(args.seed),
            "--max-steps", str(args.max_steps), "--num-train-epochs", "100", "--cpu-threads", str(args.threads),
            "--max-length", str(args.max_length), "--dtype", arm["dtype"], "--mixed-precision",
            arm["mixed_precision"], "--cached", str(arm["cached"]).lower(), "--global-batch-size",
            str(arm["batch"]), "--mini-batch-size", str(min(arm["batch"], args.mini_batch_size)),
            "--learning-rate", str(args.learning_rate), "--save-steps", "0"]
    started = time.monotonic()
    with log.open("w") as f:
        code = subprocess.run(argv, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}).returncode
    if code != 0:
        raise SystemExit(f"{arm['name']}: train.py exited {code}; see {log}")
    rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines() if x.strip()]
    times = [r["step_time_s"] for r in rows]
    steady = times[1:] or times
    return {**arm, "wall_s": round(time.monotonic() - started, 1), "steps": len(rows),
            "s_per_step": round(statistics.median(steady), 2), "step_times": times,
            "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in rows[1:] or rows), 1),
            "peak_memory_gb": round(max(r["peak_memory_gb"] for r in rows), 1), "losses": [round(r["loss"], 4) for r in rows]}


def table(results: list[dict]) -> str:
    base = results[0]
    lines = ["| arm | batch | s/step | vs first | real tok/s | examples/s | peak GB | loss, step 1 -> last |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['batch']} | {r['s_per_step']} | {base['s_per_step'] / r['s_per_step']:.2f}x | "
                     f"{r['tokens_per_s']} | {r['batch'] / r['s_per_step']:.2f} | {r['peak_memory_gb']} | "
                     f"{r['losses'][0]} -> {r['losses'][-1]} |")
    same = [r for r in results if r["batch"] == base["batch"]]
    lines += ["", "| step | " + " | ".join(r["name"] for r in same) + " |", "|---:|" + "---:|" * len(same)]
    for i in range(max(len(r["losses"]) for r in same)):
        lines.append(f"| {i + 1} | " + " | ".join(f"{r['losses'][i]:.4f}" if i < len(r["losses"]) else ""
                                               for r in same) + " |")
    return "\n".join(lines)


@dataclass
class StudentSpeedSettings:
    output_dir: str = setting(str(ROOT / "out" / "student_speed"), "the folder for the arms and the report")
    data: str = setting(str(DATA), "training records (synthesis format or pairs)")
    student: str = setting("smollm2-135m-instruct", "the student model")
    threads: int = setting(2, "torch threads of every arm")
    batch_size: int = setting(16, "the global batch of the four first arms")
    batch_sizes: list[int] = setting([32, 64], "larger batches for the last arm's setting")
    mini_batch_size: int = setting(8, "GradCache's chunks, and the not-cached arms' length-grouped chunks "
                                      "(group_by_length)")
    max_steps: int = setting(6, "training steps of each arm")
    max_length: int = setting(128, "tokens per text")
    learning_rate: float = setting(1e-3, "training's peak learning rate")
    seed: int = setting(0, "training seed, the same for every arm")
    arms: list[int] = setting([], "arm numbers to run (1-based; default: all)")

    def check(self) -> None:
        if not Path(self.data).is_file():
            raise ConfigError(f"--data {self.data}: no such file")
        n = len(arms(self.batch_size, self.batch_sizes))
        bad = [a for a in self.arms if not 1 <= a <= n]
        if bad:
            raise ConfigError(f"--arms {bad[0]}: no such arm (1 to {n})")


def _main(argv: list[str]) -> int:
    args = parse(StudentSpeedSettings, argv)
    out = check_output_dir(args.output_dir, TOOL, replaces=REPORTS)
    mark_output_dir(out, TOOL)
    sizes = args.batch_sizes
    chosen = arms(args.batch_size, sizes)
    if args.arms:
        chosen = [chosen[i - 1] for i in args.arms]
    sitting = Sitting("python benchmarks/student_speed.py " + " ".join(argv), args.threads)
    results = []
    for i, arm in enumerate(chosen):
        results.append(run_arm(args, arm, out / f"arm{i + 1}"))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "step_times"}), file=sys.stderr, flush=True)
    sitting.write_report(out, "speed", {"results": results}, table(results), TOOL, REPORTS)
    return 0


main = cli.command(_main, doc=__doc__, config=StudentSpeedSettings, module=__name__)
