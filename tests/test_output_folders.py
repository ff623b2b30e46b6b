"""One rule for output folders (recipe/files.py's check_output_dir and mark_output_dir), and the
benchmarks on the commands' parser: every benchmark that writes a folder refuses one it did not
make through that one function, in one line (exit 2), before it writes anything. Argument parsing
and the check only: no model loads."""

import hashlib
import importlib
import json
import re

import pytest

from recipe.errors import InputError
from recipe.files import MARKER, check_output_dir, mark_output_dir
from tests.conftest import ROOT

TOOL = "a tool"


def test_a_folder_is_usable_when_absent_empty_or_the_tools_and_what_it_replaces_is_vouched_for(tmp_path):
    assert check_output_dir(tmp_path / "new", TOOL) == tmp_path / "new" and not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", TOOL)

    mine = tmp_path / "mine"
    (mine / "notes.txt").parent.mkdir()
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(InputError, match=r"mine: not empty \(notes.txt\) and not made by a tool; choose a new"):
        check_output_dir(mine, TOOL, overwrite=True)  # --overwrite never takes a folder the tool did not make

    ours = tmp_path / "ours"
    mark_output_dir(ours, TOOL)  # taken before its first file: a run killed now is resumed
    (ours / "report.md").write_text("table")
    (ours / "work").mkdir()
    check_output_dir(ours, TOOL, replaces=())  # its own folder, to resume
    with pytest.raises(InputError, match=r"report.md, work/ not written by a tool; move them away or choose"):
        check_output_dir(ours, TOOL)  # replaced whole: nothing the marker does not list
    mark_output_dir(ours, TOOL, ["report.md"])
    marker = json.loads((ours / MARKER).read_text())
    assert marker == {"written_by": TOOL, "files": {"report.md": hashlib.sha256(b"table").hexdigest()}}
    check_output_dir(ours, TOOL, replaces=["report.md"])
    (ours / "report.md").write_text("table, and my notes")
    with pytest.raises(InputError, match=r"report.md \(changed since\) not written by a tool; move them away, "
                                          r"pass --overwrite to replace them, or choose"):
        check_output_dir(ours, TOOL, replaces=["report.md"], overwrite=False)
    check_output_dir(ours, TOOL, replaces=["report.md"], overwrite=True)  # named by the user
    with pytest.raises(InputError, match=r"not empty \(report.md, work/\) and not made by another tool"):
        check_output_dir(ours, "another tool", replaces=())
    with pytest.raises(InputError, match=r"command line: --output-dir is required"):
        check_output_dir("", TOOL)


# every benchmark with an output folder, and what else it needs to reach the check
WRITES_A_FOLDER = {"miniature": [], "quality": ["--quick"], "student_speed": [], "teacher_slots": [],
                   "teacher_acceptance": [], "gpu_suite": ["--tiny"], "curve": []}
OTHERS = ["train_throughput", "eval_throughput", "data_throughput", "memory_estimate", "decontamination",
          "synth_throughput", "synthesis_report", "gpu_report"]
HELPERS = ["provenance"]  # shared by the benchmarks, no command of its own


def benchmark(name: str):
    return importlib.import_module(f"benchmarks.{name}")


def checksums(root):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else None) for p in root.rglob("*"))


@pytest.mark.parametrize("name", sorted(WRITES_A_FOLDER))
def test_a_benchmark_refuses_a_folder_it_did_not_make_through_the_one_rule(name, tmp_path, monkeypatch, capsys):
    bench = benchmark(name)
    calls = []

    def spy(folder, tool, **kw):
        calls.append((str(folder), tool))
        taken = check_output_dir(folder, tool, **kw)
        # the rule let the user's folder through: stop here, before the benchmark's real work
        raise RuntimeError(f"{tool} took {taken}")

    monkeypatch.setattr(bench, "check_output_dir", spy)
    folder = tmp_path / "mine"
    (folder / "drafts").mkdir(parents=True)
    (folder / "drafts" / "notes.md").write_text("the user's own\n")
    before = checksums(tmp_path)
    assert bench.main(["--output-dir", str(folder), *WRITES_A_FOLDER[name]]) == 2
    assert calls == [(str(folder), f"benchmarks/{name}.py")]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --output-dir {folder}: not empty (drafts/, drafts/notes.md) and not made by "
                   f"benchmarks/{name}.py; choose a new or empty folder"]
    assert checksums(tmp_path) == before  # nothing written, nothing removed


@pytest.mark.parametrize("name", sorted([*WRITES_A_FOLDER, *OTHERS]))
def test_a_benchmark_speaks_the_commands_dialect(name, capsys):
    assert benchmark(name).main(["--help"]) == 0
    text = capsys.readouterr().out
    flags = set(re.findall(r"^  (--[a-z0-9-]+)", text, flags=re.M))
    assert {"--config", "--debug", "--help"} <= flags
    assert not re.search(r"^  --[a-z0-9-]*_", text, flags=re.M), "a snake_case flag in --help"
    assert not flags & {"--out", "--work-dir", "--json", "--max-seq-length"}  # --output-dir, --output, --max-length
    assert ("--output-dir" in flags) == (name in WRITES_A_FOLDER)


def test_every_benchmark_is_checked_here():
    assert {p.stem for p in (ROOT / "benchmarks").glob("*.py")} == {*WRITES_A_FOLDER, *OTHERS, *HELPERS}
