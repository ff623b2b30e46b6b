"""What N of the teacher's synthetic pairs buy the miniature student, against N real pairs and
against the best the untrained student does with a one-line prompt. One resumable command.

    python benchmarks/curve.py --synthesis data/samples/real_teacher_2k --output-dir out/curve \\
        --sizes 250,500,1000,2000 --seeds 0,1,2 --threads 2

Arms, each trained by train.py (recipe/configs/mini_e5.yaml: SmolLM2-135M-Instruct, LoRA, EOS
pooling, InfoNCE) and scored by eval.py (`--protocol e5`, the paper's instructions):
- `synthetic`: N records of the synthesis folder, after the miniature's data stage (negatives
  mined where missing, pairs all-MiniLM-L6-v2 does not rank in its top 10 removed; `--filter-top-k
  0` keeps every pair, as the paper does);
- `control`: N real Banking77 `train`-split pairs (utterance -> intent name), negatives mined
  the same way. Human-written and never in a scored split (Banking77 is scored on `test`): in
  its own domain for Banking77Classification, out of it for STSBenchmark and the retrieval slices;
- `mix` (the paper's way, synthetic beside real data), at the largest N: N synthetic + N real.
Every N of an arm is the first N of one seeded shuffle of its pool, so a larger N holds the
smaller ones. Every arm runs at every seed of `--seeds` at the largest N, at the first seed elsewhere.
Floors, untrained: `base` (the recipe's template and EOS, as the trained students are scored)
and `prompteol` (Jiang et al. 2023: `This sentence : "{text}" means in one word:"`, last token,
no instruction, `--protocol plain`): the best untrained prompt measured for this student, the
floor a trained student has to beat.
Also per trained model: `dev`, the share of 100 held-out synthetic queries whose own positive is
the nearest of the held-out positives (`--dev-size`, 100), never trained on by any arm.
The sweep: with several `--learning-rate` values, the synthetic arm trains at the largest N the
synthetic pool holds and the first seed once per rate; the rate with the best `dev` (the smaller on
a tie) trains and is scored everywhere else. The sweep's other runs are never scored on a test set,
so the choice never sees one.

Each stage is recorded in OUTPUT_DIR/stages/ with a digest of its settings; a rerun skips what is done.
Writes OUTPUT_DIR/curve.md, curve.json and curve.png (score against N, one line per arm, the
floors drawn). Exit codes: 0 done, 2 bad input (nothing written), 1 a command failed (its log named).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.miniature import (DTYPES, GROUPS, MINI, Stop, base_folder, count, digest,  # noqa: E402
                                  native_bf16, recipe_settings, say, stage, stage_table)
from benchmarks.provenance import Sitting  # noqa: E402
from benchmarks.quality import (EVAL_DATA, banking_records, base_model, command, read_scores,  # noqa: E402
                                write_records)
from recipe import cli  # noqa: E402
from recipe.config import ConfigError, parse, setting  # noqa: E402
from recipe.errors import InputError  # noqa: E402
from recipe.files import check_output_dir, mark_output_dir, write_text  # noqa: E402
from recipe.sources import check_model  # noqa: E402

TOOL = "benchmarks/curve.py"
REPORTS = ("curve.json", "curve.md", "curve.png")
TASKS = ("STSBenchmark", "Banking77Classification", "MSMARCO", "DBPedia")
PROMPTEOL = 'This sentence : "{text}" means in one word:"'
ARMS = ("synthetic", "control", "mix")
NAMES = {"base": "untrained, the recipe's template", "prompteol": "untrained, PromptEOL prompt",
         "synthetic": "synthetic", "control": "control (Banking77 train)", "mix": "mix (synthetic + control)"}


# ---------------------------------------------------------------- data


def prepare(args, work: Path) -> dict:
    """The synthetic pool (mined, filtered, less the dev pairs), the control pool, both shuffled."""
    folder = work / "data"
    folder.mkdir(parents=True, exist_ok=True)
    log = work / "logs" / "data.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    mined, kept = folder / "synthetic-mined.jsonl", folder / "synthetic-kept.jsonl"
    examples = folder / "synthesis-examples.jsonl"
    write_text(examples, args.examples)
    mine(examples, mined, log, args.data_seed)
    if args.filter_top_k:
        command("filter_pairs", ["--input", str(mined), "--output", str(kept), "--removed",
                                 str(folder / "synthetic-removed.jsonl"), "--model", base_model(), "--top-k",
                                 str(args.filter_top_k), "--query-prompt", "", "--corpus-prompt", "",
                                 "--max-length", "256", "--progress", "false", "--overwrite"], log)
    else:  # the paper's way: no consistency filter, every valid example trains
        write_text(kept, mined.read_text(encoding="utf-8"))
    records = read(kept)
    random.Random(args.data_seed).shuffle(records)
    dev, pool = records[:args.dev_size], records[args.dev_size:]
    write_records(dev, folder / "dev.jsonl")
    write_records(pool, folder / "synthetic-pool.jsonl")
    raw = folder / "control-raw.jsonl"
    write_records(banking_records(max(args.sizes), args.data_seed), raw)
    mine(raw, folder / "control-pool.jsonl", log, args.data_seed)
    return {"synthetic_mined": count(mined), "synthetic_kept": len(records), "dev": len(dev),
            "synthetic_pool": len(pool), "control_pool": count(folder / "control-pool.jsonl"),
            "per_group": {g: sum(r.get("task_group") == g for r in pool) for g in GROUPS}}


def mine(raw: Path, out: Path, log: Path, seed: int) -> None:
    command("mine_negatives", ["--input", str(raw), "--output", str(out), "--model", base_model(),
                               "--query-prompt", "", "--corpus-prompt", "", "--range-max", "10",
                               "--seed", str(seed), "--max-length", "256", "--progress", "false",
                               "--cache-dir", "null", "--overwrite"], log)


def read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def training_records(work: Path, arm: str, n: int) -> Path:
    folder = work / "data"
    pools = {"synthetic": ["synthetic"], "control": ["control"], "mix": ["synthetic", "control"]}[arm]
    records = [r for p in pools for r in read(folder / f"{p}-pool.jsonl")[:n]]
    out = folder / f"{arm}-{n}.jsonl"
    write_records(records, out)
    return out


# ---------------------------------------------------------------- train, score


def run_name(arm: str, n: int, seed: int, lr: float) -> str:
    return f"{arm}-{n}-s{seed}-lr{lr:g}"


def train(args, work: Path, arm: str, n: int, seed: int, lr: float, signature: str) -> dict:
    """Train one run; a run this stage (same `signature`) started and a sitting cut resumes from
    its newest checkpoint, any other run in the folder is replaced."""
    name = run_name(arm, n, seed, lr)
    out = work / "runs" / name
    marker = work / "runs" / f"{name}.stage"  # beside the run: train.py's folder holds only the run
    again = marker.is_file() and marker.read_text().strip() == signature and out.is_dir()
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text(marker, signature + "\n")
    command("train", ["--config", str(MINI), "--model", args.student, "--data", str(training_records(work, arm, n)),
                      "--output-dir", str(out), "--resume" if again else "--overwrite", "--seed", str(seed),
                      "--num-train-epochs", str(args.num_train_epochs), "--learning-rate", str(lr),
                      "--global-batch-size", str(args.batch_size), "--mini-batch-size", str(args.mini_batch_size),
                      "--cached", str(args.cached).lower(), "--dtype", args.train_dtype,
                      "--mixed-precision", "bf16" if args.train_dtype == "bfloat16" else "no",
                      "--cpu-threads", str(args.threads), "--max-length", str(args.max_length),
                      "--save-steps", str(args.save_steps), "--warmup-steps", str(args.warmup_steps)],
            work / "logs" / f"train-{name}.log")
    rows = read(out / "train_log.jsonl")
    return {"steps": len(rows), "first_loss": rows[0]["loss"], "last_loss": rows[-1]["loss"],
            "s_per_step": round(sum(r["step_time_s"] for r in rows) / len(rows), 2),
            "dev": dev_score(out / "final", work / "data" / "dev.jsonl", args)}


def dev_score(model_dir: Path, dev: Path, args) -> float:
    """Share of held-out queries (with their instruction, as trained) whose own positive is the
    nearest of all held-out positives: in-domain, cheap, and never a scored test set."""
    import torch

    from recipe.eval.model import load_model
    from recipe.schema import QUERY_PREFIX

    records = read(dev)
    model = load_model(str(model_dir), max_length=args.max_length, dtype=args.eval_dtype, device="cpu")
    queries = [QUERY_PREFIX.format(instruction=r.get("instruction") or "") + r["query"] for r in records]
    q = model.encode(queries, convert_to_tensor=True, normalize_embeddings=True)
    d = model.encode([r["positive"] for r in records], convert_to_tensor=True, normalize_embeddings=True)
    return round(100 * float((q @ d.T).argmax(1).eq(torch.arange(len(records))).float().mean()), 2)


def evaluate(args, work: Path, name: str) -> dict:
    floor = name in ("base", "prompteol")
    model = base_folder(args, work) if floor else work / "runs" / name / "final"
    extra = ["--protocol", "plain", "--text-template", PROMPTEOL] if name == "prompteol" else ["--protocol", "e5"]
    out = work / "evals" / name
    command("eval", ["--model", str(model), "--tasks", ",".join(args.tasks), "--data-dir", str(args.eval_data),
                     "--output-dir", str(out), "--overwrite", *extra, "--max-length", str(args.max_length),
                     "--batch-size", "32", "--device", "cpu", "--dtype", args.eval_dtype, "--embedding-cache", "false",
                     "--chart", "false"], work / "logs" / f"eval-{name}.log")
    return {"scores": read_scores(out, tuple(args.tasks))}


# ---------------------------------------------------------------- the table and the plot


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(results: dict, tasks: list[str]) -> str:
    """One row per (arm, N): each task's mean ± standard deviation over seeds, the mean of the tasks, dev."""
    lines = ["| model | N | seeds | " + " | ".join(tasks) + " | mean | dev |",
             "|---|---:|---:|" + "---:|" * (len(tasks) + 2)]
    for key, runs in results.items():
        arm, n = key
        cells = [summary([r["scores"][t] for r in runs]) for t in tasks]
        means = [sum(r["scores"][t] for t in tasks) / len(tasks) for r in runs]
        devs = [r["dev"] for r in runs if r.get("dev") is not None]
        lines.append(f"| {NAMES[arm]} | {n or '-'} | {len(runs)} | " + " | ".join(cells)
                     + f" | {summary(means)} | {summary(devs) if devs else '-'} |")
    return "\n".join(lines)


def plot(results: dict, tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [*tasks, "mean"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    for ax, task in zip(axes[0], panels):
        def score(r):
            return sum(r["scores"][t] for t in tasks) / len(tasks) if task == "mean" else r["scores"][task]

        for (arm, n), runs in results.items():
            if arm in ("base", "prompteol"):
                ax.axhline(statistics.mean(score(r) for r in runs), ls="--" if arm == "prompteol" else ":",
                           color="grey" if arm == "base" else "black", label=NAMES[arm])
        for arm in ARMS:
            points = sorted((n, [score(r) for r in runs]) for (a, n), runs in results.items() if a == arm)
            if not points:
                continue
            xs = [n for n, _ in points]
            ys = [statistics.mean(v) for _, v in points]
            err = [statistics.stdev(v) if len(v) > 1 else 0 for _, v in points]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=NAMES[arm])
        ax.set_title(task if task != "mean" else f"mean of {len(tasks)} tasks")
        ax.set_xlabel("training pairs N")
        ax.set_xscale("log")
    axes[0][0].set_ylabel("score (MTEB main metric, x100)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main


def sweep_table(sweep: dict, chosen: float) -> str:
    lines = ["| learning rate | steps | first loss | last loss | dev |", "|---:|---:|---:|---:|---:|"]
    for lr, t in sorted(sweep.items()):
        mark = " (chosen)" if lr == chosen else ""
        lines.append(f"| {lr:g}{mark} | {t['steps']} | {t['first_loss']:.3f} | {t['last_loss']:.3f} | {t['dev']:.2f} |")
    return "\n".join(lines)


@dataclass
class CurveSettings:
    output_dir: str = setting(str(ROOT / "out" / "curve"), "the work folder (new, empty, or this command's)")
    synthesis: str = setting(str(ROOT / "data" / "samples" / "real_teacher_2k"), "a data/synthesize.py output folder")
    num_examples: int = setting(0, "the synthesis's first N examples, as written (0: all); fixes the data of a "
                                   "synthesis that is still growing")
    sizes: list[int] = setting([250, 500, 1000, 2000], "training pairs per arm (the mix: N + N)")
    seeds: list[int] = setting([0, 1, 2], "training seeds at the largest N (the first elsewhere)")
    arms: list[str] = setting(list(ARMS), "the trained arms: synthetic, control, mix", choices=ARMS)
    student: str = setting("smollm2-135m-instruct", "a model of recipe/local_models.py, a local model folder or "
                                                    "a Hub model id")
    learning_rate: list[float] = setting([1e-3], "one rate, or several to sweep by the dev score (3e-4,1e-3,3e-3)")
    num_train_epochs: int = setting(1, "training epochs")
    batch_size: int = setting(32, "training's global batch")
    mini_batch_size: int = setting(8, "length-grouped forward chunks")
    cached: bool = setting(True, "GradCache (true) or one backward through every chunk's activations (false: "
                                 "faster, but batch 32 of the synthetic data's lengths needs more than 24 GB; "
                                 "docs/miniature.md)")
    warmup_steps: int = setting(5, "linear warmup steps")
    save_steps: int = setting(10, "a training run's checkpoint every N steps: a run cut midway (a sitting "
                                  "stopped) resumes from its newest checkpoint on the next run (0: from step 0)")
    train_dtype: str = setting("auto", "auto, bfloat16 or float32; auto: bfloat16 weights and mixed precision "
                                       "where the CPU computes it natively", choices=DTYPES)
    eval_dtype: str = setting("auto", "auto, bfloat16 or float32", choices=DTYPES)
    max_length: int = setting(128, "tokens per text, training and evaluation")
    filter_top_k: int = setting(10, "data/filter_pairs.py's --top-k: a pair trains when all-MiniLM-L6-v2 ranks its "
                                    "positive among its query's top K (0: no filter, as the paper)")
    dev_size: int = setting(100, "synthetic pairs held out of every arm for `dev`")
    data_seed: int = setting(0, "the shuffle of the pools and the dev split")
    tasks: list[str] = setting(list(TASKS), "the tasks scored")
    eval_data: str = setting(str(EVAL_DATA), "local task data (eval.py's --data-dir)")
    threads: int = setting(2, "torch threads for training and evaluation")

    def check(self) -> None:
        for name in ("sizes", "seeds"):
            values = getattr(self, name)
            if not values or min(values) < 0:
                raise ConfigError(f"--{name} {','.join(map(str, values))}: give at least one number, none negative")
        self.sizes = sorted(set(self.sizes))
        if not self.learning_rate or min(self.learning_rate) <= 0:
            raise ConfigError(f"--learning-rate {','.join(map(str, self.learning_rate))}: give at least one rate, "
                              "every one above 0")
        self.learning_rate = sorted(set(self.learning_rate))
        if self.filter_top_k < 0:
            raise ConfigError(f"--filter-top-k {self.filter_top_k}: the rank a positive must reach, or 0 (no filter)")
        if self.save_steps < 0:
            raise ConfigError(f"--save-steps {self.save_steps}: every N steps, or 0 (never)")
        for name in ("train_dtype", "eval_dtype"):
            if getattr(self, name) == "auto":
                setattr(self, name, "bfloat16" if native_bf16() else "float32")


def _main(argv: list[str]) -> int:
    args = parse(CurveSettings, argv)
    check_model(args.student, "--student")
    synthesis = Path(args.synthesis)
    if not (synthesis / "examples.jsonl").is_file():
        raise InputError(f"--synthesis {synthesis}: no examples.jsonl (want a data/synthesize.py output folder)")
    args.examples = first_examples(synthesis / "examples.jsonl", args.num_examples)
    work = check_output_dir(args.output_dir, TOOL, replaces=REPORTS)
    given = args.examples.count("\n")
    most = given - args.dev_size  # the synthetic pool before the filter takes its share
    synthetic_arms = set(args.arms) - {"control"}  # the arms that take the largest N of synthetic pairs
    if synthetic_arms and max(args.sizes) > most:
        raise InputError(f"--sizes {max(args.sizes)}: {given} examples leave at most {most} "
                         f"synthetic pairs beside the {args.dev_size} dev pairs"
                         f"{', and the filter keeps fewer' if args.filter_top_k else ''}; give "
                         "more --num-examples or a smaller size")
    mark_output_dir(work, TOOL)
    import torch

    from recipe.lock import FolderLock

    torch.set_num_threads(args.threads)
    command_line = "python benchmarks/curve.py " + " ".join(argv)
    sitting = Sitting(command_line, args.threads, resumable=True)
    times: dict[str, dict] = {}
    results: dict[tuple[str, int], list[dict]] = {}
    try:
        with FolderLock(work, what="curve work folder"):
            source = {"examples": _digest(args.examples), "filter_top_k": args.filter_top_k,
                      "data_seed": args.data_seed, "control": max(args.sizes), "dev": args.dev_size}
            data = stage(work, "data", source, lambda: prepare(args, work), times)
            if synthetic_arms and max(args.sizes) > data["synthetic_pool"]:
                # the sweep and the seeds belong to the largest N asked for: never to a smaller one
                raise Stop(f"--sizes {max(args.sizes)}: the data stage kept {data['synthetic_kept']} of "
                           f"{data['synthetic_mined']} examples, a synthetic pool of {data['synthetic_pool']} "
                           "beside the dev pairs; give more --num-examples or a smaller size (the data stage "
                           "reruns, nothing else starts)", 2)
            eval_settings = {"tasks": args.tasks, "max_length": args.max_length, "data": str(args.eval_data),
                             "dtype": args.eval_dtype, "student": args.student}
            for floor in ("base", "prompteol"):
                done = stage(work, f"eval-{floor}", eval_settings, lambda f=floor: evaluate(args, work, f), times)
                results[(floor, 0)] = [{"scores": done["scores"]}]
            train_settings = {"data": data["signature"], "student": args.student,
                              "epochs": args.num_train_epochs, "batch": args.batch_size,
                              "mini_batch": args.mini_batch_size, "cached": str(args.cached).lower(), "warmup": args.warmup_steps,
                              "dtype": args.train_dtype, "max_length": args.max_length, "recipe": recipe_settings()}
            largest = max(args.sizes)

            runs: dict[str, dict] = {}  # this sitting's: the sweep's chosen run is the curve's too

            def trained_run(arm, n, seed, lr):
                name = run_name(arm, n, seed, lr)
                if name not in runs:
                    settings = {**train_settings, "lr": lr, "arm": arm, "n": n, "seed": seed}
                    runs[name] = stage(work, f"train-{name}", settings,
                                       lambda: train(args, work, arm, n, seed, lr, digest(settings)), times)
                return runs[name]

            lr, sweep = args.learning_rate[0], {}
            fits = [n for n in args.sizes if n <= data["synthetic_pool"]]
            if len(args.learning_rate) > 1 and fits:
                sweep = {r: trained_run("synthetic", max(fits), args.seeds[0], r) for r in args.learning_rate}
                lr = max(args.learning_rate, key=lambda r: (sweep[r]["dev"], -r))
                say(f"sweep at N={max(fits)}: dev " + ", ".join(f"{r:g} {t['dev']:.2f}" for r, t in sweep.items())
                    + f"; {lr:g} chosen")
            for arm in args.arms:
                pool = data["synthetic_pool"] if arm != "control" else data["control_pool"]
                for n in args.sizes if arm != "mix" else [largest]:
                    if n > pool or (arm == "mix" and n > data["control_pool"]):
                        say(f"{arm} N={n}: the pool holds {pool} records; skipped")
                        continue
                    for seed in args.seeds if n == largest else args.seeds[:1]:
                        name = run_name(arm, n, seed, lr)
                        trained = trained_run(arm, n, seed, lr)
                        done = stage(work, f"eval-{name}", {**eval_settings, "trained": trained["signature"]},
                                     lambda m=name: evaluate(args, work, m), times)
                        results.setdefault((arm, n), []).append({"scores": done["scores"], "dev": trained["dev"],
                                                                 "seed": seed, "steps": trained["steps"],
                                                                 "s_per_step": trained["s_per_step"]})
    except Stop as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except SystemExit as e:  # a command of the project exited non-zero (quality.command names its log)
        print(f"error: {e}", file=sys.stderr)
        return 1
    text = table(results, args.tasks)
    if sweep:
        text += f"\n\nThe sweep (synthetic, N={max(fits)}, seed {args.seeds[0]}; `dev` chooses):\n\n" + sweep_table(sweep, lr)
    plot(results, args.tasks, work / "curve.png")
    kept = {k: data.get(k) for k in ("synthetic_mined", "synthetic_kept", "dev", "synthetic_pool", "control_pool", "per_group")}
    fields = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "examples"},
              "data": kept, "stages": times, "learning_rate": lr,
              "sweep": {f"{r:g}": {k: t[k] for k in ("steps", "first_loss", "last_loss", "dev")} for r, t in sweep.items()},
              "results": {f"{a}/{n}": runs for (a, n), runs in results.items()}}
    sitting.write_report(work, "curve", fields, f"{text}\n\nScores: MTEB's main metric x100, evaluated in "
                         f"{args.eval_dtype}; `mean ± sd` over seeds. Data: {json.dumps(kept)}.\n\n{stage_table(times)}",
                         TOOL, REPORTS)
    return 0


def first_examples(path: Path, n: int) -> str:
    """The first `n` examples of a synthesis (0: all), as the teacher wrote them: a synthesis still
    growing keeps the curve's data fixed, and the same N of it later is the same data."""
    lines = [x for x in path.read_text(encoding="utf-8").splitlines(True) if x.strip()]
    if n and len(lines) < n:
        raise InputError(f"--num-examples {n}: {path} holds {len(lines)} examples")
    return "".join(lines[:n] if n else lines)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


main = cli.command(_main, doc=__doc__, config=CurveSettings, module=__name__)
