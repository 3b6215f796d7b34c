"""Feeding recorded-shape byte transcripts to a pure stream parser in every kind of split."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from providers.base import Failure, StreamEvent
from providers.dialect import StreamParser


def _comparable(event: StreamEvent) -> Any:
    if type(event) is Failure:
        error = event.error
        return ("failure", type(error).__name__, error.code, error.message, error.status, error.retry_after)
    return event


def _feed(parser: StreamParser, pieces: list[bytes]) -> list[Any]:
    events: list[StreamEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return [_comparable(e) for e in events]


def events_in_every_split(make_parser: Callable[[], StreamParser], data: bytes, seeds: int = 60) -> list[Any]:
    """The events of ``data`` fed whole, one byte at a time and in random splits; asserts they
    are all the same, and returns them (Failures as comparable tuples:
    ``("failure", class name, code, message, status, retry_after)``)."""
    whole = _feed(make_parser(), [data])
    assert _feed(make_parser(), [data[i : i + 1] for i in range(len(data))]) == whole, "byte by byte"
    for seed in range(seeds):
        rng = random.Random(seed)
        cuts = (
            sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
            if len(data) > 1
            else []
        )
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert _feed(make_parser(), pieces) == whole, f"random split, seed {seed}"
    return whole
