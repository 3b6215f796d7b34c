"""server.edge.guard: each connection closed at the edge is counted, and logged at most once per
reason every LOG_EVERY_SECONDS with the number left unlogged."""

from __future__ import annotations

import logging

import pytest

from server.config import ServerConfig
from server.edge import guard
from server.edge.guard import EdgeGuard


def test_a_flood_of_closes_is_counted_whole_and_logged_once_per_interval(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr("server.edge.guard.time.monotonic", lambda: now[0])
    counted: list[str] = []
    edge = EdgeGuard(ServerConfig(), counted.append)
    with caplog.at_level(logging.WARNING, logger="tokenwire.edge"):
        for _ in range(500):
            edge.closed("head_too_large", ("203.0.113.9", 4000))
        now[0] += guard.LOG_EVERY_SECONDS
        edge.closed("head_too_large", None)
    assert counted == ["head_too_large"] * 501
    assert [r.getMessage() for r in caplog.records] == [
        "closed a connection from 203.0.113.9: " + guard.REASONS["head_too_large"],
        "closed a connection from ?: "
        + guard.REASONS["head_too_large"]
        + " (499 more since the last such line)",
    ]
