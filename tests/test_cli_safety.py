"""Safe with what users own (issue 9): every command answers a mistake or a fault with one line on
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
                "--progress", "false", *extra]
    return setup


def _eval(sts_lines: bytes | None = None, *extra: str, output: Callable[[Path], Path] = lambda t: t / "out") -> Callable:
    """eval.py on a local STSBenchmark folder whose test.jsonl is `sts_lines` (default: 40 good rows)."""
    def setup(tmp, teacher, mp):
        rows = sts_lines if sts_lines is not None else b"".join(STS.read_bytes().splitlines(keepends=True)[:40])
        _write(tmp / "data" / "STSBenchmark" / "test.jsonl", rows)
        return ["--model", "nobody/unused", "--tasks", "STSBenchmark", "--data-dir", str(tmp / "data"),
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


GOOD_STS = '{"sentence1": "a", "sentence2": "b", "score": 2.0}'
NO_QUERY = {**json.loads(SYNTH.joinpath("examples.jsonl").read_text().splitlines()[0]), "id": "new"}
del NO_QUERY["query"]
NOT_UTF8_CONFIG = "recipe.yaml: not UTF-8"
EARLIER_DRY_RUN = (".e5-dry-run.json", '{"files": ["README.md"]}')


CASES = [
    # --- the cases of issue 9 ---------------------------------------------------------------
    Case("publish-dry-run-into-a-folder-with-readme", "publish",
         _publish(output=_folder_with(("README.md", "mine"), ("keep.txt", "x"))),
         2, "--output-dir {tmp}/o: not empty (README.md, keep.txt)"),
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
    Case("mine-sampling-best", "mine_negatives", _mine("--sampling", "best"), 2, "'sampling' = 'best'"),
    Case("mine-offline-default-miner", "mine_negatives", _mine(), 2, "--model intfloat/multilingual-e5-base: not a local folder"),
    Case("mine-not-utf8-input", "mine_negatives", _mine(input=lambda t: _records_with(t, "bad.jsonl", NOT_UTF8)), 2,
         "bad.jsonl:2: not UTF-8"),
    Case("mine-not-utf8-config", "mine_negatives", _config_only, 2, NOT_UTF8_CONFIG),
    Case("mine-missing-local-input", "mine_negatives", _mine(input=lambda t: _local_parent(t, "out/synth")), 2,
         "--input out/synth: no such data file or folder"),
    Case("synth-credentials-in-base-url", "synthesize", _synth(url=lambda u: u.replace("http://", "http://bob:Sup3rSecret@")),
         2, "OPENAI_BASE_URL holds credentials", hides="Sup3rSecret"),
    Case("synth-base-url-without-v1", "synthesize", _synth(url=lambda u: u.removesuffix("/v1")), 2,
         "so set OPENAI_BASE_URL=http://127.0.0.1"),
    Case("synth-teacher-answers-garbage", "synthesize", _synth(faults=("malformed",) * 60), 3,
         "30 of the last 30 (100% > --max-reject-rate 0.5); top reasons: not_json 30"),
    Case("synth-not-utf8-config", "synthesize", _config_only, 2, NOT_UTF8_CONFIG),
    Case("synth-not-utf8-output-folder", "synthesize", _synth(output=lambda t: _synth_folder_with(t, NOT_UTF8)), 2,
         "examples.jsonl:31: not valid JSON"),
    Case("eval-unwritable-output-dir", "eval", _eval(output=_under_a_file("out")), 2,
         "--output-dir {tmp}/afile/out: cannot write there"),
    Case("eval-empty-local-file", "eval", _eval(b""), 2, "STSBenchmark/test.jsonl: empty"),
    Case("eval-missing-sts-score", "eval", _eval(_sts(GOOD_STS, '{"sentence1": "a", "sentence2": "c"}')), 2,
         "STSBenchmark/test.jsonl:2: no 'score'"),
    Case("eval-not-utf8-local-file", "eval", _eval(_sts(GOOD_STS) + NOT_UTF8), 2, "test.jsonl:2: not UTF-8"),
    Case("eval-not-utf8-config", "eval", _config_only, 2, NOT_UTF8_CONFIG),
    Case("eval-model-path-missing", "eval",
         lambda t, te, mp: _eval(None, "--model", _local_parent(t, "runs/final"))(t, te, mp), 2,
         "--model runs/final: no such model folder"),
    # --- more of the same, across the six commands ----------------------------------------
    Case("publish-output-is-the-input", "publish", _publish(output=lambda t: t / "synth"), 2, "overlaps the input"),
    Case("publish-output-inside-the-input", "publish", _publish(output=lambda t: t / "synth" / "hub"), 2, "overlaps the input"),
    Case("publish-earlier-dry-run-with-a-user-file", "publish",
         _publish(output=_folder_with(EARLIER_DRY_RUN, ("README.md", "card"), ("notes.txt", "mine"))),
         2, "holds files the earlier publish --dry-run did not write (notes.txt)"),
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
    Case("train-zero-lr", "train", _train("--lr", "0"), 2, "'lr' = 0.0 must be > 0"),
    Case("train-lora-dropout-out-of-range", "train", _train("--lora-dropout", "1.5"), 2, "'lora_dropout' = 1.5"),
    Case("train-bad-hub-model-id", "train", _train("--push-to-hub", "--hub-model-id", "no id"), 2,
         "--hub-model-id 'no id': need NAMESPACE/NAME"),
    Case("train-missing-local-data", "train", lambda t, te, mp: _train("--data", _local_parent(t, "out/synth"))(t, te, mp),
         2, "out/synth: no such file or folder"),
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
]


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


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
    capsys.readouterr()
    try:
        code = import_module(f"recipe.commands.{case.command}").main(argv)
    finally:
        if holder:
            holder.release()
    err = capsys.readouterr().err
    assert code == case.code, err
    assert_one_line_and_untouched(err, case.says.format(tmp=tmp_path), before, tmp_path, case.hides)


def test_the_table_covers_every_command_and_issue_case():
    commands = {c.command for c in CASES}
    assert commands == {"synthesize", "publish", "build_mix", "mine_negatives", "train", "eval"}
    assert len(CASES) >= 36 + 20 and len({c.id for c in CASES}) == len(CASES)
