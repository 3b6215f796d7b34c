"""Cost estimates from token counts. No provider returns money, only tokens."""

from __future__ import annotations

from collections.abc import Mapping

# USD per million tokens as (input, output), by provider, then model ("*" = any model).
Rates = tuple[float, float]
DEFAULT_PRICES: dict[str, dict[str, Rates]] = {
    "rulebased": {"*": (0.0, 0.0)},
}


def cost_usd(
    prices: Mapping[str, Rates], model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """The estimated cost, or None when no price is known for the model."""
    rates = prices.get(model) or prices.get("*")
    if rates is None:
        return None
    return round((prompt_tokens * rates[0] + completion_tokens * rates[1]) / 1_000_000, 8)
