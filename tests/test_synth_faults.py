"""Synthesis under faults that cost money or hang a run: a spent budget, a kill -9 with requests
in flight, a request that outlives its timeout, a teacher outage."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from recipe.synth.store import Store
from tests.conftest import ROOT, load_script

RECIPE = str(ROOT / "recipe/configs/synth_e5.yaml")
PRICED = ["--model", "pricey", "--prices", "{pricey: [1000, 1000]}"]


def _args(out, *extra):
    return ["--config", RECIPE, "--output-dir", str(out), "--progress", "false", *extra]


def _main_within(seconds, argv):
    """The command's exit code, or None if it has not returned in time (a hang)."""
    script = load_script("data/synthesize.py")
    result = []
    t = threading.Thread(target=lambda: result.append(script.main(argv)), daemon=True)
    t.start()
    t.join(seconds)
    return result[0] if result else None


def test_a_budget_smaller_than_the_spend_stops_at_once_and_sends_nothing(teacher, tmp_path, capsys):
    args = _args(tmp_path, *PRICED, "--num-examples", "40", "--concurrency", "2")
    assert _main_within(60, args + ["--max-cost", "2"]) == 3
    sent = len(teacher.log)
    assert _main_within(30, args + ["--max-cost", "1"]) == 3  # it hung here, asking nothing
    assert len(teacher.log) == sent
    assert "budget reached" in capsys.readouterr().err


def test_a_budget_spent_by_brainstorming_stops_before_generating(teacher, tmp_path):
    code = _main_within(60, _args(tmp_path, *PRICED, "--num-examples", "40", "--concurrency", "1",
                                  "--max-cost", "0.0001"))
    assert code == 3  # it hung after the brainstorms
    kinds = [e["kind"] for e in teacher.log]
    assert kinds == ["brainstorm"]  # the first answer spent the budget: no more brainstorms, no examples


def _start(out, *extra):
    return subprocess.Popen([sys.executable, str(ROOT / "data/synthesize.py"), *_args(out, *extra)],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _sent(out):
    path = out / "sent.jsonl"
    return sum('"sent"' in line for line in path.read_text().splitlines()) if path.exists() else 0


def test_a_kill_costs_at_most_the_requests_in_flight_and_they_are_counted(teacher, tmp_path):
    common = (*PRICED, "--num-examples", "30", "--group-mix", "{sts: 1}", "--concurrency", "8")
    teacher.latency = 0.05
    proc = _start(tmp_path, *common)
    deadline = time.time() + 60
    while not (tmp_path / "examples.jsonl").exists() and time.time() < deadline:
        time.sleep(0.01)
    teacher.latency = 5.0  # every request sent from now on is still in flight at the kill
    while _sent(tmp_path) - Store(tmp_path).requests < 8 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    teacher.latency = 0.0
    before = Store(tmp_path)
    assert before.unsaved() == 8  # sent, never saved: may have been paid
    lost = before.unsaved_cost()
    assert lost > 0

    # a budget the saved spend fits but the lost requests do not: stopped without a request
    asked = len(teacher.log)
    budget = before.cost + lost / 2
    proc = _start(tmp_path, *common, "--max-cost", str(budget))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "8 requests of earlier runs were sent and never saved" in err
    assert len(teacher.log) == asked

    proc = _start(tmp_path, *common)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "8 requests sent and never saved" in err.splitlines()[-1]
    assert len(Store(tmp_path).path("examples").read_text().splitlines()) == 30


def test_a_request_that_outlives_its_timeout_is_counted_when_sent_again(teacher, tmp_path):
    teacher.faults += ["slow:3"]  # the server still answers (and bills) the first try
    code = _main_within(60, _args(tmp_path, *PRICED, "--num-examples", "3", "--group-mix", "{sts: 1}",
                                  "--concurrency", "1", "--request-timeout", "1", "--max-retries", "2"))
    assert code == 0
    store = Store(tmp_path)
    assert store.unsaved() == 1 and store.n_examples == 3
    jobs = [e["job"] for e in teacher.log]
    assert jobs.count("generate/0") == 2  # sent twice by the client's own retry
    sent = [json.loads(x) for x in store.path("sent").read_text().splitlines()]
    assert [r.get("sent") for r in sent[:2]] == ["generate/0", "generate/0"]  # recorded before it left


def test_an_outage_stops_soon_after_max_outage(teacher, tmp_path, capsys):
    teacher.faults += ["500"] * 200
    start = time.monotonic()
    code = _main_within(60, _args(tmp_path, "--num-examples", "3", "--group-mix", "{sts: 1}", "--concurrency", "1",
                                  "--max-retries", "0", "--max-outage", "10"))
    took = time.monotonic() - start
    assert code == 3 and "no answer from the teacher" in capsys.readouterr().err
    assert took < 10 + 1.5  # the engine's back-off slept past the deadline: 14 s here, up to 60 s
    assert Store(tmp_path).unsaved() == 0  # refused requests are not billed
