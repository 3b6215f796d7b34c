"""Cost estimates: the dated table, model-name matching, overrides."""

from __future__ import annotations

import pytest

from providers.pricing import DEFAULT_PRICES, cost_usd, rates_for


@pytest.mark.parametrize(
    ("provider", "model", "rates"),
    [
        ("openai", "gpt-4o", (2.50, 10.00)),
        ("openai", "gpt-4o-2024-08-06", (2.50, 10.00)),
        ("openai", "gpt-4o-mini-2024-07-18", (0.15, 0.60)),
        ("openai", "gpt-4o-audio-preview", None),
        ("openai", "gpt-5-pro", None),
        ("anthropic", "claude-sonnet-4-5-20250929", (3.00, 15.00)),
        ("anthropic", "claude-opus-4-5", (5.00, 25.00)),
        ("anthropic", "claude-haiku-4-5-latest", (1.00, 5.00)),
        ("gemini", "models/gemini-2.5-flash", (0.30, 2.50)),
        ("gemini", "gemini-2.5-flash-lite", (0.10, 0.40)),
        ("ollama", "llama3.2", (0.0, 0.0)),
    ],
)
def test_rates_by_model_name(provider: str, model: str, rates: tuple[float, float] | None) -> None:
    assert rates_for(DEFAULT_PRICES[provider], model) == rates


def test_cost_is_null_without_a_price_and_zero_for_free_models() -> None:
    assert cost_usd(DEFAULT_PRICES["openai"], "unknown-model", 10, 10) is None
    assert cost_usd(DEFAULT_PRICES["ollama"], "llama3.2", 10, 10) == 0
    assert cost_usd({"m": (1.0, 2.0)}, "m", 1_000_000, 500_000) == 2.0
