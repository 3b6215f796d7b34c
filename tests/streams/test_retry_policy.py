"""The retry and failover policy (protocol 6.1) on its own: failures in, next tries out."""

from __future__ import annotations

import pytest

from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from server.streams.retry import NextTry, RetryPolicy

DOWN = UpstreamUnavailable("overloaded", status=503)


def rate_limited(retry_after: float) -> UpstreamRateLimited:
    return UpstreamRateLimited("slow down", status=429, retry_after=retry_after)


def tries(policy: RetryPolicy[str], *failures: ProviderError) -> list[NextTry[str] | None]:
    """The policy's answer to each failure in turn, before any text was sent."""
    return [policy.next_try(exc, text_sent=False) for exc in failures]


def retrying(attempt: int, delay: float) -> NextTry[str]:
    return NextTry("retrying", attempt, delay, None)


def failover(attempt: int, route: str) -> NextTry[str]:
    return NextTry("failover", attempt, 0.0, route)


def test_retries_back_off_exponentially_until_spent() -> None:
    policy: RetryPolicy[str] = RetryPolicy(attempts=3, backoff=0.25, max_wait=5.0)
    assert tries(policy, DOWN, DOWN, DOWN, DOWN) == [
        retrying(2, 0.25),
        retrying(3, 0.5),
        retrying(4, 1.0),
        None,
    ]


def test_a_backoff_longer_than_the_max_wait_ends_the_retries() -> None:
    policy = RetryPolicy(attempts=5, backoff=1.0, max_wait=5.0, fallbacks=["b"])
    assert tries(policy, DOWN, DOWN, DOWN, DOWN) == [
        retrying(2, 1.0),
        retrying(3, 2.0),
        retrying(4, 4.0),
        failover(5, "b"),  # 8 s would be over the max wait
    ]


def test_retry_after_replaces_the_backoff_and_counts_as_a_retry() -> None:
    policy: RetryPolicy[str] = RetryPolicy(attempts=3, backoff=0.25, max_wait=5.0)
    assert tries(policy, rate_limited(3.0), DOWN, rate_limited(0.0)) == [
        retrying(2, 3.0),
        retrying(3, 0.5),  # the backoff goes on from the retries made
        retrying(4, 0.0),  # retry-after 0: at once
    ]
    assert policy.retries_left == 0


def test_a_retry_after_over_the_max_wait_fails_over_at_once() -> None:
    policy = RetryPolicy(attempts=2, backoff=0.25, max_wait=5.0, fallbacks=["b"])
    assert tries(policy, rate_limited(5.0), rate_limited(5.5)) == [retrying(2, 5.0), failover(3, "b")]


def test_a_retry_after_over_the_max_wait_without_fallbacks_ends_the_tries() -> None:
    policy: RetryPolicy[str] = RetryPolicy(attempts=2, backoff=0.25, max_wait=5.0)
    assert tries(policy, rate_limited(60.0)) == [None]
    assert (policy.attempt, policy.retries_left) == (1, 2)


def test_each_fallback_gets_a_fresh_retry_budget_and_attempts_count_across_them() -> None:
    policy = RetryPolicy(attempts=1, backoff=0.25, max_wait=5.0, fallbacks=["b", "c"])
    assert tries(policy, *[DOWN] * 6) == [
        retrying(2, 0.25),
        failover(3, "b"),
        retrying(4, 0.25),  # the backoff starts again
        failover(5, "c"),
        retrying(6, 0.25),
        None,
    ]


def test_no_retries_with_fallbacks_fails_over_at_once() -> None:
    policy = RetryPolicy(attempts=0, backoff=0.25, max_wait=5.0, fallbacks=["b"])
    assert tries(policy, DOWN, DOWN) == [failover(2, "b"), None]


def test_no_retries_and_no_fallbacks_means_no_next_try() -> None:
    policy: RetryPolicy[str] = RetryPolicy(attempts=0, backoff=0.25, max_wait=5.0)
    assert tries(policy, DOWN) == [None]


@pytest.mark.parametrize(
    "exc",
    [
        UpstreamAuthError("bad key", status=401),
        UpstreamBadRequest("bad model", status=400),
        UpstreamUnavailable("overloaded, but final", retryable=False),
    ],
    ids=["auth", "bad_request", "marked_final"],
)
def test_a_final_failure_has_no_next_try(exc: ProviderError) -> None:
    policy = RetryPolicy(attempts=2, backoff=0.25, max_wait=5.0, fallbacks=["b"])
    assert policy.next_try(exc, text_sent=False) is None
    assert (policy.attempt, policy.retries_left, list(policy.fallbacks)) == (1, 2, ["b"])


def test_no_next_try_once_text_was_sent() -> None:
    policy = RetryPolicy(attempts=2, backoff=0.25, max_wait=5.0, fallbacks=["b"])
    assert policy.next_try(DOWN, text_sent=True) is None
    assert (policy.attempt, policy.retries_left, list(policy.fallbacks)) == (1, 2, ["b"])
