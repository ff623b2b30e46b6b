"""A real teacher on this machine: llama.cpp's own OpenAI-compatible server, through `xllamacpp`.

    with LocalTeacher("qwen2.5-coder-0.5b-instruct", threads=1) as teacher:
        os.environ["OPENAI_BASE_URL"] = teacher.base_url   # data/synthesize.py talks to it as to any server

The model is a name of recipe/local_models.py (its GGUF file installed from PyPI and checked
against its sha256) or the path of a .gguf file. The server listens on 127.0.0.1 only (it has no
API key: nothing off this machine may reach it); port 0 lets the system choose a free one.
`xllamacpp.Server` serves from its own threads from construction on and stops when the object is
freed (its C++ destructor joins the main loop), so leaving the `with` block is the clean stop.
Installed by the optional extra: pip install -e ".[local]".
"""

from __future__ import annotations

import gc
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import InputError, first_line
from ..hub import is_hub_id

HOST = "127.0.0.1"


def resolve(model: str, flag: str = "--model") -> tuple[Path, str]:
    """The GGUF file and the name the server answers to, for a local model's name, a .gguf path, or
    a Hub repo that holds GGUF files (`owner/repo`, when it holds one, or `owner/repo/file.gguf`;
    downloaded once into the Hugging Face cache, read from it offline)."""
    from ..local_models import MODELS, gguf_file

    if model in MODELS:
        return gguf_file(model), model
    path = Path(model).expanduser()
    if path.exists() or path.suffix == ".gguf" and model.count("/") < 2:  # owner/repo/file.gguf: the Hub's
        if not path.is_file():
            raise InputError(f"{flag} {model}: not a .gguf file ({'a folder' if path.is_dir() else 'no such file'})")
        return path, path.stem
    repo, file = "/".join(model.split("/")[:2]), "/".join(model.split("/")[2:])
    if is_hub_id(repo) and (not file or file.endswith(".gguf")):
        local = _hub_gguf(repo, file, flag)
        return local, local.stem
    raise InputError(f"{flag} {model!r}: neither a local model ({', '.join(sorted(MODELS))}), nor a .gguf "
                     "file, nor a Hub repo of GGUF files (owner/repo or owner/repo/file.gguf)")


def _hub_gguf(repo: str, file: str, flag: str) -> Path:
    """`file` of the Hub repo (the repo's one .gguf file when empty), in the local cache; a model
    split into parts (`-00001-of-00003.gguf`) comes whole, since llama.cpp reads the rest beside the first."""
    from huggingface_hub import hf_hub_download, list_repo_files, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    from ..hub import hub_offline

    where = f"{flag} {repo}" + (f"/{file}" if file else "")
    try:
        if not file:
            if hub_offline():
                snapshot = Path(snapshot_download(repo, local_files_only=True))
                files = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*.gguf")]
            else:
                files = list_repo_files(repo)
            ggufs = sorted(f for f in files if _first_part(f))
            if len(ggufs) != 1:
                listed = ", ".join(ggufs[:4]) + (", ..." if len(ggufs) > 4 else "")
                raise InputError(f"{where}: the repo holds {len(ggufs)} .gguf models{f' ({listed})' if ggufs else ''}; "
                                 f"name one: {flag} {repo}/{ggufs[0] if ggufs else 'FILE.gguf'}")
            file = ggufs[0]
        split = _SPLIT.search(file)
        parts = [file] if not split else [file[:split.start()] + f"-{i:05d}-of-{split.group(2)}.gguf"
                                          for i in range(1, int(split.group(2)) + 1)]
        paths = [Path(hf_hub_download(repo, p, local_files_only=hub_offline())) for p in parts]
    except (LocalEntryNotFoundError, FileNotFoundError) as e:
        raise InputError(f"{where}: not in the local Hugging Face cache and the Hub cannot be reached "
                         f"(HF_HUB_OFFLINE or no network); download it first or give a .gguf file ({first_line(e, 120)})") from None
    except EntryNotFoundError:
        raise InputError(f"{where}: no such file in the repo; {flag} {repo} lists its .gguf files") from None
    except (HfHubHTTPError, OSError) as e:
        raise InputError(f"{where}: cannot fetch it from the Hub ({first_line(e, 200)}); check the repo id, "
                         "or `hf auth login` for a gated or private repo") from None
    return paths[0]


_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def _first_part(file: str) -> bool:
    """A .gguf file that is a model: whole, or the first of its parts."""
    split = _SPLIT.search(file)
    return file.endswith(".gguf") and (split is None or split.group(1) == "00001")


def check_server(url: str, model: str, flag: str = "--teacher-url", model_flag: str = "--model") -> None:
    """An OpenAI-compatible server answers `url`/models and serves `model` (when it lists its
    models): checked before any work, so that a typo'd URL or model name is one line now, not a
    synthesis whose every request fails. OPENAI_API_KEY, when set, is sent as the client would."""
    request = urllib.request.Request(url.rstrip("/") + "/models")
    if os.environ.get("OPENAI_API_KEY"):
        request.add_header("Authorization", f"Bearer {os.environ['OPENAI_API_KEY']}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            listed = json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise InputError(f"{flag} {url}: the server refused the key (HTTP {e.code}); set OPENAI_API_KEY") from None
        raise InputError(f"{flag} {url}: {url.rstrip('/')}/models answered HTTP {e.code}; give the server's "
                         "OpenAI-compatible base URL (most end in /v1)") from None
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise InputError(f"{flag} {url}: no OpenAI-compatible server answers there ({first_line(reason, 120)}); "
                         "start it, or leave the flag out to start the local teacher") from None
    served = [m.get("id") for m in listed.get("data", []) if isinstance(m, dict)] if isinstance(listed, dict) else []
    if served and model not in served:
        raise InputError(f"{model_flag} {model}: the server at {url} serves {', '.join(map(str, served[:5]))}"
                         f"{', ...' if len(served) > 5 else ''}; name one of them")


def _check_port_free(port: int) -> None:
    # llama.cpp loads the whole model before it finds the port taken, then says only "failed to
    # init server"; a bind first names the cause in a second
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as e:
            raise InputError(f"--port {port}: {HOST}:{port} is in use ({e.strerror or e}); "
                             "choose another port, or 0 for any free one") from None


class LocalTeacher:
    """llama.cpp's server over one GGUF model, on 127.0.0.1; a context manager.

    `ctx_size` is each request's context (prompt + completion: the paper's longest prompt is
    ~600 tokens, so 4096 leaves room for max_tokens 2048 and more); `parallel` requests are
    decoded together (continuous batching), each with its own `ctx_size`. `seed` is the sampling
    seed of requests that send none (None: a random one each time, llama.cpp's default); with a
    seed and one request at a time the same requests get the same answers on one machine."""

    def __init__(self, model: str, port: int = 0, threads: int = 1, ctx_size: int = 4096, parallel: int = 1,
                 seed: int | None = None, metrics: bool = True, ready_timeout: float = 300.0):
        if threads < 1 or parallel < 1 or ctx_size < 256:
            raise InputError(f"local teacher: threads and parallel must be >= 1 and ctx_size >= 256, "
                             f"got {threads}, {parallel}, {ctx_size}")
        if not 0 <= port <= 65535:
            raise InputError(f"--port {port}: not a TCP port (0-65535; 0: any free one)")
        self.model, self.port, self.threads = model, port, threads
        self.ctx_size, self.parallel, self.metrics, self.ready_timeout = ctx_size, parallel, metrics, ready_timeout
        if seed is not None and not 0 <= seed < 0xFFFFFFFF:
            raise InputError(f"--seed {seed}: must be in [0, 2**32 - 1) (-1: random)")
        self.seed = seed
        self.path, self.model_name = resolve(model)
        self.server = None
        self.address = ""

    @property
    def base_url(self) -> str:
        return f"{self.address}/v1"

    def start(self) -> "LocalTeacher":
        try:
            import xllamacpp
        except ImportError:
            raise InputError('the local teacher needs xllamacpp: pip install -e ".[local]"') from None
        _check_port_free(self.port)
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.model_alias = {self.model_name}  # a set of names; /v1/models lists it
        params.hostnames = [HOST]
        params.port = self.port
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.n_parallel = self.parallel
        params.n_ctx = self.ctx_size * self.parallel  # the server splits its context among the slots
        if self.seed is not None:
            params.sampling.seed = self.seed
        params.endpoint_metrics = self.metrics  # /metrics: the server's own token counts and timings
        try:
            self.server = xllamacpp.Server(params)
        except RuntimeError as e:
            raise InputError(f"the local teacher could not start on {self.path} ({e}); its log above says why") from None
        self.address = self.server.listening_address.rstrip("/")
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.address}/health", timeout=5) as r:
                    if json.loads(r.read() or b"{}").get("status") == "ok":
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise InputError(f"the local teacher at {self.address} did not answer /health in "
                                 f"{self.ready_timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            del server  # the last reference: the destructor stops the HTTP server and joins its loop
            gc.collect()

    def read_metrics(self) -> dict[str, float]:
        """The server's Prometheus counters (`llamacpp:tokens_predicted_total`, ...), by name."""
        with urllib.request.urlopen(f"{self.address}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name.strip()] = float(value)
                except ValueError:
                    pass
        return out

    def __enter__(self) -> "LocalTeacher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
