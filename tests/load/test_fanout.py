"""bot/clients/lanes.py: backend calls on long-lived per-backend lanes under one deadline.

No test here depends on how fast this machine is: calls that must not finish block on events the test sets
afterwards, "the lane is full" is waited for (every thread has entered its call), and the deadlines that
must pass are short only where nothing could finish before them anyway.
"""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from bot.clients import lanes as fanout
from bot.clients.lanes import Fanout, gather
from bot.core.errors import BackendUnavailable, DeadlineExceeded

REQUEST = contextvars.ContextVar("request", default="")
PATIENCE = 60.0  # seconds: how long a test waits for something that must happen (far more than it takes)


class Gate:
    """Calls that block until the test opens the gate, counting how many have entered."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self._entered = 0
        self._changed = threading.Condition()

    def call(self) -> str:
        with self._changed:
            self._entered += 1
            self._changed.notify_all()
        self.opened.wait(PATIENCE)
        return "let through"

    @property
    def entered(self) -> int:
        with self._changed:
            return self._entered

    def wait_entered(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self._entered >= count, timeout=PATIENCE), \
                f"only {self._entered} of {count} calls started"


def test_results_and_bot_errors() -> None:
    """Each key gets its own result, or the bot error its call raised."""
    def fail() -> int:
        raise BackendUnavailable("cluster prod unreachable: connection refused")

    results = gather({"fast": lambda: 1, "broken": fail}, deadline=time.monotonic() + PATIENCE,
                     lane_of="test results")
    assert results["fast"] == 1
    assert isinstance(results["broken"], BackendUnavailable)


def test_a_call_running_at_the_deadline_gets_deadline_exceeded() -> None:
    """A call still running when the deadline passes gets DeadlineExceeded, and gather returns without it."""
    gate = Gate()
    try:
        # The call cannot end before the gate opens, which is only after gather returned: however slow this
        # machine, the deadline passes first; a gather that waited for the call would get "let through".
        results = gather({"slow": gate.call}, deadline=time.monotonic() + 0.2, lane_of="test deadline")
        assert isinstance(results["slow"], DeadlineExceeded)
    finally:
        gate.opened.set()


def test_bugs_are_raised() -> None:
    """An exception that is not a bot error is a bug and is raised, not hidden in the results."""
    with pytest.raises(ZeroDivisionError):
        gather({"bug": lambda: 1 // 0}, deadline=time.monotonic() + PATIENCE, lane_of="test bugs")


def test_a_stalled_lane_holds_only_itself() -> None:
    """Every thread of one backend's lane stuck: another backend's call still answers, and the stuck lane's
    calls that never started are cancelled at the deadline, not left queued to run once the lane frees up."""
    stuck = Gate()
    never_ran: list[str] = []
    try:
        # Fill the lane: one stuck call per thread, and wait until each has really started.
        for _ in range(fanout.LANE_THREADS):
            fanout.lane("test stalled").submit(stuck.call)
        stuck.wait_entered(fanout.LANE_THREADS)

        # Another backend's lane is not held: its call answers while every stalled thread is still stuck.
        answered = gather({"other": lambda: "answered"}, deadline=time.monotonic() + PATIENCE,
                          lane_of="test healthy")
        assert answered == {"other": "answered"}
        assert not stuck.opened.is_set()

        # Calls for the full lane cannot start (every thread is stuck until the gate opens below), so each
        # is still queued when its short deadline passes: DeadlineExceeded, and cancelled.
        queued = {f"queued-{index}": (lambda key=f"queued-{index}": never_ran.append(key)) for index in range(5)}
        late = gather(queued, deadline=time.monotonic() + 0.2, lane_of="test stalled")
        assert set(late) == set(queued)
        assert all(isinstance(value, DeadlineExceeded) for value in late.values())
    finally:
        stuck.opened.set()

    # Once the stuck calls return, the lane runs a round that needs every one of its threads at once. Its
    # queue is first in, first out, so by the time all of them have met, each call queued before them was
    # taken off the queue and dealt with: a cancelled one is dropped, one left queued would have run.
    meeting = threading.Barrier(fanout.LANE_THREADS, timeout=PATIENCE)
    round_ = gather(dict.fromkeys(range(fanout.LANE_THREADS), meeting.wait), deadline=time.monotonic() + PATIENCE,
                    lane_of="test stalled")
    assert sorted(round_.values()) == list(range(fanout.LANE_THREADS))  # every thread met the others
    assert never_ran == []
    assert stuck.entered == fanout.LANE_THREADS


def test_calls_added_while_collecting() -> None:
    """A call that needs an earlier answer is added as that answer arrives, without waiting for the rest."""
    slow = threading.Event()
    box: Fanout[str] = Fanout(time.monotonic() + PATIENCE)
    box.submit("test chain", "deployment", lambda: "app=payment")
    box.submit("test chain other", "stalled", lambda: slow.wait(PATIENCE))
    order: list[str] = []
    try:
        for key, value in box:
            order.append(key)
            if key == "deployment":
                box.submit("test chain", "pods", lambda selector=value: f"pods of {selector}")
            if key == "pods":
                assert value == "pods of app=payment"
                slow.set()  # the stalled call can end only now, after the chained call was collected
    finally:
        slow.set()
    assert order == ["deployment", "pods", "stalled"]


def lane_threads(prefix: str) -> int:
    """Live threads of one lane (a lane's threads are named after it: "lane-test-reuse_3")."""
    return sum(thread.name.startswith(prefix + "_") for thread in threading.enumerate())


def test_threads_are_reused_and_context_is_kept() -> None:
    """Many rounds of calls keep reusing the lane's threads, and each call sees its caller's context."""
    rounds = 50
    for round_ in range(rounds):
        REQUEST.set(f"request-{round_}")
        seen = gather(dict.fromkeys(range(8), REQUEST.get), deadline=time.monotonic() + PATIENCE,
                      lane_of="test reuse")
        assert set(seen.values()) == {f"request-{round_}"}
    # 400 calls, at most 8 at a time: a lane that did not reuse its threads would have started one per call
    # (up to its cap of LANE_THREADS). A lane may start a few more than 8 when a round's calls arrive before
    # the previous round's threads have marked themselves idle; it never comes near one per call.
    assert lane_threads("lane-test-reuse") <= 4 * 8 < rounds * 8
