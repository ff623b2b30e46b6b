"""The paper end to end at laptop scale: a local teacher writes the data, a real decoder learns from
it, MTEB's own task definitions score it. One resumable command.

    python benchmarks/miniature.py --output-dir out/miniature --num-examples 120
    python benchmarks/miniature.py --output-dir out/miniature --from-sample data/samples/real_teacher
    python benchmarks/miniature.py --output-dir out/miniature --teacher-url http://127.0.0.1:8765/v1   # a server already up

Stages, each recorded in OUT/stages/<stage>.json when it finishes (with a digest of its
settings), so that a rerun skips what is done and redoes only what changed or never finished:
1. `synthesis`: `data/synthesize.py` (the paper's prompts, recipe/configs/synth_local.yaml) asks for
   `--num-examples` over all six task groups, equally weighted so that each appears at this
   scale, against the local teacher (`data/local_teacher.py`, started here on 127.0.0.1, stopped
   with SIGTERM at the end of the stage; `--teacher-url` uses a server already running), or
   copies a synthesis folder (`--from-sample`). synthesize.py resumes itself, so an interrupted
   stage continues without paying twice.
2. `data`: hard negatives mined where a record has none (`data/mine_negatives.py`) and pairs that
   all-MiniLM-L6-v2 does not rank in its top `--filter-top-k` removed (`data/filter_pairs.py`);
   the control: as many Banking77 training utterances (the `train` split, not the scored test
   split) with their intent's name as positive, negatives mined the same way
   (benchmarks/quality.py's records).
3. `publish`: `data/publish.py --dry-run`: the Hub dataset and its card, written locally.
4. `train-synthetic`, `train-control`: `train.py` with recipe/configs/mini_e5.yaml on each.
5. `eval-base`, `eval-synthetic`, `eval-control`: `eval.py --protocol e5` on STSBenchmark,
   Banking77Classification, and the MSMARCO and DBPedia slices of tests/data/eval/.
Then one table (per-task scores, wall time per stage, versions, machine, load) is written to
OUT/miniature.md and OUT/miniature.json and printed.

`--output-dir` is new, empty, or one this command made (the one rule of every output folder:
docs/usage.md, "Output folders"); anything else stops it with exit 2, nothing touched. One
process at a time (a lock on it).
Exit codes: 0 done, 2 bad input, 3 stopped (the teacher's answers were unusable: synthesize.py's
stop; rerun to resume), 1 a bug.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import Sitting  # noqa: E402
from benchmarks.quality import (EVAL_DATA, banking_records, base_model, command,  # noqa: E402
                                read_scores, write_records)
from recipe import cli  # noqa: E402
from recipe.config import parse, setting  # noqa: E402
from recipe.files import check_output_dir, mark_output_dir  # noqa: E402

TOOL = "benchmarks/miniature.py"
REPORTS = ("miniature.json", "miniature.md")
MINI = ROOT / "recipe" / "configs" / "mini_e5.yaml"
SYNTH = ROOT / "recipe" / "configs" / "synth_local.yaml"
TASKS = ("STSBenchmark", "Banking77Classification", "MSMARCO", "DBPedia")
GROUPS = ("short-long", "long-short", "short-short", "long-long", "sts", "bitext")
SYNTH_FILES = ("examples.jsonl", "rejected.jsonl", "tasks.jsonl", "runs.jsonl", "batches.jsonl")
MODELS = ("base", "synthetic", "control")
DTYPES = ("auto", "bfloat16", "float32")  # auto: bfloat16 where native_bf16()


class Stop(Exception):
    """A stage that cannot go on: the message says why and what to do; `code` is the exit code."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- stages and their records


def recipe_settings() -> dict:
    """mini_e5.yaml's settings as a stage's record compares them: a changed comment retrains nothing."""
    import yaml

    return yaml.safe_load(MINI.read_text())


def digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage(work: Path, name: str, settings: dict, run, times: dict) -> dict:
    """Run `run()` unless WORK/stages/<name>.json records it done with these settings."""
    record = work / "stages" / f"{name}.json"
    sig = digest(settings)
    if record.is_file():
        done = json.loads(record.read_text())
        if done.get("signature") == sig:
            times[name] = {"wall_s": done["wall_s"], "skipped": True, **_steps_time(done)}
            say(f"{name}: done already ({done['wall_s']:.0f} s on {done['finished']}), skipped")
            return done
    say(f"{name}: running")
    started = time.time()
    load = [round(x, 2) for x in os.getloadavg()]
    out = run() or {}
    done = {"stage": name, "signature": sig, "settings": settings, "wall_s": round(time.time() - started, 1),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "load_before": load,
            "load_after": [round(x, 2) for x in os.getloadavg()], **out}
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(done, indent=1))
    os.replace(tmp, record)
    times[name] = {"wall_s": done["wall_s"], "skipped": False, **_steps_time(done)}
    say(f"{name}: {done['wall_s']:.0f} s")
    return done


def _steps_time(done: dict) -> dict:
    # a training stage resumed from a checkpoint finishes in a short last sitting: its steps' own
    # times, summed over every sitting, are what it cost
    return {"steps_s": round(done["s_per_step"] * done["steps"], 1)} if "s_per_step" in done else {}


def stage_table(times: dict[str, dict]) -> str:
    """The wall time of each stage `stage` ran or skipped this sitting, as a markdown table; a
    training stage also shows its steps' time summed over every sitting it took."""
    def row(n: str, t: dict) -> str:
        steps = f"{t['steps_s']:.0f}" if "steps_s" in t else "-"
        return f"| {n} | {t['wall_s']:.0f} | {steps} | {'done before, skipped' if t['skipped'] else 'ran'} |"
    return "\n".join(["| stage | wall s (the sitting that finished it) | training steps s (all sittings) | this sitting |",
                      "|---|---:|---:|---|", *(row(n, t) for n, t in times.items())])


def say(line: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def count(path: Path) -> int:
    with path.open(encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


# ---------------------------------------------------------------- 1. synthesis


class LocalTeacher:
    """data/local_teacher.py as a child process: ready when it prints `serving MODEL at URL`,
    stopped with SIGTERM (then killed if it does not stop)."""

    def __init__(self, model: str, port: int, threads: int, log: Path, timeout_s: float = 900, parallel: int = 1):
        self.cmd = [sys.executable, str(ROOT / "data" / "local_teacher.py"), "--model", model, "--port", str(port),
                    "--threads", str(threads), "--parallel", str(parallel)]
        self.log, self.timeout_s, self.proc, self.url = log, timeout_s, None, None

    def __enter__(self) -> str:
        if not (ROOT / "data" / "local_teacher.py").is_file():
            raise Stop("data/local_teacher.py is not in this checkout: pass --teacher-url of a running "
                       "OpenAI-compatible server, or --from-sample DIR")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log.open("a"),
                                     text=True)
        deadline = time.time() + self.timeout_s
        for line in self.proc.stdout:  # the server prints its readiness line once
            if line.startswith("serving ") and " at " in line:
                self.url = line.rsplit(" at ", 1)[1].strip()
                return self.url
            if time.time() > deadline:
                break
        self.__exit__()
        raise Stop(f"the local teacher did not become ready ({' '.join(self.cmd)}); see {self.log}", 1)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def synthesize(args, work: Path) -> dict:
    out = work / "synthesis"
    log = work / "logs" / "synthesis.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if args.from_sample:
        sample = Path(args.from_sample)
        if not (sample / "examples.jsonl").is_file():
            raise Stop(f"--from-sample {sample}: no examples.jsonl (want a data/synthesize.py output folder)")
        tmp = work / ".synthesis.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name in SYNTH_FILES:
            if (sample / name).is_file():
                shutil.copy2(sample / name, tmp / name)
        shutil.rmtree(out, ignore_errors=True)  # ours: an earlier, unfinished or different copy
        os.replace(tmp, out)
    else:
        mix = "{" + ", ".join(f"{g}: 1" for g in GROUPS) + "}"
        argv = ["--config", str(SYNTH), "--output-dir", str(out), "--num-examples", str(args.num_examples),
                "--model", args.teacher_model, "--group-mix", mix, "--concurrency", str(args.concurrency),
                "--max-tokens", str(args.max_tokens), "--structured-outputs", str(args.structured_outputs).lower()]
        os.environ.setdefault("OPENAI_API_KEY", "local")
        if args.teacher_url:
            os.environ["OPENAI_BASE_URL"] = args.teacher_url
            run_synthesize(argv, log)
        else:
            with LocalTeacher(args.teacher_model, args.teacher_port, args.teacher_threads, log,
                              parallel=args.concurrency) as url:
                os.environ["OPENAI_BASE_URL"] = url
                run_synthesize(argv, log)
    examples = count(out / "examples.jsonl")
    groups: dict[str, int] = {}
    with (out / "examples.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                g = json.loads(line).get("task_group", "?")
                groups[g] = groups.get(g, 0) + 1
    rejected = count(out / "rejected.jsonl") if (out / "rejected.jsonl").is_file() else 0
    if examples == 0:
        raise Stop(f"{out}: no examples were accepted; see {log}")
    return {"examples": examples, "rejected": rejected, "per_group": groups}


def run_synthesize(argv: list[str], log: Path) -> None:
    try:
        command("synthesize", argv, log)
    except SystemExit as e:
        code = 3 if "exited 3" in str(e) else 1
        raise Stop(f"synthesis stopped ({e}); rerun the same command to resume", code) from None


# ---------------------------------------------------------------- 2. data


def mine(raw: Path, out: Path, log: Path, seed: int) -> None:
    command("mine_negatives", ["--input", str(raw), "--output", str(out), "--model", base_model(),
                               "--query-prompt", "", "--corpus-prompt", "", "--range-max", "10",
                               "--seed", str(seed), "--max-length", "256", "--progress", "false",
                               "--cache-dir", "null", "--overwrite"], log)


def prepare(args, work: Path) -> dict:
    folder = work / "data"
    folder.mkdir(parents=True, exist_ok=True)
    log = work / "logs" / "data.log"
    log.write_text("")
    mined = folder / "synthetic-mined.jsonl"
    mine(work / "synthesis", mined, log, args.seed)
    kept = folder / "synthetic.jsonl"
    command("filter_pairs", ["--input", str(mined), "--output", str(kept), "--removed",
                             str(folder / "synthetic-removed.jsonl"), "--model", base_model(), "--top-k",
                             str(args.filter_top_k), "--query-prompt", "", "--corpus-prompt", "",
                             "--max-length", "256", "--progress", "false", "--overwrite"], log)
    n = count(kept)
    if n < 2:
        raise Stop(f"{kept}: {n} record(s) left after filtering; too few to train (ask for more --num-examples)")
    raw = folder / "control-raw.jsonl"
    write_records(banking_records(n, args.seed), raw)
    mine(raw, folder / "control.jsonl", log, args.seed)
    return {"synthetic_mined": count(mined), "synthetic_kept": n, "control": count(folder / "control.jsonl")}


# ---------------------------------------------------------------- 3. publish, 4. train, 5. eval


def publish(work: Path) -> dict:
    out = work / "publish"
    command("publish", ["--input", str(work / "synthesis"), "--repo-id", "e5-recipe/miniature", "--dry-run",
                        "--output-dir", str(out)], work / "logs" / "publish.log")
    return {"card": str(out / "README.md")}


def train(args, work: Path, name: str) -> dict:
    out = work / "runs" / name
    command("train", ["--config", str(MINI), "--model", args.student, "--data", str(work / "data" / f"{name}.jsonl"),
                      "--output-dir", str(out), "--overwrite", "--seed", str(args.seed),
                      "--num-train-epochs", str(args.num_train_epochs),
                      *(["--learning-rate", str(args.learning_rate)] if args.learning_rate else []),
                      "--cpu-threads", str(args.threads), "--max-length", str(args.max_length),
                      *(["--global-batch-size", str(args.batch_size), "--mini-batch-size", str(min(args.batch_size, 8))]
                        if args.batch_size else [])], work / "logs" / f"train-{name}.log")
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    return {"steps": len(rows), "first_loss": rows[0]["loss"], "last_loss": rows[-1]["loss"],
            "s_per_step": round(sum(r["step_time_s"] for r in rows) / len(rows), 1),
            "peak_memory_gb": max(r["peak_memory_gb"] for r in rows)}


def base_folder(args, work: Path) -> Path:
    """The untrained student as a SentenceTransformer folder, pooled and fed as training pools
    and feeds it: plain text, last token (eval.py appends the EOS)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from recipe.local_models import MODELS as LOCAL
    from recipe.train.local_student import student_folder
    from recipe.plain_text import transformer_kwargs

    out = work / "models" / "base"
    if (out / "modules.json").is_file():
        return out
    path = str(student_folder(args.student)) if args.student in LOCAL else args.student
    transformer = Transformer(path, max_seq_length=args.max_length, **transformer_kwargs())
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(),
                                                              pooling_mode="lasttoken"), Normalize()], device="cpu")
    tmp = out.with_name(".base.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    os.replace(tmp, out)
    return out


def evaluate(args, work: Path, name: str) -> dict:
    model = base_folder(args, work) if name == "base" else work / "runs" / name / "final"
    out = work / "evals" / name
    command("eval", ["--model", str(model), "--tasks", ",".join(args.tasks), "--data-dir", str(args.eval_data),
                     "--output-dir", str(out), "--overwrite", "--protocol", "e5", "--max-length",
                     str(args.max_length), "--batch-size", "32", "--device", "cpu", "--dtype", args.eval_dtype,
                     "--embedding-cache", "false",
                     "--chart", "false"], work / "logs" / f"eval-{name}.log")
    return {"scores": read_scores(out, tuple(args.tasks))}


# ---------------------------------------------------------------- the table


def table(scores: dict[str, dict[str, float]], tasks: list[str]) -> str:
    names = {"base": "base student (untrained)", "synthetic": "trained on the teacher's synthetic data",
             "control": "trained on as many Banking77 train pairs"}
    lines = ["| model | " + " | ".join(tasks) + " | mean |", "|---|" + "---:|" * (len(tasks) + 1)]
    for m in MODELS:
        s = scores[m]
        lines.append(f"| {names[m]} | " + " | ".join(f"{s[t]:.2f}" for t in tasks)
                     + f" | {sum(s[t] for t in tasks) / len(tasks):.2f} |")
    return "\n".join(lines)


def check_models(args) -> None:
    """The student and the teacher, before any stage: a misspelt name, an uninstalled package or a
    dead server is one line now, not after an hour of synthesis."""
    from recipe.sources import check_model
    from recipe.synth.local_teacher import check_server, resolve

    check_model(args.student, "--student")
    if args.from_sample:
        return
    if args.teacher_url:
        check_server(args.teacher_url, args.teacher_model, model_flag="--teacher-model")
    else:
        resolve(args.teacher_model, "--teacher-model")


@dataclass
class MiniatureSettings:
    output_dir: str = setting(str(ROOT / "out" / "miniature"), "the work folder (new, empty, or this command's)")
    from_sample: str = setting("", "a data/synthesize.py output folder to start from (no teacher)")
    num_examples: int = setting(120, "examples to synthesize, over the six groups")
    teacher_model: str = setting("qwen2.5-coder-0.5b-instruct",
                                 "served here by llama.cpp: a model of recipe/local_models.py, a .gguf file, or a "
                                 "Hub repo of GGUF files (owner/repo, or owner/repo/file.gguf when it holds several); "
                                 "with --teacher-url, the model that server serves")
    teacher_url: str = setting("", "an OpenAI-compatible server already running (not started here)")
    teacher_port: int = setting(8081, "the local teacher's port")
    teacher_threads: int = setting(1, "the local teacher's CPU threads")
    concurrency: int = setting(4, "teacher requests in flight, and the local teacher's server slots "
                                  "(docs/miniature.md, 'The teacher's server slots')")
    max_tokens: int = setting(600, "per teacher answer (synth_local.yaml's)")
    structured_outputs: bool = setting(
        True, "send each answer's JSON schema as response_format, as the shipped sample was made (the paper's "
              "teacher had none; without it the 0.5B teacher answers half its brainstorms in prose: "
              "docs/miniature.md, 'Teacher acceptance')")
    student: str = setting("smollm2-135m-instruct", "a model of recipe/local_models.py (mini_e5.yaml's), a local "
                                                    "model folder or a Hub model id")
    num_train_epochs: int = setting(1, "training epochs")
    learning_rate: float = setting(0.0, "training's peak learning rate (0: mini_e5.yaml's)")
    filter_top_k: int = setting(10, "data/filter_pairs.py's --top-k")
    max_length: int = setting(128, "tokens per text, training and evaluation (mini_e5.yaml's)")
    batch_size: int = setting(0, "training's global batch (0: mini_e5.yaml's)")
    tasks: list[str] = setting(list(TASKS), "the tasks scored")
    eval_dtype: str = setting("auto", "evaluation's weights dtype (auto, bfloat16, float32); auto: bfloat16 where "
                                      "the CPU computes it natively (avx512_bf16 or amx_bf16: twice as fast, "
                                      "docs/miniature.md), else float32", choices=DTYPES)
    eval_data: str = setting(str(EVAL_DATA), "local task data (eval.py's --data-dir)")
    threads: int = setting(1, "torch threads for training and evaluation")
    seed: int = setting(0, "the seed of mining, the control sample and training")

    def check(self) -> None:
        if self.eval_dtype == "auto":
            self.eval_dtype = "bfloat16" if native_bf16() else "float32"


def _main(argv: list[str]) -> int:
    args = parse(MiniatureSettings, argv)
    check_models(args)
    work = check_output_dir(args.output_dir, TOOL, replaces=REPORTS)
    mark_output_dir(work, TOOL)
    import torch

    from recipe.lock import FolderLock

    torch.set_num_threads(args.threads)
    sitting = Sitting("python benchmarks/miniature.py " + " ".join(argv), args.threads, resumable=True)
    times: dict[str, dict] = {}
    try:
        with FolderLock(work, what="miniature work folder"):
            source = ({"from_sample": str(Path(args.from_sample).resolve()),
                       "sample_digest": _file_digest(Path(args.from_sample) / "examples.jsonl")}
                      if args.from_sample else {"num_examples": args.num_examples, "teacher": args.teacher_model,
                                                "max_tokens": args.max_tokens,
                                                "structured_outputs": args.structured_outputs})
            synth = stage(work, "synthesis", source, lambda: synthesize(args, work), times)
            data_settings = {"synthesis": synth["signature"], "filter_top_k": args.filter_top_k, "seed": args.seed}
            data = stage(work, "data", data_settings, lambda: prepare(args, work), times)
            stage(work, "publish", {"synthesis": synth["signature"]}, lambda: publish(work), times)
            train_settings = {"data": data["signature"], "student": args.student, "epochs": args.num_train_epochs,
                              **({"lr": args.learning_rate} if args.learning_rate else {}), "max_length": args.max_length, "batch_size": args.batch_size,
                              "seed": args.seed, "recipe": recipe_settings()}
            trained = {name: stage(work, f"train-{name}", train_settings, lambda n=name: train(args, work, n), times)
                       for name in ("synthetic", "control")}
            eval_settings = {"tasks": args.tasks, "max_length": args.max_length, "data": str(args.eval_data),
                             "dtype": args.eval_dtype}
            scores = {}
            for name in MODELS:
                model_sig = {"student": args.student} if name == "base" else {"trained": trained[name]["signature"]}
                scores[name] = stage(work, f"eval-{name}", {**eval_settings, **model_sig},
                                     lambda n=name: evaluate(args, work, n), times)["scores"]
    except Stop as e:
        print(f"error: {e}" if e.code != 3 else f"stopped: {e}", file=sys.stderr)
        return e.code
    except SystemExit as e:  # a command of the project exited non-zero (quality.command says which log)
        print(f"error: {e}", file=sys.stderr)
        return 1
    fields = {"student": args.student, "synthesis": {k: synth.get(k) for k in ("examples", "rejected", "per_group")},
              "data": {k: data.get(k) for k in ("synthetic_mined", "synthetic_kept", "control")},
              "training": {n: {k: trained[n].get(k) for k in ("steps", "first_loss", "last_loss", "s_per_step",
                                                               "peak_memory_gb")} for n in trained},
              "stages": times, "scores": scores}
    sitting.write_report(work, "miniature", fields,
                         f"{table(scores, args.tasks)}\n\n{stage_table(times)}\n\nSynthesis: {json.dumps(fields['synthesis'])}; "
                         f"data: {json.dumps(fields['data'])}; training: {json.dumps(fields['training'])}.", TOOL, REPORTS)
    return 0


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (emulated elsewhere, and then slower than float32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _file_digest(path: Path) -> str:
    if not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


main = cli.command(_main, doc=__doc__, config=MiniatureSettings, module=__name__)
