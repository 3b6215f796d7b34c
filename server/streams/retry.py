"""The retry and failover policy of one stream, before its first token (protocol 6.1).

Pure: no clock, no I/O. The stream asks it what to do after each failed try and does the waiting
itself; the state (tries left, the attempt number, the fallbacks not tried yet) is all here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from providers.base import ProviderError

R = TypeVar("R")  # a fallback route


@dataclass(frozen=True, slots=True)
class NextTry(Generic[R]):
    code: Literal["retrying", "failover"]
    attempt: int  # the try about to start: 2 is the first retry
    delay: float  # seconds to wait before it; 0 for a failover
    route: R | None  # the fallback to serve from now on; None: the same provider again


class RetryPolicy(Generic[R]):
    """Retries of the same provider with an exponential backoff, then each fallback in turn,
    with a fresh retry budget."""

    def __init__(self, attempts: int, backoff: float, max_wait: float, fallbacks: Sequence[R] = ()) -> None:
        self.attempts = attempts  # retries per provider
        self.backoff = backoff  # seconds before the first retry, doubled for each next one
        self.max_wait = max_wait  # a longer wait is not waited for: fail over instead
        self.fallbacks = deque(fallbacks)
        self.retries_left = attempts
        self.attempt = 1

    def next_try(self, exc: ProviderError, *, text_sent: bool) -> NextTry[R] | None:
        """The try after ``exc``; None when there is none: text was sent (the client would see
        it twice), the failure is final, or every try is spent."""
        if text_sent or not exc.retryable:
            return None
        wait = self.backoff * 2 ** (self.attempts - self.retries_left)
        if exc.retry_after is not None:
            wait = exc.retry_after
        route = None
        if self.retries_left and wait <= self.max_wait:
            self.retries_left -= 1
        elif self.fallbacks:
            route = self.fallbacks.popleft()
            self.retries_left = self.attempts
            wait = 0.0
        else:
            return None
        self.attempt += 1
        return NextTry("retrying" if route is None else "failover", self.attempt, wait, route)
