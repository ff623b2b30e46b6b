"""The training command's cfg enters no file twice on its way: a reader who follows the recipe's
settings from the run's entry meets each module once, in the order the run uses it.

A tiny training runs under a profiler that notes, for every call into a recipe/ source file, whether
the TrainConfig object itself is one of its arguments; the files of those calls, in order, must
never come back to a file they have left for another one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.train_helpers import ROOT, smoke_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPE = str(ROOT / "recipe") + "/"


def cfg_path(entry, cfg, *args) -> list[str]:
    """The recipe/ files, relative to the root, of the calls that receive `cfg` as an argument while
    `entry(cfg, *args)` runs (this thread), consecutive repeats collapsed."""
    files: list[str] = []

    def profile(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if not code.co_filename.startswith(RECIPE):
            return
        n = code.co_argcount + code.co_kwonlyargcount
        values = [frame.f_locals.get(name) for name in code.co_varnames[:n]]
        if code.co_flags & 0x04:  # *args
            values += frame.f_locals.get(code.co_varnames[n]) or ()
            n += 1
        if code.co_flags & 0x08:  # **kwargs
            values += (frame.f_locals.get(code.co_varnames[n]) or {}).values()
        if any(isinstance(v, type(cfg)) for v in values):
            where = str(Path(code.co_filename).relative_to(ROOT))
            if not files or files[-1] != where:
                files.append(where)

    sys.setprofile(profile)
    try:
        entry(cfg, *args)
    finally:
        sys.setprofile(None)
    return files


def returns(files: list[str]) -> list[str]:
    """The files the path comes back to after leaving them."""
    return [f for i, f in enumerate(files) if f in files[:i]]


def test_the_config_visits_each_file_once(tmp_path):
    from recipe.train import outdir, run

    cfg = smoke_config(output_dir=str(tmp_path / "run"), max_steps=2, save_steps=0, global_batch_size=8)
    files = cfg_path(run.train, cfg, outdir.inspect(cfg.output_dir))
    assert (tmp_path / "run" / "final").is_dir()
    assert files[0] == "recipe/train/run.py", files
    assert not returns(files), files
