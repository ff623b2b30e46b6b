"""The online engine: brainstorm the task pools, then generate until N valid, unique examples.

Concurrency is a pool of at most `concurrency` asyncio tasks, one per request. A job is started
only while saved + in-flight examples stay within N, so a run ends with exactly N and never pays
for an example it would throw away; a job whose answer was rejected frees its place for the next.
A request that fails after the client's retries goes back to the queue; with no successful
answer for `max_outage` seconds, or with most recent answers rejected (`breaker.py`), the run
stops cleanly and the same command resumes it.
"""

from __future__ import annotations

import asyncio
import collections
import time

from tqdm.auto import tqdm

from . import plan, request
from .. import log
from .breaker import RejectBreaker
from .limits import RateLimiter
from .placeholders import BRAINSTORM_GROUPS
from .save import save_brainstorm, save_generation
from .settings import SynthConfig
from .store import Store
from .teacher import BudgetReached, Fatal, Outage, Transient, chat


def tokens(n: int) -> str:
    """A token count as it grows: 850, 12.3k, 4.56M."""
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


class Engine:
    def __init__(self, cfg: SynthConfig, client, store: Store):
        self.cfg, self.client, self.store = cfg, client, store
        self.limiter = RateLimiter(cfg.rpm, cfg.tpm)
        self.last_success = time.monotonic()
        self.failures = 0  # consecutive transient failures, for the engine's own back-off
        self.budget_reached = False
        self.fatal: Fatal | Outage | None = None
        self._halt = asyncio.Event()  # wakes jobs sleeping off a failure once the run stops
        self.breaker = RejectBreaker(cfg.max_reject_rate)
        self.bar = None
        self._completion_mean = cfg.max_tokens / 2

    # the worker pool --------------------------------------------------------------------------
    async def _pool(self, next_job, execute) -> None:
        """Run `execute(job)` for each job `next_job(running)` hands out, `concurrency` at a time.

        `next_job` is told how many jobs are running (their answers may yet fill the target) and
        returns None when no job is due now; the pool then waits for a running job to end, since
        a rejected or failed answer frees a place. It ends when no job is due and none runs, or
        when the run stops: the requests in flight are paid, so they are let finish."""
        running: set[asyncio.Task] = set()
        try:
            while not self._stopping():
                job = next_job(len(running)) if len(running) < self.cfg.concurrency else None
                if job is not None:
                    running.add(asyncio.create_task(execute(job)))
                elif running:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # what a job raised (a full disk, a bug) ends the run
                else:
                    return
            await asyncio.gather(*running)
        except BaseException:  # Ctrl-C, or a job raised: the others are cancelled
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    def _stopping(self) -> bool:
        stopping = self.fatal is not None or self.budget_reached
        if stopping:
            self._halt.set()
        return stopping

    async def _back_off(self, seconds: float) -> None:
        """Sleep after a failure, but no longer than the run goes on."""
        try:
            await asyncio.wait_for(self._halt.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _judge(self, outcome: str, answer) -> None:
        """Count a paid answer; stop asking for more once most recent ones are rejected."""
        self.breaker.add(outcome, answer.text)
        if self.breaker.tripped() and not self._stopping():
            self.fatal = self.breaker.error()

    async def _ask(self, req: request.Request):
        """One request under the rate limits; None if it failed transiently (the caller requeues)."""
        estimate = request.tokens_guess(req.body)[0] + self._completion_mean
        await self.limiter.acquire(estimate)
        try:
            try:
                answer = await chat(self.client, req)
            finally:
                self.store.settle(req.id)
        except Transient as e:
            self.limiter.settle(estimate, 0)
            self.failures += 1
            silent = time.monotonic() - self.last_success
            if silent > self.cfg.max_outage:
                self.fatal = Outage(f"no answer from the teacher for {silent:.0f} s (last: {e}); "
                                   "stopped cleanly, run the same command again to resume")
                self._stopping()
            else:
                # never sleep past the outage deadline: the next failure after it stops the run
                left = self.cfg.max_outage - silent
                await self._back_off(min(60.0, 2.0 ** min(self.failures, 6), left + 0.1))
            return None
        except Fatal as e:
            self.fatal = e
            return None
        self.failures = 0
        self.last_success = time.monotonic()
        self.limiter.settle(estimate, answer.prompt_tokens + answer.completion_tokens)
        self._completion_mean += 0.05 * (answer.completion_tokens - self._completion_mean)
        return answer

    def _over_budget(self, inflight: int) -> bool:
        """Saved spend, plus the requests sent and never answered (a kill, a timeout), plus the
        jobs in flight, which will be paid too."""
        if request.over_budget(self.cfg, self.store, self.store.lost() + inflight):
            self.budget_reached = True  # the message waits for the requests in flight: they are paid too
            return True
        return False

    # step 1: brainstorm --------------------------------------------------------------------
    async def brainstorm(self) -> None:
        cfg, store = self.cfg, self.store
        inflight = collections.Counter()
        failed = collections.Counter(
            {g: sum(t is None for t in store.tasks.get(g, {}).values()) for g in BRAINSTORM_GROUPS})
        next_call = {g: max(store.tasks.get(g, {}), default=-1) + 1 for g in BRAINSTORM_GROUPS}
        retry = {g: [] for g in BRAINSTORM_GROUPS}  # call numbers whose request failed transiently

        def calls_needed(g):
            return request.brainstorm_calls(cfg, g, len(store.pool(g)), inflight[g])

        def next_job(running):
            if self._over_budget(running):
                return None
            group = next((g for g in BRAINSTORM_GROUPS if calls_needed(g) > 0), None)
            if group is None:
                return None
            if failed[group] > 10 + 2 * request.brainstorm_calls(cfg, group):
                self.fatal = Outage(f"brainstorming {group} tasks failed {failed[group]} times "
                                   f"(see {store.path('tasks')}); check the teacher model")
                return None
            if retry[group]:
                call = retry[group].pop()
            else:
                call = next_call[group]
                next_call[group] += 1
            inflight[group] += 1
            return group, call

        async def execute(job):
            group, call = job
            req = request.brainstorm(cfg, group, call)
            answer = await self._ask(req)
            inflight[group] -= 1
            if answer is None:
                retry[group].append(call)
                return
            outcome = save_brainstorm(store, cfg, group, call, req.model, answer)
            if outcome != "ok":
                failed[group] += 1
            self._judge(outcome, answer)
            self._progress(outcome)

        await self._pool(next_job, execute)

    # step 2: generate ----------------------------------------------------------------------
    async def generate(self) -> None:
        cfg, store = self.cfg, self.store
        pools = {g: store.pool(g) for g in BRAINSTORM_GROUPS if cfg.group_mix.get(g, 0) > 0}
        pick_task = plan.TaskPicker(cfg.seed, pools)
        stream = (j for j in plan.jobs(cfg) if j.index not in store.done_jobs)
        retry: collections.deque = collections.deque()

        def next_job(running):
            if request.generation_calls(cfg, store, running) <= 0 or self._over_budget(running):
                return None
            return retry.popleft() if retry else next(stream)

        async def execute(job):
            task = pick_task(job)
            answer = await self._ask(request.generation(cfg, job, task))
            if answer is None:
                retry.append(job)
                return
            outcome = save_generation(store, cfg, job, task, answer)
            self._judge(outcome, answer)
            self._progress(outcome)

        await self._pool(next_job, execute)

    def _progress(self, outcome: str | None) -> None:
        """Move the bar for an answer (a brainstorm call, an example) and bring its figures up to
        date: tokens and spend as every answer comes in, saved or rejected; None: figures only."""
        if self.bar is None:
            return
        if outcome == "ok":
            self.bar.update(1)
        s = self.store
        cost = f"${s.cost:,.2f}" if s.cost else "$n/a"
        self.bar.set_postfix_str(f"tok {tokens(s.prompt_tokens + s.completion_tokens)}, {cost}, "
                                 f"rejected {sum(s.rejected.values())}")

    def _open_bar(self, what: str, total: int, initial: int = 0) -> None:
        if self.bar is not None:
            self.bar.close()
        # a bar per step, so that each step's rate and ETA are its own: brainstorming is not generating
        self.bar = tqdm(total=total, initial=initial, unit="call" if what == "brainstorm" else "ex", desc=what,
                        disable=not (self.cfg.progress and log.bars()), dynamic_ncols=True)
        self._progress(None)

    def _start_line(self, calls: int) -> str:
        cfg, store = self.cfg, self.store
        models = ", ".join(cfg.models())
        have = f" ({store.n_examples} there already)" if store.n_examples else ""
        first = f"first {calls} brainstorm call(s) for the task lists, then " if calls else ""
        return (f"synthesizing {cfg.num_examples} examples{have} into {store.dir} with {models}: {first}one request "
                f"per example, {cfg.concurrency} at a time")

    async def run(self) -> None:
        calls = sum(request.brainstorm_calls(self.cfg, g, len(self.store.pool(g))) for g in BRAINSTORM_GROUPS)
        if self.cfg.progress:
            log.say(self._start_line(calls))
        try:
            if calls:
                self._open_bar("brainstorm", calls)
                await self.brainstorm()
            if not self._stopping():
                self._open_bar("examples", self.cfg.num_examples, self.store.n_examples)
                await self.generate()
        finally:
            self._progress(None)  # the bar's last line and the stop message state the same spend
            if self.bar is not None:
                self.bar.close()
            await self.client.close()
        if self.fatal:
            raise self.fatal
        if self.budget_reached:
            lost = self.store.unsaved_cost()
            spent = f"${self.store.cost + lost:,.2f}" + (f" (${lost:,.2f} of it sent, never saved)" if lost else "")
            raise BudgetReached(f"budget reached: {spent} spent of --max-cost "
                                f"{self.cfg.max_cost:,.2f}; raise it and run the same command to continue")
