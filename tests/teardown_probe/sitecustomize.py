"""Loaded by every Python process a test starts with this folder first on PYTHONPATH: records, in
E5_TEARDOWN_PROBE/<pid>.json, what each torch.distributed.destroy_process_group call left behind
(gloo's worker threads, named pt_gloo_runloop, still running means the group's destructor has not
run yet and will run later, wherever its last reference goes) and whether a process group was
still initialised at exit. It never imports torch itself: the launcher stays as it is."""

import atexit
import importlib.abc
import importlib.util
import json
import os
import sys

OUT = os.environ.get("E5_TEARDOWN_PROBE")
calls: list[dict] = []


def _threads() -> list[str]:
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:  # a thread that ended while listed
            pass
    return sorted(names)


def _patch(dist) -> None:
    original = dist.destroy_process_group

    def destroy_process_group(*args, **kwargs):
        original(*args, **kwargs)
        calls.append({"group": None if not (args or kwargs) else "some", "threads_after": _threads()})

    dist.destroy_process_group = destroy_process_group
    dist.distributed_c10d.destroy_process_group = destroy_process_group


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "torch.distributed":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


def _report() -> None:
    dist = sys.modules.get("torch.distributed")
    record = {"pid": os.getpid(), "rank": os.environ.get("RANK"), "argv": sys.argv, "destroy_calls": calls,
              "initialized_at_exit": bool(dist and dist.is_available() and dist.is_initialized())}
    with open(os.path.join(OUT, f"{os.getpid()}.json"), "w") as f:
        json.dump(record, f)


if OUT:
    sys.meta_path.insert(0, _Finder())
    atexit.register(_report)
