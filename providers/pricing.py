"""Cost estimates from token counts. No provider returns money, only tokens.

Rates are USD per million tokens, (input, output), as published by each provider; checked
2026-11. They change: override any of them per model in ``[providers.<name>.prices]``.
Cached-input discounts are not modelled, so the estimate errs high for cached prompts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

Rates = tuple[float, float]
_DATED = re.compile(r"[0-9][0-9-]*|latest")
DEFAULT_PRICES: dict[str, dict[str, Rates]] = {
    "rulebased": {"*": (0.0, 0.0)},
    "ollama": {"*": (0.0, 0.0)},  # runs locally
    "openai": {
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-5": (1.25, 10.00),
        "gpt-5-mini": (0.25, 2.00),
        "gpt-5-nano": (0.05, 0.40),
    },
    "anthropic": {
        "claude-opus-4-6": (5.00, 25.00),
        "claude-opus-4-5": (5.00, 25.00),
        "claude-opus-4-1": (15.00, 75.00),
        "claude-opus-4": (15.00, 75.00),
        "claude-sonnet-4-6": (3.00, 15.00),
        "claude-sonnet-4-5": (3.00, 15.00),
        "claude-sonnet-4": (3.00, 15.00),
        "claude-3-7-sonnet": (3.00, 15.00),
        "claude-haiku-4-5": (1.00, 5.00),
        "claude-3-5-haiku": (0.80, 4.00),
    },
    "gemini": {
        "gemini-2.5-pro": (1.25, 10.00),  # prompts up to 200k tokens
        "gemini-2.5-flash": (0.30, 2.50),
        "gemini-2.5-flash-lite": (0.10, 0.40),
    },
    # azure_openai: deployment names are the customer's own and prices vary by deployment type
    # and region, so there is no default; configure them per deployment.
}


def rates_for(prices: Mapping[str, Rates], model: str) -> Rates | None:
    """Exact model name first, then the longest priced name it extends with a date or version
    ("gpt-4o-2024-08-06" -> "gpt-4o", "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5"; but not
    "gpt-4o-audio-preview", a different model), then "*"."""
    model = model.removeprefix("models/")  # Gemini's resource-name form
    if model in prices:
        return prices[model]
    prefixes = [n for n in prices if model.startswith(n + "-") and _DATED.fullmatch(model[len(n) + 1 :])]
    if prefixes:
        return prices[max(prefixes, key=len)]
    return prices.get("*")


def cost_usd(
    prices: Mapping[str, Rates], model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """The estimated cost, or None when no price is known for the model."""
    rates = rates_for(prices, model)
    if rates is None:
        return None
    return round((prompt_tokens * rates[0] + completion_tokens * rates[1]) / 1_000_000, 8)
