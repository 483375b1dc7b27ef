"""Total deadlines for HTTP calls made through urllib3 (the Kubernetes client, and requests for Loki).

urllib3's read timeout bounds each wait for bytes, not a call: a server that sends one byte a second holds a
call forever (one slow-drip answer kept Loki's circuit breaker half-open for 20 minutes). Here a call runs
inside `total_deadline(deadline)`; the connections it uses register with that scope, and when the deadline
passes a watchdog thread shuts their sockets down, so the blocked read ends at once (end of stream) and the
client reports the backend by name. `DeadlineExpired` tells the clients why the connection broke.

Wiring: `install(pool_manager)` makes a urllib3 PoolManager build its pools with connections that register
(the Kubernetes ApiClient's pool manager; requests' through `DeadlineAdapter`). Connections used outside a
scope behave exactly as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection

SLACK_SECONDS = 0.05  # how late after its deadline a stalled call is cut, at most (plus scheduling)


class Scope:
    """One call's deadline and the connections it used."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.done = False
        self._lock = threading.Lock()
        self._connections: list[Any] = []

    def add(self, connection: Any) -> None:
        with self._lock:
            if not self.expired:
                self._connections.append(connection)
                return
        _shut(connection)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            connections, self._connections = self._connections, []
        for connection in connections:
            _shut(connection)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._connections = []


def _shut(connection: Any) -> None:
    """End the connection's stream under whoever is reading it (the plain socket, under any TLS layer)."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("svcbot_total_deadline", default=None)


class _Watchdog:
    """One thread for the whole process: expires scopes whose deadline passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Scope]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, scope: Scope) -> None:
        with self._cond:
            heapq.heappush(self._heap, (scope.deadline, next(self._order), scope))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadline-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                scope = heapq.heappop(self._heap)[2]
            scope.expire()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def total_deadline(deadline: float) -> Iterator[Scope]:
    """Calls inside end by `deadline` (a time.monotonic() value): their sockets are shut down then. Nested
    scopes with a later deadline reuse the outer one."""
    outer = _current.get()
    if outer is not None and not outer.done and outer.deadline <= deadline:
        yield outer
        return
    scope = Scope(deadline)
    token = _current.set(scope)
    _WATCHDOG.watch(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
        scope.finish()


def expired() -> bool:
    """True when the current call's total deadline has passed (its connection was cut for that)."""
    scope = _current.get()
    return scope is not None and (scope.expired or time.monotonic() >= scope.deadline)


class DeadlineExpired(TimeoutError):
    """A connection was about to be used after its call's total deadline."""


def _register(connection: Any) -> None:
    scope = _current.get()
    if scope is None:
        return
    if scope.expired or time.monotonic() >= scope.deadline:
        raise DeadlineExpired("the call's total deadline passed")
    scope.add(connection)


class DeadlineHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _register(self)
        super().connect()
        if expired():  # the deadline passed while connecting: nothing may be read on this one
            _shut(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)
        super().request(*args, **kwargs)


class DeadlineHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _register(self)
        super().connect()
        if expired():
            _shut(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self)
        super().request(*args, **kwargs)


class DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = DeadlineHTTPConnection


class DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection


def install(pool_manager: PoolManager) -> None:
    """Make `pool_manager` build pools whose connections honour total deadlines (before its first request)."""
    pool_manager.pool_classes_by_scheme = {"http": DeadlineHTTPConnectionPool,
                                           "https": DeadlineHTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections honour `total_deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        install(self.poolmanager)


# --- the command's deadline, for calls that do not take one as an argument ----------------------------------

_command_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("svcbot_command_deadline",
                                                                                 default=None)


@contextlib.contextmanager
def command_deadline(deadline: float) -> Iterator[None]:
    """While a command runs (bot/dispatch/dispatcher.py): backends whose calls do not take the deadline as an
    argument (the store, Slack user-group lookups) cut their waits to it (`remaining`)."""
    token = _command_deadline.set(deadline)
    try:
        yield
    finally:
        _command_deadline.reset(token)


def remaining(default: float) -> float:
    """Seconds a wait may take: `default`, or less when the running command's deadline is closer (0 when it
    has passed). Outside a command (deploy runs, deliveries, background work): `default`."""
    deadline = _command_deadline.get()
    if deadline is None:
        return default
    return max(0.0, min(default, deadline - time.monotonic()))


def command_deadline_set() -> bool:
    return _command_deadline.get() is not None
