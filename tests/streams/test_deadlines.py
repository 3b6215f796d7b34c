"""The three timeouts (protocol 6) on a fake clock: the times in, the deadline that comes first out."""

from __future__ import annotations

import pytest

from server.streams.deadlines import Deadline, Deadlines

T0 = 1000.0  # when the stream was accepted, on the fake clock
TIMEOUTS = Deadlines(total=600.0, first_token=60.0, idle=30.0)


def next_deadline(
    deadlines: Deadlines = TIMEOUTS,
    *,
    first_token_at: float | None = None,
    last_event_at: float = T0,
    waiting_for_reader: bool = False,
) -> tuple[float, Deadline]:
    return deadlines.next(T0, first_token_at, last_event_at, waiting_for_reader=waiting_for_reader)


def test_before_the_first_token_the_first_token_timeout_counts_from_acceptance() -> None:
    assert next_deadline() == (T0 + 60, "first_token")
    # Events without text (usage, a failed try) do not move it.
    assert next_deadline(last_event_at=T0 + 50) == (T0 + 60, "first_token")


def test_after_the_first_token_the_idle_timeout_counts_from_the_last_event() -> None:
    assert next_deadline(first_token_at=T0 + 5, last_event_at=T0 + 5) == (T0 + 35, "idle")
    assert next_deadline(first_token_at=T0 + 5, last_event_at=T0 + 90) == (T0 + 120, "idle")


def test_the_idle_timeout_may_come_before_the_first_token_one_would_have() -> None:
    deadlines = Deadlines(total=600.0, first_token=60.0, idle=1.0)
    assert next_deadline(deadlines, first_token_at=T0 + 2, last_event_at=T0 + 2) == (T0 + 3, "idle")


@pytest.mark.parametrize("first_token_at", [None, T0 + 1])
def test_the_total_caps_every_other_timeout(first_token_at: float | None) -> None:
    deadlines = Deadlines(total=600.0, first_token=900.0, idle=30.0)
    late = next_deadline(deadlines, first_token_at=first_token_at, last_event_at=T0 + 590)
    assert late == (T0 + 600, "total")


@pytest.mark.parametrize("first_token_at", [None, T0 + 1])
def test_waiting_for_a_reader_pauses_all_but_the_total(first_token_at: float | None) -> None:
    assert next_deadline(first_token_at=first_token_at, waiting_for_reader=True) == (T0 + 600, "total")


def test_the_idle_timeout_counts_again_from_the_end_of_the_wait() -> None:
    # The stream records the end of a wait for its reader as an event.
    waited_until = T0 + 400
    assert next_deadline(first_token_at=T0 + 1, last_event_at=waited_until) == (waited_until + 30, "idle")


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("first_token", "no first token within 60 s"),
        ("idle", "no data from upstream for 30 s"),
        ("total", "stream exceeded 600 s in total"),
    ],
)
def test_the_messages_name_the_timeout_that_fired(which: Deadline, message: str) -> None:
    assert TIMEOUTS.message(which) == message


def test_the_messages_show_fractions_of_a_second_as_configured() -> None:
    deadlines = Deadlines(total=0.5, first_token=0.25, idle=1.5)
    assert [deadlines.message(w) for w in ("first_token", "idle", "total")] == [
        "no first token within 0.25 s",
        "no data from upstream for 1.5 s",
        "stream exceeded 0.5 s in total",
    ]
