"""A test double of the teacher: a real HTTP server on 127.0.0.1 that speaks the OpenAI wire format,
for the tests, the benchmarks, and trying the commands without a teacher.

It answers the paper's brainstorm and generation prompts with well-formed, unique examples,
implements the files and batches endpoints for batch mode, and injects faults on demand: each
request takes the next fault from a queue (POST /_control {"faults": [...]}), or one at random at
`fault_rate`; a generation request (not a brainstorm) first takes from `generation_faults`, so
that a test can aim faults at examples whatever the order of brainstorm and generation requests.
Faults: "429" or "429:SECONDS" (with Retry-After), "500", "slow:SECONDS", "malformed", "fenced",
"prose", "truncated", "duplicate", "missing_key", "same_pos_neg", "401", "python_list"
(brainstorm), "drop" (close the connection unanswered). A batch that asks again for a request an
earlier batch answered is refused (400) and noted in `resubmitted`: that would be paying twice.
Each request's body is logged, its `response_format` (structured outputs) apart, and a brainstorm asked for one gets
`{"tasks": [...]}`, the root object a strict schema needs. Only the teacher is faked: the `openai` client, the engine and the files under test are real.

Run standalone: python -m recipe.synth.fake_teacher --port 0 --latency 1.0   # prints PORT <port>
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import threading
import time

from aiohttp import web

from .. import log

FAULTS = ("429", "500", "malformed", "fenced", "prose", "truncated", "duplicate", "missing_key")


def classify(prompt: str) -> str:
    if prompt.startswith("Brainstorm"):
        return "brainstorm"
    if '"user_query"' in prompt:
        return "short-long"
    if '"input_text"' in prompt:
        return "long-short"
    if "varying semantic similarity" in prompt:
        return "sts"
    if "varying translation qualities" in prompt:
        return "bitext"
    if "very short" in prompt:
        return "short-short"
    if "long documents" in prompt:
        return "long-long"
    return "unknown"


def example(kind: str, n: int) -> dict:
    if kind == "short-long":
        return {"user_query": f"query {n}", "positive_document": f"relevant document {n} " * 5,
                "hard_negative_document": f"less useful document {n} " * 5}
    if kind == "long-short":
        return {"input_text": f"a text to classify, number {n}", "label": f"label {n}",
                "misleading_label": f"other label {n}"}
    if kind in ("short-short", "long-long"):
        return {"input": f"input {n}", "positive_document": f"matching document {n}"}
    return {"S1": f"sentence one {n}", "S2": f"sentence two {n}", "S3": f"sentence three {n}"}


class FakeTeacher:
    def __init__(self, latency: float = 0.0, fault_rate: float = 0.0, seed: int = 0):
        self.latency, self.fault_rate = latency, fault_rate
        self.rng = random.Random(seed)
        self.faults: list[str] = []
        self.generation_faults: list[str | None] = []
        self.log: list[dict] = []  # one entry per request: job header, kind, fault, status
        self.counter = itertools.count()
        self.last: dict[str, str] = {}
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.answered: set[str] = set()  # custom_ids a batch answered with 200: paid for
        self.resubmitted: list[str] = []  # paid-for custom_ids that a later batch asked for again
        self.batch_delay = 0.2
        self.port = None
        self._loop = self._runner = None

    # the answers -------------------------------------------------------------------------
    def answer(self, body: dict, fault: str | None) -> tuple[int, dict, dict]:
        """(status, headers, json) for one chat completion request."""
        prompt = body["messages"][-1]["content"]
        kind = classify(prompt)
        if fault and fault.startswith("429"):
            wait = fault.partition(":")[2] or "1"
            return 429, {"Retry-After": wait}, {"error": {"message": "rate limited", "type": "rate_limit"}}
        if fault == "500":
            return 500, {}, {"error": {"message": "internal error", "type": "server_error"}}
        if fault == "401":
            return 401, {}, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        n = next(self.counter)
        finish = "stop"
        if kind == "brainstorm":
            tasks = [f"Task {n}.{i}: retrieve documents about topic {n}-{i}." for i in range(20)]
            if (body.get("response_format") or {}).get("type") == "json_schema":
                content = json.dumps({"tasks": tasks})  # a root object, as structured outputs require
            else:
                content = repr(tasks) if fault == "python_list" else json.dumps(tasks)
        else:
            obj = example(kind, n)
            if fault == "missing_key":
                obj.pop(next(iter(obj)))
            if fault == "same_pos_neg" and len(obj) == 3:
                keys = list(obj)
                obj[keys[2]] = obj[keys[1]]
            content = json.dumps(obj, ensure_ascii=False)
            if fault == "duplicate" and kind in self.last:
                content = self.last[kind]
            elif fault is None:
                self.last[kind] = content  # the latest clean answer, for "duplicate" to repeat
        if fault == "malformed":
            content = content[: len(content) // 2] + " <- not json"
        elif fault == "fenced":
            content = f"```json\n{content}\n```"
        elif fault == "prose":
            content = f"Sure, here is the example:\n{content}\nI hope it helps."
        elif fault == "truncated":
            content, finish = content[: len(content) // 2], "length"
        usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": max(1, len(content) // 4)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return 200, {}, {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content}}],
            "usage": usage,
        }

    def _next_fault(self, kind: str) -> str | None:
        if self.generation_faults and kind != "brainstorm":
            return self.generation_faults.pop(0)
        if self.faults:
            return self.faults.pop(0)
        if self.fault_rate and self.rng.random() < self.fault_rate:
            return self.rng.choice(FAULTS)
        return None

    # HTTP handlers -------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        kind = classify(body["messages"][-1]["content"])
        fault = self._next_fault(kind)
        entry = {"job": request.headers.get("X-E5-Job"), "kind": kind, "fault": fault, "t": time.time(),
                 "model": body.get("model"), "body": body,
                 **{k: body.get(k) for k in ("temperature", "top_p", "max_tokens", "response_format")}}
        self.log.append(entry)
        delay = self.latency + (float(fault.partition(":")[2]) if fault and fault.startswith("slow") else 0)
        if delay:
            await asyncio.sleep(delay)
        if fault == "drop":
            request.transport.close()
            raise ConnectionResetError("dropped on purpose")
        status, headers, payload = self.answer(body, fault)
        entry["status"] = status
        return web.json_response(payload, status=status, headers=headers)

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.faults.extend(body.get("faults", []))
        self.generation_faults.extend(body.get("generation_faults", []))
        for key in ("latency", "fault_rate", "batch_delay"):
            if key in body:
                setattr(self, key, body[key])
        return web.json_response({"ok": True})

    async def get_log(self, request: web.Request) -> web.Response:
        return web.json_response(self.log)

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        data = form["file"].file.read()
        fid = f"file-{len(self.files)}"
        self.files[fid] = data
        return web.json_response({"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                  "filename": form["file"].filename, "purpose": form.get("purpose", "batch")})

    async def file_content(self, request: web.Request) -> web.Response:
        fid = request.match_info["fid"]
        if fid not in self.files:
            return web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.Response(body=self.files[fid], content_type="application/octet-stream")

    def _batch_obj(self, bid: str) -> dict:
        return self.batches[bid]

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        ids = [json.loads(line)["custom_id"] for line in self.files[body["input_file_id"]].decode().splitlines()]
        again = [i for i in ids if i in self.answered]
        if again:
            # a client that asks twice pays twice; refusing the batch also stops a run that would
            # ask again round after round instead of letting it loop until the test times out
            self.resubmitted += again
            return web.json_response({"error": {"message": f"test double: {len(again)} request(s) already "
                                                f"answered and paid for, e.g. {again[0]}"}}, status=400)
        bid = f"batch-{len(self.batches)}"
        self.batches[bid] = {
            "id": bid, "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"], "status": "validating", "created_at": int(time.time()),
            "output_file_id": None, "error_file_id": None, "metadata": body.get("metadata"),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
        }
        asyncio.get_running_loop().create_task(self._process(bid))
        return web.json_response(self.batches[bid])

    async def _process(self, bid: str) -> None:
        batch = self.batches[bid]
        batch["status"] = "in_progress"
        await asyncio.sleep(self.batch_delay)
        out, err = [], []
        for line in self.files[batch["input_file_id"]].decode().splitlines():
            req = json.loads(line)
            kind = classify(req["body"]["messages"][-1]["content"])
            fault = self._next_fault(kind)
            self.log.append({"job": req["custom_id"], "kind": kind, "fault": fault, "t": time.time(), "batch": bid,
                             "body": req["body"], "response_format": req["body"].get("response_format")})
            status, _, payload = self.answer(req["body"], fault)
            row = {"id": f"req-{len(out) + len(err)}", "custom_id": req["custom_id"]}
            if status == 200:
                self.answered.add(req["custom_id"])
                out.append({**row, "response": {"status_code": 200, "body": payload}, "error": None})
            else:
                err.append({**row, "response": {"status_code": status, "body": payload}, "error": None})
        for rows, key in ((out, "output_file_id"), (err, "error_file_id")):
            if rows:
                fid = f"file-{len(self.files)}"
                self.files[fid] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[key] = fid
        batch["request_counts"] = {"total": len(out) + len(err), "completed": len(out), "failed": len(err)}
        batch["status"] = "completed"

    async def get_batch(self, request: web.Request) -> web.Response:
        bid = request.match_info["bid"]
        if bid not in self.batches:
            return web.json_response({"error": {"message": "no such batch"}}, status=404)
        return web.json_response(self.batches[bid])

    async def list_batches(self, request: web.Request) -> web.Response:
        data = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{fid}/content", self.file_content)
        app.router.add_post("/v1/batches", self.create_batch)
        app.router.add_get("/v1/batches/{bid}", self.get_batch)
        app.router.add_get("/v1/batches", self.list_batches)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/_control", self.control)
        app.router.add_get("/_log", self.get_log)
        return app

    # running it ----------------------------------------------------------------------------
    async def start(self, port: int = 0) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.port

    def start_in_thread(self) -> "FakeTeacher":
        """Serve from a daemon thread with its own event loop (for tests in this process)."""
        ready = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("fake teacher did not start")
        return self

    def stop(self) -> None:
        if self._loop:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    args = ap.parse_args()

    async def serve():
        teacher = FakeTeacher(args.latency, args.fault_rate)
        port = await teacher.start(args.port)
        log.result(f"PORT {port}")  # the line a parent process waits for
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
