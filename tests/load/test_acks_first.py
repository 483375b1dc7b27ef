"""bot/core/acks.py: command work steps aside while acks are in flight, and never for long."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from load_world import HttpBot

from bot.core import acks
from bot.core.acks import AckTracker


def timed(call: object) -> float:
    started = time.monotonic()
    call()  # type: ignore[operator]
    return time.monotonic() - started


def test_no_acks_no_wait() -> None:
    tracker = AckTracker(max_yield=5.0, quiet=0.05)
    assert timed(tracker.yield_to_acks) < 0.01


def test_waits_for_acks_in_flight_and_the_quiet_after() -> None:
    """A seam reached during an ack goes on only once it is written and no other followed within `quiet`."""
    tracker = AckTracker(max_yield=5.0, quiet=0.1)
    tracker.begin()
    ended = threading.Timer(0.3, tracker.end)
    ended.start()
    try:
        waited = timed(tracker.yield_to_acks)
    finally:
        ended.join()
    assert 0.35 <= waited < 2.0  # 0.3 s of ack, then the 0.1 s quiet period
    assert tracker.in_flight() == 0


def test_a_burst_keeps_work_waiting_but_never_past_the_cap() -> None:
    """Acks arriving one after another hold a seam for the burst, and for no longer than `max_yield`."""
    tracker = AckTracker(max_yield=0.5, quiet=0.1)
    stop = threading.Event()

    def burst() -> None:
        while not stop.is_set():
            with tracker.acking():
                time.sleep(0.01)
            time.sleep(0.02)  # shorter than `quiet`: still one burst

    sender = threading.Thread(target=burst)
    sender.start()
    try:
        time.sleep(0.05)
        waited = timed(tracker.yield_to_acks)
    finally:
        stop.set()
        sender.join()
    assert 0.45 <= waited < 2.0


def test_an_ack_that_never_ends_stops_counting() -> None:
    """An ack whose end was lost (a dropped connection) stops holding work once Slack's window has passed."""
    tracker = AckTracker(max_yield=5.0, quiet=0.01, window=0.2)
    tracker.begin()
    assert tracker.in_flight() == 1
    assert timed(tracker.yield_to_acks) < 1.0
    assert tracker.in_flight() == 0


def test_http_acks_are_counted_until_written(start_bot: Callable[..., HttpBot]) -> None:
    """A signed request counts as an ack in flight while Bolt handles it, and none is left counted after."""
    bot = start_bot()
    seen: list[int] = []

    def count(next: Callable[[], object]) -> object:
        seen.append(acks.in_flight())
        return next()

    bot.running.bot.app.middleware(count)
    for _ in range(3):
        assert bot.send("help").status == 200
    assert len(seen) == 3
    assert min(seen) >= 1
    assert acks.in_flight() == 0
