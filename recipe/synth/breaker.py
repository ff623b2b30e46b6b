"""The teacher's circuit breaker: stop paying for answers that are thrown away.

Every answer is paid for, kept or not. A teacher that answers in the wrong shape (a wrong model
name behind a proxy, a server with a broken chat template, a model too small for the prompts)
would otherwise be paid thousands of times for nothing, since only `--max-cost` would stop it.
The breaker watches the last WINDOW answers (brainstorms and examples alike) and, once it has
seen at least FIRST of them, stops the run when more than `max_reject_rate` of them were
rejected. The stop is clean (exit 3, like a budget stop): everything received is saved, and the
same command resumes once the teacher is fixed. `max_reject_rate: 1` turns it off.
"""

from __future__ import annotations

from collections import Counter, deque

from ..errors import Stopped

WINDOW = 100
FIRST = 30
NOT_THE_TEACHERS = {"over_target"}  # rejected by our own bookkeeping, not for what the teacher wrote


class TooManyRejected(Stopped):
    """Most recent answers were rejected: stopped before paying for more of them (exit 3)."""


class RejectBreaker:
    def __init__(self, max_rate: float):
        self.max_rate = max_rate
        self.window: deque[str | None] = deque(maxlen=WINDOW)  # the rejection reason, or None if kept
        self.last_bad = ""

    def add(self, outcome: str, text: str | None) -> None:
        """Count one paid answer: `outcome` is 'ok' or its rejection reason."""
        if outcome in NOT_THE_TEACHERS:
            return
        self.window.append(None if outcome == "ok" else outcome)
        if outcome != "ok":
            self.last_bad = text or ""

    def tripped(self) -> bool:
        seen = len(self.window)
        return self.max_rate < 1 and seen >= FIRST and self._rejected() / seen > self.max_rate

    def _rejected(self) -> int:
        return sum(reason is not None for reason in self.window)

    def error(self) -> TooManyRejected:
        seen, bad = len(self.window), self._rejected()
        reasons = Counter(r for r in self.window if r is not None).most_common(3)
        start = " ".join(self.last_bad.split())[:80] or "(empty)"
        return TooManyRejected(
            f"the teacher's answers are being rejected: {bad} of the last {seen} "
            f"({bad / seen:.0%} > --max-reject-rate {self.max_rate:g}); top reasons: "
            + ", ".join(f"{r} {n}" for r, n in reasons)
            + f"; one began {start!r}; fix the teacher (model, server, chat template) and run the "
            "same command to resume (--max-reject-rate 1 turns this check off)")
