"""A circuit breaker per backend (each cluster, Loki).

After `threshold` calls in a row fail to reach a backend, the breaker opens: calls fail at once with
"cluster prod unreachable since 14:02 UTC (3 failures)" instead of each waiting for its timeouts, which
keeps `status all` and the worker pool fast while a cluster is down. After `reset_after` seconds one call
is let through (half-open): success closes the breaker, failure opens it again. State is in /metrics.
One command makes several calls at once, so one bad moment can open it: the short reset (15 s) keeps a
blip cheap while a cluster that stays down costs each command nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from bot.core import metrics
from bot.core.errors import BackendUnavailable

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
_STATE_NAMES = {CLOSED: "closed", HALF_OPEN: "half-open", OPEN: "open"}


class CircuitBreaker:
    def __init__(self, name: str, *, threshold: int = 3, reset_after: float = 15.0, probe_limit: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.name = name  # "cluster prod", "Loki"
        self.threshold = threshold
        self.reset_after = reset_after
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._first_failure: float | None = None  # wall clock, for the message
        self._opened_at = 0.0
        self._probing = False
        self._probe_started = 0.0
        # Every client call has a total deadline (bot/clients/deadlines.py), so a probe ends; should one
        # still outlive this, it counts as failed and the next call is the new probe.
        self.probe_limit = probe_limit
        self._gauge = metrics.CIRCUIT_STATE.labels(backend=name)
        self._gauge.set(CLOSED)

    @property
    def state(self) -> str:
        return _STATE_NAMES[self._state]

    def before_call(self) -> None:
        """Raise BackendUnavailable at once while open; let one probe through when it is time."""
        with self._lock:
            if self._state == CLOSED:
                return
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_after:
                self._set(HALF_OPEN)
            if self._state == HALF_OPEN and self._probing and self._clock() - self._probe_started > self.probe_limit:
                self._probing = False  # the probe outlived any deadline: it failed, whatever it says later
            if self._state == HALF_OPEN and not self._probing:
                self._probing = True
                self._probe_started = self._clock()
                return
            metrics.CIRCUIT_REJECTED.labels(backend=self.name).inc()
            raise BackendUnavailable(self.describe(), retry_after=self._retry_in())

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._first_failure = None
            self._probing = False
            self._set(CLOSED)

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._first_failure is None:
                self._first_failure = self._wall()
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                self._opened_at = self._clock()
                self._probing = False
                self._set(OPEN)

    def describe(self) -> str:
        since = self._first_failure if self._first_failure is not None else self._wall()
        when = dt.datetime.fromtimestamp(since, tz=dt.UTC).strftime("%H:%M UTC")
        return f"{self.name} unreachable since {when} ({self._failures} failures in a row); not retrying yet"

    def _retry_in(self) -> float:
        return max(0.0, self.reset_after - (self._clock() - self._opened_at))

    def _set(self, state: int) -> None:
        self._state = state
        self._gauge.set(state)
