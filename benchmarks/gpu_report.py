"""The GPU suite's report: its goals (GOALS; docs/benchmarks.md, "Goals and figures to fill")
read off the figures, and gpu_suite.md, rendered from the state benchmarks/gpu_suite.py writes to
gpu_suite.json (so a killed run's JSON renders the same way:
`python benchmarks/gpu_report.py --input DIR/gpu_suite.json`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recipe import cli  # noqa: E402
from recipe.config import ConfigError, parse, setting  # noqa: E402
from recipe.errors import InputError  # noqa: E402
from recipe.files import read_text  # noqa: E402

GROUPED, BASELINE = "ours, grouped", "sentence-transformers"
GOALS = (("MFU on real tokens", "mfu", ">=", 0.45), ("peak memory per GPU, GB (reserved)", "peak_gb", "<=", 70.0),
         ("real tokens/s vs sentence-transformers", "vs_baseline", ">=", 1.2),
         ("hours of the paper's run on 8 GPUs", "hours", "<", 3.0))


def _ok(state: dict, part: str, name: str) -> dict | None:
    r = state.get("parts", {}).get(part, {}).get(name)
    return r["figures"] if r and r["status"] == "ok" else None


def candidates(state: dict) -> list[tuple[str, dict]]:
    """The recipe's default and every lever that ran, each a (name, figures) at 256 queries."""
    out = [("recipe default", _ok(state, "train", GROUPED))]
    out += [(name, r["figures"]) for name, r in state.get("parts", {}).get("levers", {}).items() if r["status"] == "ok"]
    return [(n, f) for n, f in out if f]


def goals(state: dict) -> list[dict]:
    """Each goal in GOALS for the recipe's default and for the best lever; None where not measured."""
    baseline = _ok(state, "train", BASELINE)
    values = {}
    for name, f in candidates(state):
        values[name] = {"mfu": f.get("mfu"), "peak_gb": f.get("peak_reserved_gb") or f.get("peak_memory_gb"),
                        "vs_baseline": f["tokens_per_s"] / baseline["tokens_per_s"] if baseline else None,
                        "hours": f.get("projected_hours")}
    out = []
    for text, key, op, target in GOALS:
        default = values.get("recipe default", {}).get(key)
        measured = [(v[key], n) for n, v in values.items() if v[key] is not None]
        best = (min if op in ("<=", "<") else max)(measured) if measured else (None, None)
        met = None if default is None else {">=": default >= target, "<=": default <= target, "<": default < target}[op]
        best_met = None if best[0] is None else {">=": best[0] >= target, "<=": best[0] <= target,
                                                 "<": best[0] < target}[op]
        out.append({"goal": f"{text} {op} {target}", "default": default, "met": met, "best": best[0],
                    "best_by": best[1], "best_met": best_met})
    return out


def _f(value, digits: int = 2, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:.1f}%"
    if isinstance(value, (int, float)) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _gb(f: dict) -> str:
    reserved = f.get("peak_reserved_gb")
    return _f(f["peak_memory_gb"], 1) + (f" / {_f(reserved, 1)}" if reserved is not None else "")


def _status(r: dict) -> str:
    if r["status"] == "ok":
        return f"ok, {r.get('seconds', 0):.0f} s"
    return f"{r['status']}: {r.get('reason') or r.get('error') or ''}".rstrip(": ")


def _train_table(jobs: dict, baseline: dict | None, lever: bool) -> list[str]:
    head = ["lever" if lever else "run", "status", "real tokens/s", "tokens/text", "padding", "s/step",
            "peak GB (alloc / reserved)",
            "MFU", "MFU vs matmul", "HFU", "hours (880 steps)", "vs sentence-transformers"]
    if lever:
        head[-1:] = ["vs default", "setting"]
    numbers = len(head) - 2 - lever  # the levers' last column, their setting, is text
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * numbers + "---|" * lever]
    for name, r in jobs.items():
        f = r.get("figures")
        if not f:
            lines.append(f"| {name} | {_status(r)} |" + " |" * (len(head) - 2))
            continue
        cells = [name, _status(r), _f(f["tokens_per_s"], 0), _f(f.get("tokens_per_text"), 0),
                 _f(f["padding_share"], 3), _f(f["s_per_step"], 2),
                 _gb(f), _f(f["mfu"], pct=True), _f(f["mfu_ceiling"], pct=True), _f(f["hfu"], pct=True),
                 f"{_f(f['projected_hours'], 2)} on {f['gpus_projected']} GPU(s)"]
        if lever:
            setting = ", ".join(f"{k}={v}" for k, v in f["changes"].items())
            if f.get("out_of_memory"):
                setting += "; out of memory: " + "; ".join(", ".join(f"{k}={v}" for k, v in c.items())
                                                           for c in f["out_of_memory"])
            cells += [_f(f.get("vs_default"), 2), setting]
        else:
            cells.append(_f(f["tokens_per_s"] / baseline["tokens_per_s"], 2) if baseline else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(state: dict) -> str:
    m, v, parts = state.get("machine", {}), state.get("versions", {}), state.get("parts", {})
    tiny = state.get("profile") == "tiny"
    lines = [f"# GPU suite: {m.get('device', '?')}", ""]
    if tiny:
        lines += ["**Tiny mode (`--tiny`): 2-layer models on CPU. The figures prove the code paths, they "
                  "measure nothing about a GPU.**", ""]
    for c in state.get("commands", []):
        lines.append(f"- `{c['command']}` (started {c['started']}, budget {c['budget_s']:.0f} s)")
    lines += [f"- updated {state.get('updated', '?')}, {state.get('elapsed_s', 0):.0f} s into the last command",
              f"- machine: {m.get('device')}, {m.get('memory_gb', '-')} GB, compute capability "
              f"{m.get('capability', '-')}, {m.get('cpus')} CPUs; data-sheet bf16 peak "
              f"{_f(m.get('datasheet_bf16_tflops'), 0)} TFLOP/s, measured matmul ceiling "
              f"{_f(m.get('matmul_tflops'), 1)} TFLOP/s ({m.get('matmul', '-')})",
              "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
              + "; not installed: " + (", ".join(k for k, val in v.items() if val is None and k != "cuda") or "none"),
              "", "## Goals", "",
              "| goal | recipe default | met | best measured | by | met |", "|---|---:|---|---:|---|---|"]
    yes = {True: "yes", False: "no", None: "-"}
    for g in state.get("goals", []):
        lines.append(f"| {g['goal']} | {_f(g['default'], 3)} | {yes[g['met']]} | {_f(g['best'], 3)} | "
                     f"{g['best_by'] or '-'} | {yes[g['best_met']]} |")
    baseline = _ok(state, "train", BASELINE)
    for part, jobs in parts.items():
        lines += ["", f"## {part}", ""]
        if part in ("train", "full-batch"):
            lines += _train_table(jobs, baseline, lever=False)
        elif part == "levers":
            lines += _train_table(jobs, baseline, lever=True)
        else:
            for name, r in jobs.items():
                lines += _other(part, name, r)
    return "\n".join(lines) + "\n"


def _other(part: str, name: str, r: dict) -> list[str]:
    f = r.get("figures")
    if not f:
        return [f"{name}: {_status(r)}"]
    if part == "tests":
        lines = [f"{f['passed']} passed, {f['failed']} failed, {f['error']} errors, {f['skipped']} skipped "
                 f"(pytest exit code {f['exit_code']}; {_status(r)})", ""]
        lines += [f"- {t['outcome']}: `{t['name']}` {t['message']}" for t in f["tests"] if t["outcome"] != "passed"]
        return lines
    if part == "encode":
        lines = [f"{f['dtype']}, batch {f['batch_size']}, {f['texts_per_mix']} texts per mix ({_status(r)})", "",
                 "| mix | avg tokens | unsorted texts/s | sorted texts/s | sorted tokens/s | sorted / unsorted |",
                 "|---|---:|---:|---:|---:|---:|"]
        for mix, x in f["mixes"].items():
            lines.append(f"| {mix} | {_f(x['avg_tokens'], 1)} | {_f(x['unsorted']['texts_per_s'], 1)} | "
                         f"{_f(x['sorted']['texts_per_s'], 1)} | {_f(x['sorted']['tokens_per_s'], 0)} | "
                         f"{_f(x['speedup'], 2)} |")
        lines += ["", "Projected encoding hours on this device (sorted): "
                  + ", ".join(f"{b} {_f(h, 1)} h" for b, h in f["projected_hours"].items())]
        return lines
    if part == "run":
        shape = ", ".join(f"{k} {v}" for k, v in f["shape"].items())
        lines = [f"{shape}; {f['dtype']} weights, {f['mixed_precision']} mixed precision, global batch "
                 f"{f['global_batch']}; trackers: {', '.join(f['trackers']) or 'none'} ({_status(r)}, "
                 f"{_f(f['seconds'], 1)} s in all; checkpoint: {', '.join(f['checkpoint'])})", "",
                 "| step | loss | grad norm | s/step | real tokens/s | peak GB |", "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {s['step']} | {_f(s['loss'], 4)} | {_f(s['grad_norm'], 3)} | {_f(s['step_time_s'], 2)} | "
                  f"{_f(s['tokens_per_s'], 0)} | {_f(s['peak_memory_gb'], 1)} |" for s in f["steps"]]
        return lines
    if part == "mine":
        return [f"{f['params'] / 1e6:.0f}M parameters ({_status(r)}): passages {_f(f['passages']['texts_per_s'], 1)} "
                f"texts/s ({_f(f['passages']['tokens_per_s'], 0)} tokens/s, {_f(f['passages']['avg_tokens'], 0)} "
                f"tokens each), queries {_f(f['queries']['texts_per_s'], 1)} texts/s, top-{f['search']['top_k']} "
                f"search {_f(f['search']['queries_per_s'], 0)} queries/s in {f['search']['corpus']:,} documents; "
                f"{_f(f['hours_per_million_records'], 2)} h per million records (a million queries and positives "
                "encoded, searched in a million documents)"]
    return [f"{name}: {json.dumps(f)}"]


@dataclass
class GpuReportSettings:
    input: str = setting("", "a gpu_suite.json the suite wrote (required)")

    def check(self) -> None:
        if not self.input:
            raise ConfigError("command line: --input is required (a gpu_suite.json)")


def _main(argv: list[str]) -> int:
    args = parse(GpuReportSettings, argv)
    try:
        state = json.loads(read_text(args.input))
    except ValueError as e:
        raise InputError(f"--input {args.input}: not JSON ({e})") from None
    print(markdown(state))
    return 0


main = cli.command(_main, doc=__doc__, config=GpuReportSettings, module=__name__)
