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
    """With no ack ever, a seam goes on at once: not after the quiet period (5 s), nor the cap (60 s)."""
    tracker = AckTracker(max_yield=60.0, quiet=5.0)
    assert timed(tracker.yield_to_acks) < 2.5  # half the quiet period: however busy the machine, not a wait


def test_waits_for_acks_in_flight_and_the_quiet_after() -> None:
    """A seam reached during an ack goes on only once it is written and no other followed within `quiet`."""
    tracker = AckTracker(max_yield=60.0, quiet=0.1)
    tracker.begin()
    ended_at: list[float] = []

    def end() -> None:
        ended_at.append(time.monotonic())  # noted before the end, so a seam let go by it sees the note
        tracker.end()

    ending = threading.Timer(0.3, end)
    ending.start()
    try:
        waited = timed(tracker.yield_to_acks)
        went_on, ack_ended = time.monotonic(), list(ended_at)
    finally:
        ending.join()
    assert ack_ended, "the seam went on while the ack was still in flight"
    assert went_on - ack_ended[0] >= 0.1  # and not before the quiet period after it
    assert waited < 30.0  # let go by the ack's end, not by the cap (60 s)
    assert tracker.in_flight() == 0


def test_a_burst_keeps_work_waiting_but_never_past_the_cap() -> None:
    """Acks arriving one after another hold a seam for the burst, and for no longer than `max_yield`."""
    # The gaps between acks (20 ms) are far shorter than `quiet` (5 s), so the burst never ends by itself
    # while the seam waits, however the threads are scheduled: only the cap can let the seam go.
    tracker = AckTracker(max_yield=0.5, quiet=5.0)
    stop = threading.Event()
    first = threading.Event()

    def burst() -> None:
        while not stop.is_set():
            with tracker.acking():
                first.set()
                time.sleep(0.01)
            time.sleep(0.02)

    sender = threading.Thread(target=burst)
    sender.start()
    try:
        assert first.wait(30), "the burst did not start"
        waited = timed(tracker.yield_to_acks)
    finally:
        stop.set()
        sender.join()
    assert 0.5 <= waited < 4.0  # the whole cap, then on: not until the burst's quiet (5 s after it ends)


def test_an_ack_that_never_ends_stops_counting() -> None:
    """An ack whose end was lost (a dropped connection) stops holding work once Slack's window has passed."""
    tracker = AckTracker(max_yield=60.0, quiet=0.01, window=0.2)
    tracker.begin()
    assert tracker.in_flight() == 1
    assert timed(tracker.yield_to_acks) < 30.0  # let go when the window passed, not by the cap (60 s)
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
