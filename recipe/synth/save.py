"""One teacher answer into one saved line: an example, a rejection, or a brainstormed task list.

Shared by the online engine and the Batch API mode, so both filter the same way (the paper's
JSON-shape check and exact-duplicate removal) and write the same fields, which the training stage
reads: task_group, instruction, query, positive, negative, language.
"""

from __future__ import annotations

import time

from . import pricing
from .parse import Rejected, parse_example, parse_tasks
from .plan import Job
from .request import Answer, placeholders, recorded_sampling
from .store import Store, example_key


def _usage(cfg, model: str, answer: Answer, batch: bool) -> dict:
    return {
        "model": model,
        "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens},
        "cost_usd": pricing.cost(model, answer.prompt_tokens, answer.completion_tokens,
                                 batch=batch, extra=cfg.prices, list_prices=cfg.list_prices is not False),
        "created": round(time.time(), 3),
    }


def save_generation(store: Store, cfg, job: Job, task: str, answer: Answer, *, batch: bool = False) -> str:
    """Save the outcome of generation job `job`; returns 'ok' or the rejection reason."""
    values = placeholders(job, task)
    meta = _usage(cfg, job.model, answer, batch)
    try:
        if answer.finish_reason == "length":
            raise Rejected("truncated")
        if answer.finish_reason == "content_filter":
            raise Rejected("content_filter")
        raw, query, positive, negative = parse_example(job.group, answer.text)
        key = example_key(query, positive, negative)
        if key in store.keys:
            raise Rejected("duplicate")
        if store.n_examples >= cfg.num_examples:
            raise Rejected("over_target")  # paid for, so kept; only after a lowered --num-examples
    except Rejected as r:
        store.add_rejected({"job": job.index, "task_group": job.group, "reason": r.reason,
                            "text": answer.text, "finish_reason": answer.finish_reason,
                            "placeholders": values, "sampling": recorded_sampling(cfg), **meta})
        return r.reason
    store.add_example({
        "id": key[:16], "job": job.index, "task_group": job.group, "instruction": task,
        "query": query, "positive": positive, "negative": negative, "language": job.language,
        "placeholders": values, "sampling": recorded_sampling(cfg), **meta, "raw": raw,
    })
    return "ok"


def save_brainstorm(store: Store, cfg, group: str, call: int, model: str, answer: Answer,
                    *, batch: bool = False) -> str:
    meta = _usage(cfg, model, answer, batch)
    try:
        if answer.finish_reason == "length":
            raise Rejected("truncated")
        tasks, reason = parse_tasks(answer.text), None
    except Rejected as r:
        tasks, reason = None, r.reason
    store.add_tasks({"task_group": group, "call": call, "tasks": tasks, "reason": reason,
                     "text": answer.text, "sampling": recorded_sampling(cfg), **meta})
    return reason or "ok"
