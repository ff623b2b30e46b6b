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
changes what is learned shows in the same table. Writes OUT/speed.json and OUT/speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe.files import write_text  # noqa: E402

from benchmarks.quality import machine  # noqa: E402

MINI = ROOT / "recipe" / "configs" / "mini_e5.yaml"
DATA = ROOT / "data" / "samples" / "real_teacher" / "examples.jsonl"
MARKER = ".e5-student-speed"


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
            "peak_memory_gb": max(r["peak_memory_gb"] for r in rows), "losses": [round(r["loss"], 4) for r in rows]}


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output-dir", type=Path, default=ROOT / "out" / "student_speed")
    ap.add_argument("--data", type=Path, default=DATA, help="training records (synthesis format or pairs)")
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of every arm")
    ap.add_argument("--batch-size", type=int, default=16, help="the global batch of the four first arms")
    ap.add_argument("--batch-sizes", default="32,64", help="larger batches for the last arm's setting")
    ap.add_argument("--mini-batch-size", type=int, default=8,
                    help="GradCache's chunks, and the not-cached arms' length-grouped chunks (group_by_length)")
    ap.add_argument("--max-steps", type=int, default=6)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arms", default="", help="comma-separated arm numbers to run (1-based; default: all)")
    args = ap.parse_args(argv)
    out = args.output_dir
    if not args.data.is_file():
        print(f"error: --data {args.data}: no such file", file=sys.stderr)
        return 2
    try:
        sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    except ValueError:
        print(f"error: --batch-sizes {args.batch_sizes!r}: give comma-separated whole numbers", file=sys.stderr)
        return 2
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        print(f"error: --output-dir {out}: not empty and not made by this benchmark; choose a new folder",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
    chosen = arms(args.batch_size, sizes)
    if args.arms:
        chosen = [chosen[int(i) - 1] for i in args.arms.split(",")]
    started, load, t0 = datetime.now(timezone.utc), [round(x, 2) for x in os.getloadavg()], time.monotonic()
    results = []
    for i, arm in enumerate(chosen):
        results.append(run_arm(args, arm, out / f"arm{i + 1}"))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "step_times"}), file=sys.stderr, flush=True)
    command = "python benchmarks/student_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report = {"command": command, "started": started.isoformat(timespec="seconds"),
              "wall_s": round(time.monotonic() - t0), "load_start": load,
              "load_end": [round(x, 2) for x in os.getloadavg()], "machine": machine(), "results": results}
    versions = ", ".join(f"{k} {v}" for k, v in report["machine"]["versions"].items())
    md = (table(results) + f"\n\n`{command}`; {report['wall_s'] / 60:.1f} min, {started:%Y-%m-%d %H:%M} UTC; "
          f"load average {load} -> {report['load_end']}; {report['machine']['cores']} x {report['machine']['cpu']}; "
          f"{versions}\n")
    write_text(out / "speed.json", json.dumps(report, indent=1))
    write_text(out / "speed.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
