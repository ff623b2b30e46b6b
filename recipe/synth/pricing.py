"""What the teacher's tokens cost, so a run can show its spend and stop at a budget.

List prices in USD per 1M (input, output) tokens, as OpenAI published them (2024-2025), are data:
prices.yaml, in the shape of the recipe's `prices:`, which adds or replaces entries (prices change).
A model is matched by its longest known prefix, so dated snapshots ("gpt-4o-mini-2024-07-18") find
their family. The Batch API costs half.
"""

from __future__ import annotations

from pathlib import Path

import yaml

PRICES: dict[str, tuple[float, float]] = {
    model: tuple(pair)
    for model, pair in yaml.safe_load(Path(__file__).with_name("prices.yaml").read_text(encoding="utf-8")).items()
}
BATCH_DISCOUNT = 0.5


OPENAI_HOST = "api.openai.com"


def list_prices_apply(base_url: str, azure: bool) -> bool:
    """OpenAI's list prices are what a call costs at OpenAI (and, near enough, Azure OpenAI); a
    local or third-party server answering to the same model name costs something else or nothing."""
    from urllib.parse import urlparse

    return azure or urlparse(base_url).hostname == OPENAI_HOST


def price(model: str, extra: dict[str, list[float]] | None = None, *,
          list_prices: bool = True) -> tuple[float, float] | None:
    table = {**(PRICES if list_prices else {}), **{k: tuple(v) for k, v in (extra or {}).items()}}
    if model in table:
        return table[model]
    best = max((k for k in table if model.startswith(k + "-")), key=len, default=None)
    return table[best] if best else None


def cost(model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False,
         extra: dict[str, list[float]] | None = None, list_prices: bool = True) -> float | None:
    """USD for one answer, or None where the model's price is unknown (a self-hosted teacher)."""
    p = price(model, extra, list_prices=list_prices)
    if p is None:
        return None
    usd = (prompt_tokens * p[0] + completion_tokens * p[1]) / 1e6
    return usd * BATCH_DISCOUNT if batch else usd
