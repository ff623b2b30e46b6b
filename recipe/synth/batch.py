"""Batch API mode (`--mode batch`): the same jobs at half the price, answered within 24 h.

Rounds: brainstorm until every pool is full, then generate until N valid examples, each round
one or more batches of at most `batch_size` requests. Each step of a batch is written to
batches.jsonl before the next one starts (prepared -> uploaded -> submitted -> ingested), so a
restart finds every batch it paid for: it uploads what was only prepared, adopts a batch created
just before a crash (found by its input file), polls what is pending, and ingests answers once
(jobs already saved are skipped). Answers go through the same filters as the online engine.
"""

from __future__ import annotations

import asyncio
import io
import json

import openai

from . import plan, request
from .. import files, log
from .breaker import RejectBreaker
from .placeholders import BRAINSTORM_GROUPS
from .save import save_brainstorm, save_generation
from .settings import SynthConfig
from .store import Store
from .teacher import BudgetReached, Outage

ENDPOINT = "/v1/chat/completions"
DONE = ("completed", "failed", "expired", "cancelled")


class BatchRunner:
    def __init__(self, cfg: SynthConfig, client, store: Store):
        self.cfg, self.client, self.store = cfg, client, store
        self.dir = store.dir / "batches"
        self.dir.mkdir(exist_ok=True)
        self.breaker = RejectBreaker(cfg.max_reject_rate)

    # what to ask -----------------------------------------------------------------------------
    def _pending(self) -> list[dict]:
        """The meta rows of every batch not yet ingested."""
        rows = []
        for name, b in self.store.batches.items():
            if b["status"] != "ingested":
                rows += [row for _, row in files.jsonl(self.dir / f"{name}.meta.jsonl")]
        return rows

    def brainstorm_requests(self) -> list[tuple[dict, dict]]:
        pending = self._pending()
        out = []
        for group in BRAINSTORM_GROUPS:
            mine = [r for r in pending if r.get("group") == group and "call" in r]
            calls = request.brainstorm_calls(self.cfg, group, len(self.store.pool(group)), len(mine))
            first = max([*self.store.tasks.get(group, {}), *(r["call"] for r in mine)], default=-1) + 1
            for call in range(first, first + max(0, calls)):
                req = request.brainstorm(self.cfg, group, call)
                out.append(({"custom_id": req.id, "group": group, "call": call, "model": req.model}, req.body))
        return out

    def generation_requests(self) -> list[tuple[dict, dict]]:
        cfg, store = self.cfg, self.store
        pending = {r["job"] for r in self._pending() if "job" in r}
        want = request.generation_calls(cfg, store, len(pending))
        affordable = request.affordable_calls(cfg, store)  # a batch is sent whole: it must fit the budget
        if affordable is not None:
            want = min(want, affordable)
        pick = plan.TaskPicker(cfg.seed, {g: store.pool(g) for g in BRAINSTORM_GROUPS if cfg.group_mix.get(g, 0) > 0})
        out = []
        for job in plan.jobs(cfg):
            if len(out) >= want:
                break
            if job.index in store.done_jobs or job.index in pending:
                continue
            task = pick(job)
            req = request.generation(cfg, job, task)
            meta = {"custom_id": req.id, "job": job.index, "group": job.group, "model": job.model,
                    "language": job.language, "values": job.values, "slot": job.slot, "task": task}
            out.append((meta, req.body))
        return out

    # one batch's life --------------------------------------------------------------------------
    def prepare(self, kind: str, requests: list[tuple[dict, dict]]) -> str:
        name = f"{kind}-{len(self.store.batches):04d}"
        with (self.dir / f"{name}.input.jsonl").open("w") as f:
            for meta, body in requests:
                f.write(json.dumps({"custom_id": meta["custom_id"], "method": "POST", "url": ENDPOINT,
                                    "body": body}, ensure_ascii=False) + "\n")
        with (self.dir / f"{name}.meta.jsonl").open("w") as f:
            for meta, _ in requests:
                f.write(json.dumps(meta, ensure_ascii=False) + "\n")
        self.store.update_batch({"name": name, "kind": kind, "status": "prepared", "count": len(requests)})
        return name

    async def submit(self, name: str) -> None:
        b = self.store.batches[name]
        if not b.get("input_file_id"):
            data = (self.dir / f"{name}.input.jsonl").read_bytes()
            f = await self.client.files.create(file=(f"{name}.jsonl", io.BytesIO(data)), purpose="batch")
            self.store.update_batch({"name": name, "input_file_id": f.id, "status": "uploaded"})
        if not b.get("batch_id"):
            found = None
            async for old in self.client.batches.list(limit=100):  # created just before a crash?
                if old.input_file_id == b["input_file_id"]:
                    found = old
                    break
            batch = found or await self.client.batches.create(
                input_file_id=b["input_file_id"], endpoint=ENDPOINT, completion_window="24h",
                metadata={"e5_recipe_batch": name})
            self.store.update_batch({"name": name, "batch_id": batch.id, "status": "submitted"})
            log.say(f"batch {name}: {'adopted' if found else 'submitted'} {batch.id} ({b['count']} requests)")

    async def wait(self, name: str):
        b = self.store.batches[name]
        while True:
            batch = await self.client.batches.retrieve(b["batch_id"])
            if batch.status != b.get("api_status"):
                self.store.update_batch({"name": name, "api_status": batch.status})
                counts = batch.request_counts
                log.say(f"batch {name}: {batch.status}"
                        + (f" ({counts.completed}/{counts.total} done)" if counts else ""))
            if batch.status in DONE:
                return batch
            await asyncio.sleep(self.cfg.batch_poll)

    async def ingest(self, name: str, batch) -> None:
        if batch.status == "failed" and not batch.output_file_id:
            errors = "; ".join(e.message or "" for e in (batch.errors.data if batch.errors else []) or [])
            raise Outage(f"batch {batch.id} ({name}) failed: {errors or 'no reason given'}")
        metas = {m["custom_id"]: m for _, m in files.jsonl(self.dir / f"{name}.meta.jsonl")}
        if batch.output_file_id:
            content = await self.client.files.content(batch.output_file_id)
            for line in content.text.splitlines():
                if line.strip():
                    self._ingest_line(metas, json.loads(line))
        self.store.update_batch({"name": name, "status": "ingested"})

    def _ingest_line(self, metas: dict, row: dict) -> None:
        meta, resp = metas.get(row.get("custom_id")), row.get("response") or {}
        if meta is None or resp.get("status_code") != 200:
            return  # an errored request is free and not saved: a later round asks again
        answer = request.answer(resp["body"])
        if "call" in meta:
            if meta["call"] not in self.store.tasks.get(meta["group"], {}):
                outcome = save_brainstorm(self.store, self.cfg, meta["group"], meta["call"], meta["model"], answer,
                                          batch=True)
                self.breaker.add(outcome, answer.text)
        elif meta["job"] not in self.store.done_jobs:
            job = plan.Job(meta["job"], meta["group"], meta["model"], meta["language"], meta["values"], meta["slot"])
            self.breaker.add(save_generation(self.store, self.cfg, job, meta["task"], answer, batch=True), answer.text)

    async def finish(self, name: str) -> None:
        await self.submit(name)
        await self.ingest(name, await self.wait(name))

    # the rounds --------------------------------------------------------------------------------
    async def _round(self, kind: str, requests) -> None:
        size = self.cfg.batch_size
        names = [self.prepare(kind, requests[i:i + size]) for i in range(0, len(requests), size)]
        await asyncio.gather(*(self.finish(n) for n in names))
        self._check_breaker()

    def _check_breaker(self) -> None:
        """Between rounds: submit no further batch when most answers of the last ones were rejected."""
        if self.breaker.tripped():
            raise self.breaker.error()

    async def run(self) -> None:
        try:
            pending = [n for n, b in self.store.batches.items() if b["status"] != "ingested"]
            if pending:
                log.say(f"resuming {len(pending)} batch(es): {', '.join(pending)}")
                await asyncio.gather(*(self.finish(n) for n in pending))
                self._check_breaker()
            rounds = 0
            while requests := self.brainstorm_requests():
                rounds += 1
                if rounds > 20:
                    raise Outage("brainstorm batches keep failing to fill the task pools; see tasks.jsonl")
                await self._round("brainstorm", requests)
            while self.store.n_examples < self.cfg.num_examples:
                requests = self.generation_requests()
                if not requests:
                    if self.cfg.max_cost:
                        raise BudgetReached(f"budget reached: ${self.store.cost:.2f} of --max-cost "
                                    f"{self.cfg.max_cost:.2f}; raise it and run again to continue")
                    break
                await self._round("generate", requests)
        except openai.APIError as e:
            raise Outage(f"batch API error: {e}; run the same command again to resume") from None
        finally:
            await self.client.close()
