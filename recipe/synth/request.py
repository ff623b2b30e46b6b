"""One teacher request, however it travels: what is asked, what an answer says, and how many
requests a run still needs and can pay for.

The online engine sends a body through the `openai` client (`teacher.chat`, one request a job,
named by the X-E5-Job header) and the Batch API mode writes the same body into a batch file
(`batch.py`, named by its custom_id); everything else is decided here, once, so the two modes
ask the teacher the same thing, read its answers the same way and stop at the same budget rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import plan, pricing
from .plan import Job
from .prompts import fields, render
from .schemas import response_format


@dataclass(frozen=True)
class Request:
    id: str  # the job's name: brainstorm/GROUP/CALL or generate/INDEX
    body: dict  # the chat completion request, as the API takes it

    @property
    def model(self) -> str:
        return self.body["model"]


@dataclass
class Answer:
    text: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


# what is asked ----------------------------------------------------------------------------------
def sampling(cfg) -> dict:
    """The request's sampling: the paper's temperature 1.0 and top_p 1.0 by default (settings.py),
    and a completion limit, past which an answer is rejected as truncated."""
    return {
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": cfg.max_tokens,
    }


def recorded_sampling(cfg) -> dict:
    """The sampling each saved line states."""
    out = sampling(cfg)
    if cfg.structured_outputs:  # named only when on, so the paper's records keep the paper's fields
        out["structured_outputs"] = True
    return out


def body(cfg, model: str, prompt: str, group: str, step: str) -> dict:
    out = {"model": model, "messages": [{"role": "user", "content": prompt}], **sampling(cfg)}
    schema = response_format(cfg, group, step)
    if schema:  # without structured outputs the field is left out, not sent empty: the request is the paper's
        out["response_format"] = schema
    return out


def brainstorm(cfg, group: str, call: int) -> Request:
    """Brainstorm call `call` of a group's task pool; its teacher depends only on the seed and the call."""
    model = plan.brainstorm_model(cfg, group, call)
    return Request(f"brainstorm/{group}/{call}", body(cfg, model, render(group, "brainstorm", {}), group, "brainstorm"))


def placeholders(job: Job, task: str) -> dict:
    """Job `job`'s placeholder values, the task definition included where its prompt names one."""
    values = dict(job.values)
    if "task" in fields(job.group, "generate"):
        values["task"] = task
    return values


def generation_prompt(job: Job, task: str) -> str:
    return render(job.group, "generate", placeholders(job, task))


def generation(cfg, job: Job, task: str) -> Request:
    return Request(f"generate/{job.index}", body(cfg, job.model, generation_prompt(job, task), job.group, "generate"))


# what an answer says ----------------------------------------------------------------------------
def answer(completion: dict) -> Answer:
    """The first choice and the usage of a chat completion, as the API's JSON has it."""
    choices = completion.get("choices") or []
    if not choices:
        return Answer(None, "no_choices", 0, 0)
    choice, usage = choices[0], completion.get("usage") or {}
    return Answer(
        (choice.get("message") or {}).get("content"),
        choice.get("finish_reason"),
        usage.get("prompt_tokens", 0) or 0,
        usage.get("completion_tokens", 0) or 0,
    )


# how many requests, at what cost ----------------------------------------------------------------
def brainstorm_calls(cfg, group: str, pooled: int = 0, asked: int = 0) -> int:
    """Brainstorm calls a group still needs: enough at `tasks_per_brainstorm` tasks each for the
    unique tasks its pool lacks (`pooled` it holds), less the `asked` ones not yet answered."""
    missing = plan.brainstorm_target(cfg, group) - pooled
    return math.ceil(missing / cfg.tasks_per_brainstorm) - asked if missing > 0 else 0


def generation_calls(cfg, store, asked: int) -> int:
    """Generation requests still to send: one per missing example, less the `asked` ones not yet
    answered; a rejected answer frees its place for the next job."""
    return cfg.num_examples - store.n_examples - asked


def budget_left(cfg, store, unsaved: int) -> float | None:
    """USD of --max-cost neither spent on saved answers nor owed for `unsaved` requests sent and
    not saved (in flight, or lost to a kill or a timeout), each at the mean saved answer's cost
    (before any answer: the journal's guess); None without a budget."""
    if not cfg.max_cost:
        return None
    return cfg.max_cost - (store.cost + store.unsaved_cost(unsaved))


def over_budget(cfg, store, unsaved: int) -> bool:
    """No further request may go: the budget is spent once the `unsaved` ones are paid."""
    left = budget_left(cfg, store, unsaved)
    return left is not None and left <= 0


def affordable_calls(cfg, store) -> int | None:
    """Requests the rest of the budget pays for at the mean saved answer's cost, for a batch that
    must fit whole; None: no limit (no budget, or no priced answer to go by yet)."""
    left = budget_left(cfg, store, 0)
    per_request = store.cost / store.requests if store.requests else 0
    return int(left / per_request) if left is not None and per_request else None


def tokens_guess(body: dict) -> tuple[float, float]:
    """A request's (prompt, completion) tokens before its answer says: about 3 characters a token,
    and half of max_tokens."""
    prompt = "".join(str(m.get("content", "")) for m in body.get("messages", ()))
    return len(prompt) / 3, body.get("max_tokens", 0) / 2


def cost_guess(cfg, body: dict) -> float:
    """USD a request will cost at its model's price, before its answer says; 0 without a price."""
    model = body.get("model")
    rate = pricing.price(model, cfg.prices, list_prices=cfg.list_prices) if model else None
    if not rate:
        return 0.0
    prompt, completion = tokens_guess(body)
    return (prompt * rate[0] + completion * rate[1]) / 1e6
