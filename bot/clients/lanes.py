"""Backend calls in parallel, on long-lived lanes: one bounded thread pool per backend, shared by every command.

Why lanes rather than a thread pool per command: `concurrent.futures` starts a pool's threads while holding
one process-wide lock, and a new thread needs the interpreter lock to start, so under load every `submit`
in the process (Socket Mode's ack dispatch included) queued behind thread starts. Measured with 50 clients
sending `/svc status payment` over Socket Mode: ack p50 0.9 s with a pool per command, under 0.1 s with
lanes (bench/ack_bench.py). Lanes also bound how many requests this process has in flight at one backend,
and a stalled cluster fills only its own lane.

Lane threads only make backend calls; they never wait on other lanes' calls, so lanes cannot deadlock.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from bot.core import acks
from bot.core.errors import BotError, DeadlineExceeded

K = TypeVar("K")
T = TypeVar("T")

# The most requests one process has in flight at one backend. A cap for bursts, not a working limit: a lane
# makes a thread only when none of its threads is idle, and `status` asks one cluster for up to 8 things at
# once, so 32 busy workers (bench/ack_bench.py) fill a lane to 256 only while that cluster stalls.
LANE_THREADS = 256

_lanes: dict[str, ThreadPoolExecutor] = {}
_lanes_lock = threading.Lock()


def lane(name: str) -> ThreadPoolExecutor:
    """The lane for backend `name` ("cluster prod", "loki"), made on first use and kept for the process."""
    with _lanes_lock:
        executor = _lanes.get(name)
        if executor is None:
            executor = _lanes[name] = ThreadPoolExecutor(max_workers=LANE_THREADS,
                                                         thread_name_prefix=f"lane-{name.replace(' ', '-')}")
        return executor


def _after_acks(call: Callable[[], T]) -> T:
    acks.yield_to_acks()
    return call()


def _outcome(future: Future[Any]) -> Any:
    """A finished call's value, or the BotError it raised; any other exception (a bug) is raised."""
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, BotError):
        return error
    raise error


class Fanout(Generic[K]):
    """Calls on their backends' lanes under one deadline, collected as they finish.

    Iterating yields (key, value or BotError) as calls finish; calls may be added while iterating (a read
    that needs an earlier answer, such as pods by the selector a deployment names), so one stalled backend
    holds back only the keys that depend on it. Calls not finished by the deadline come last, each as
    DeadlineExceeded; they end on their own timeouts, nobody waits for them, and those not started yet are
    cancelled.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._pending: dict[Future[Any], K] = {}
        # Finished calls, in the order they finished. A done-callback per call and one queue: waiting with
        # concurrent.futures.wait(FIRST_COMPLETED) installed a waiter on every pending call for each answer
        # (issue 22's profile: futures and their conditions were a fifth of a status's CPU).
        self._finished: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()

    def submit(self, lane_name: str, key: K, call: Callable[[], Any]) -> None:
        # A copy of the caller's context per call: the request id and user stay on the call's log lines.
        future = lane(lane_name).submit(contextvars.copy_context().run, _after_acks, call)
        self._pending[future] = key
        future.add_done_callback(self._finished.put)

    def __iter__(self) -> Iterator[tuple[K, Any]]:
        while self._pending:
            left = self.deadline - time.monotonic()
            if left <= 0:
                break
            try:
                future = self._finished.get(timeout=left)
            except queue.Empty:
                break
            if future in self._pending:
                yield self._pending.pop(future), _outcome(future)
        late, self._pending = self._pending, {}
        for future, key in late.items():
            future.cancel()
            yield key, DeadlineExceeded("no answer before the deadline")


def gather(calls: Mapping[K, Callable[[], T]], deadline: float, *,
           lane_of: str | Callable[[K], str]) -> dict[K, T | BotError]:
    """Run the calls in parallel on their lanes (`lane_of`: one lane name, or the lane for each key); each
    key gets its result, or the BotError it raised, or DeadlineExceeded when it did not finish by `deadline`.
    Other exceptions (bugs) are re-raised."""
    fanout: Fanout[K] = Fanout(deadline)
    for key, call in calls.items():
        fanout.submit(lane_of if isinstance(lane_of, str) else lane_of(key), key, call)
    return dict(fanout)


def unwrap(result: T | BotError) -> T:
    """A gathered result, or its error raised."""
    if isinstance(result, BotError):
        raise result
    return result


def bind(function: Callable[..., T], *args: Any, **kwargs: Any) -> Callable[[], T]:
    """A call to run later (on a lane)."""
    return lambda: function(*args, **kwargs)
