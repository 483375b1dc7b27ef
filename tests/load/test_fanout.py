"""bot/clients/lanes.py: backend calls on long-lived per-backend lanes under one deadline."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from bot.clients import lanes as fanout
from bot.clients.lanes import Fanout, gather
from bot.core.errors import BackendUnavailable, DeadlineExceeded

REQUEST = contextvars.ContextVar("request", default="")


def test_results_errors_and_deadline() -> None:
    """Each key gets its result or its bot error; a call still running at the deadline gets DeadlineExceeded."""
    def fail() -> int:
        raise BackendUnavailable("cluster prod unreachable: connection refused")

    started = time.monotonic()
    results = gather({"fast": lambda: 1, "broken": fail, "slow": lambda: time.sleep(2)},
                     deadline=time.monotonic() + 0.3, lane_of="test results")
    assert time.monotonic() - started < 1.0
    assert results["fast"] == 1
    assert isinstance(results["broken"], BackendUnavailable)
    assert isinstance(results["slow"], DeadlineExceeded)


def test_bugs_are_raised() -> None:
    """An exception that is not a bot error is a bug and is raised, not hidden in the results."""
    with pytest.raises(ZeroDivisionError):
        gather({"bug": lambda: 1 // 0}, deadline=time.monotonic() + 1, lane_of="test bugs")


def test_a_stalled_lane_holds_only_itself() -> None:
    """Every thread of one backend's lane stuck: another backend's call still answers at once, and the stuck
    lane's calls that never started are cancelled at the deadline, not left queued."""
    release = threading.Event()
    try:
        calls = {f"stuck-{index}": release.wait for index in range(fanout.LANE_THREADS + 5)}
        calls_lane = dict.fromkeys(calls, "test stalled") | {"other": "test healthy"}
        calls["other"] = lambda: "answered"  # type: ignore[assignment]
        started = time.monotonic()
        results = gather(calls, deadline=time.monotonic() + 0.5, lane_of=calls_lane.__getitem__)
        assert time.monotonic() - started < 2.0
        assert results["other"] == "answered"
        stuck = [value for key, value in results.items() if key != "other"]
        assert all(isinstance(value, DeadlineExceeded) for value in stuck)
        ran: list[str] = []
        # The queued calls were cancelled: once the lane is free, a new call runs at once and nothing else does.
        release.set()
        assert gather({"next": lambda: ran.append("next")}, deadline=time.monotonic() + 5,
                      lane_of="test stalled") == {"next": None}
        assert ran == ["next"]
    finally:
        release.set()


def test_calls_added_while_collecting() -> None:
    """A call that needs an earlier answer is added as that answer arrives, without waiting for the rest."""
    slow = threading.Event()
    box: Fanout[str] = Fanout(time.monotonic() + 5)
    box.submit("test chain", "deployment", lambda: "app=payment")
    box.submit("test chain other", "stalled", lambda: slow.wait(3))
    order: list[str] = []
    for key, value in box:
        order.append(key)
        if key == "deployment":
            box.submit("test chain", "pods", lambda selector=value: f"pods of {selector}")
        if key == "pods":
            assert value == "pods of app=payment"
            slow.set()
    assert order == ["deployment", "pods", "stalled"]


def test_threads_are_reused_and_context_is_kept() -> None:
    """Many rounds of calls start no thread beyond the lane's size, and each call sees its caller's context."""
    gather({index: lambda: None for index in range(8)}, deadline=time.monotonic() + 5, lane_of="test reuse")
    before = threading.active_count()
    for round_ in range(50):
        REQUEST.set(f"request-{round_}")
        seen = gather(dict.fromkeys(range(8), REQUEST.get), deadline=time.monotonic() + 5,
                      lane_of="test reuse")
        assert set(seen.values()) == {f"request-{round_}"}
    assert threading.active_count() <= before + 8
