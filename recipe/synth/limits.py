"""Requests-per-minute and tokens-per-minute limits, as token buckets.

A request reserves its estimated tokens before it is sent and settles the difference with the
real usage afterwards, so the bucket tracks what the provider counts. Staying under the limits
keeps 429s (and the back-off they cost) rare rather than routine.
"""

from __future__ import annotations

import asyncio
import time


class Bucket:
    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, amount: float) -> float:
        self._refill()
        # a request larger than a whole minute's budget goes once the bucket is full
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount


class RateLimiter:
    def __init__(self, rpm: int = 0, tpm: int = 0):
        self.requests = Bucket(rpm) if rpm > 0 else None
        self.tokens = Bucket(tpm) if tpm > 0 else None
        self._lock = asyncio.Lock()  # first come, first served

    async def acquire(self, tokens: float) -> None:
        if self.requests is None and self.tokens is None:
            return
        async with self._lock:
            while True:
                wait = max(b.wait_time(n) for b, n in ((self.requests, 1), (self.tokens, tokens)) if b)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(tokens)

    def settle(self, estimated: float, actual: float) -> None:
        if self.tokens:
            self.tokens.take(actual - estimated)
