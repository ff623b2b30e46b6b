"""A line per test file as it finishes (its counts and wall time), also under pytest-xdist, so a
long run shows where it is instead of minutes of dots."""

from __future__ import annotations

import time
from collections import Counter

import pytest


class FileProgress:
    def __init__(self, config):
        self.config = config
        self.left: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.started: dict[str, float] = {}
        self.done = 0

    def register(self, nodeids) -> None:
        if self.left:
            return  # every xdist worker collects the same tests
        for nodeid in nodeids:
            self.left[nodeid.split("::")[0]] += 1
        self.files = len(self.left)

    @pytest.hookimpl
    def pytest_collection_finish(self, session):
        if not hasattr(self.config, "workerinput"):  # the controller, or a run without xdist
            self.register(item.nodeid for item in session.items)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report):
        path = report.nodeid.split("::")[0]
        self.started.setdefault(path, time.monotonic())
        tally = self.outcomes.setdefault(path, Counter())
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            tally[report.outcome] += 1
        elif report.when == "teardown" and report.outcome == "failed":
            tally["error"] += 1
        if report.when != "teardown" or path not in self.left:
            return
        self.left[path] -= 1
        if self.left[path]:
            return
        self.done += 1
        counts = ", ".join(f"{n} {k}" for k, n in sorted(tally.items()))
        took = time.monotonic() - self.started[path]
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.ensure_newline()
            reporter.write_line(f"[{self.done}/{self.files}] {path}: {counts} ({took:.0f} s)")


class XdistCollection:
    def __init__(self, progress: FileProgress):
        self.progress = progress

    @pytest.hookimpl
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.progress.register(ids)


def install(config) -> None:
    if hasattr(config, "workerinput"):
        return  # a worker: its reports reach the controller, which prints
    progress = FileProgress(config)
    config.pluginmanager.register(progress, "file-progress")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistCollection(progress), "file-progress-xdist")
