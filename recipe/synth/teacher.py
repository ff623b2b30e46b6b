"""The teacher: one chat completion through the `openai` client, and the errors a user can act on.

Retries are the client's own: it retries 408/409/429/5xx, timeouts and dropped connections with
exponential back-off (0.5 s doubling to 8 s, with jitter) and honours `Retry-After` up to two
minutes (openai-python `_base_client.py`). What is left after `max_retries` is a `Transient`
that the engine puts back in its queue; errors no retry can fix are `Fatal`, with one line
that says what to do.
"""

from __future__ import annotations

import json
import os
import socket
from urllib.parse import urlparse

import openai

try:
    import httpx2 as httpx  # the transport of openai >= 3
except ImportError:  # openai 2.x
    import httpx

from ..config import ConfigError
from ..errors import InputError, Stopped
from .request import Answer, Request, answer, cost_guess


class Fatal(InputError):
    """The teacher refuses what we ask (key, model, request) or cannot be reached: the user must
    fix a setting (exit 2); nothing saved is lost and the same command resumes once it is fixed."""


class Outage(Stopped):
    """The teacher stopped answering usefully (no answer for max_outage, failed batches): a clean
    stop (exit 3); running the same command again resumes."""


class BudgetReached(Stopped):
    """--max-cost was reached: a clean stop, not a failure; a higher budget continues the run."""


class Transient(RuntimeError):
    """A request that failed after the client's retries; worth trying again later."""


class RequestJournal:
    """The HTTP client's event hooks: each chat request is written to the store's sent.jsonl
    before it leaves, and each refusal when it comes back, so a request that was sent and never
    saved (a kill -9, a timeout the client retried) is counted, not paid for unseen. Hooks fire
    on every attempt, the client's own retries included."""

    def __init__(self, cfg):
        self.cfg, self.store = cfg, None  # the store is opened once the folder is locked

    async def on_request(self, request) -> None:
        if self.store is None or not request.url.path.endswith("/chat/completions"):
            return
        try:
            body = json.loads(request.content)
        except (ValueError, TypeError):
            body = {}
        self.store.request_sent(request.headers.get("X-E5-Job"), body.get("model"), cost_guess(self.cfg, body))

    async def on_response(self, response) -> None:
        request = response.request
        if self.store is None or not request.url.path.endswith("/chat/completions"):
            return
        job = request.headers.get("X-E5-Job")
        if 200 <= response.status_code < 300:
            self.store.request_answered(job)
        else:
            self.store.request_refused(job, response.status_code)


def make_client(cfg, journal: RequestJournal | None = None) -> tuple[openai.AsyncOpenAI, str]:
    """The async client and the base URL it talks to; a missing setting is a one-line error."""
    limits = httpx.Limits(max_connections=cfg.concurrency + 8, max_keepalive_connections=cfg.concurrency + 8)
    # The SDK's aiohttp transport keeps up at hundreds of requests in flight where its default
    # httpx one falls behind (benchmarks/synth_throughput.py; docs/benchmarks.md).
    transport = openai.DefaultAioHttpClient if cfg.http_transport == "aiohttp" else openai.DefaultAsyncHttpxClient
    try:
        hooks = {"request": [journal.on_request], "response": [journal.on_response]} if journal else {}
        http = transport(limits=limits, event_hooks=hooks)
    except RuntimeError as e:  # the SDK's aiohttp extra is missing
        raise ConfigError(f"http_transport aiohttp: {e} (pip install 'openai[aiohttp]'), "
                          "or set --http-transport httpx") from None
    common = dict(max_retries=cfg.max_retries, timeout=cfg.request_timeout, http_client=http)
    if cfg.azure:
        endpoint = os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigError("AZURE_OPENAI_ENDPOINT is not set: export it (https://NAME.openai.azure.com)")
        if not (os.environ.get("AZURE_OPENAI_API_KEY") or os.environ.get("AZURE_OPENAI_AD_TOKEN")):
            raise ConfigError("AZURE_OPENAI_API_KEY is not set: export it (or AZURE_OPENAI_AD_TOKEN)")
        client = openai.AsyncAzureOpenAI(api_version=cfg.azure_api_version, **common)
        return client, endpoint
    if not os.environ.get("OPENAI_API_KEY"):
        raise ConfigError(
            "OPENAI_API_KEY is not set: export it (for a local server without auth, any value, e.g. EMPTY)")
    base = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    try:
        url = urlparse(base)
        url.port  # noqa: B018 - parsing the port is what raises on a malformed one
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"OPENAI_BASE_URL={public_url(base)!r} is not a URL: expected e.g. http://localhost:8000/v1")
    if url.username is not None or url.password is not None:
        # the client sends OPENAI_API_KEY as a bearer token; a secret in the URL would only end up in logs
        raise ConfigError(f"OPENAI_BASE_URL holds credentials (user:password@ before the host {url.hostname}); "
                          "remove them and put the key in OPENAI_API_KEY")
    return openai.AsyncOpenAI(base_url=base, **common), base


def public_url(url: str) -> str:
    """`url` without anything that may be a credential (user:password@, query string); for messages and logs."""
    try:
        u = urlparse(url)
        host = u.hostname + (f":{u.port}" if u.port else "") if u.hostname else ""
    except ValueError:
        return "<unparseable URL>"
    if not host:
        return "<not a URL>" if "@" in url or "?" in url else url
    return u._replace(netloc=host, query="", fragment="").geturl()


def check_reachable(base_url: str, timeout: float = 5.0) -> None:
    """Fail in a second, not after minutes of retries, when nothing listens at the base URL."""
    url = urlparse(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            pass
    except OSError as e:
        raise Fatal(f"cannot reach the teacher at {public_url(base_url)} ({e.strerror or e}): "
                    "check OPENAI_BASE_URL and that the server is running") from None


def _is_content_filter(err: openai.BadRequestError) -> bool:
    return "content_filter" in str(err) or "content management policy" in str(err)


async def chat(client: openai.AsyncOpenAI, request: Request) -> Answer:
    """Send one request (`request.py` builds it) and read its answer."""
    model = request.model
    try:
        resp = await client.chat.completions.create(
            **request.body,
            extra_headers={"X-E5-Job": request.id},  # lets a server's logs tie a request to its job
        )
    except openai.AuthenticationError as e:
        raise Fatal(f"the teacher rejected the API key (401): check OPENAI_API_KEY ({_msg(e)})") from None
    except openai.PermissionDeniedError as e:
        raise Fatal(f"the teacher refused access to {model!r} (403): {_msg(e)}") from None
    except openai.NotFoundError as e:
        raise Fatal(_not_found(client, model, e)) from None
    except openai.BadRequestError as e:
        if _is_content_filter(e):
            return Answer(None, "content_filter", 0, 0)
        raise Fatal(f"the teacher rejected the request for {model!r} (400): {_msg(e)}") from None
    except openai.APIConnectionError as e:  # timeouts included
        raise Transient(f"{type(e).__name__}: {_msg(e)}") from None
    except openai.APIStatusError as e:
        if e.status_code in (408, 409, 429) or e.status_code >= 500:
            raise Transient(f"HTTP {e.status_code}: {_msg(e)}") from None
        raise Fatal(f"the teacher answered HTTP {e.status_code} for {model!r}: {_msg(e)}") from None
    return answer(resp.to_dict())  # the JSON the server sent, read as a batch's output line is


def _not_found(client, model: str, err: Exception) -> str:
    """A 404 is a wrong model name, or (the usual first-run mistake) a base URL without /v1."""
    base = str(client.base_url).rstrip("/")
    if not isinstance(client, openai.AsyncAzureOpenAI) and not urlparse(base).path.endswith("/v1"):
        return (f"the teacher answered 404 at {public_url(base)}/chat/completions: OpenAI-compatible servers "
                f"serve under /v1, so set OPENAI_BASE_URL={public_url(base)}/v1 (or check --model {model!r})")
    return f"model {model!r} not found on the teacher (404): check --model ({_msg(err)})"


def _msg(err: Exception) -> str:
    return str(getattr(err, "message", None) or err).splitlines()[0][:300]
