"""Fault switches of one sandbox cluster: go down, stall, answer 500 or 403."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

MODES = ("down", "stall", "500", "403")
_ALIASES = {"error": "500", "internal": "500", "forbidden": "403", 500: "500", 403: "403", "refused": "down"}


@dataclass(frozen=True)
class Fault:
    mode: str
    seconds: float = 0.0
    resource: str | None = None  # e.g. "deployments" or "pods/proxy"; None = every request
    verb: str | None = None  # e.g. "get", "list", "patch"; None = every verb


class Faults:
    """`set(mode="stall", seconds=5)`, `set(mode="500", resource="deployments", count=2)`, `clear()`.

    down: the cluster's port is closed (connection refused) and open connections are dropped;
    stall: requests wait `seconds` (or until clear()) before being answered normally;
    500 / 403: requests get an InternalError / Forbidden Status.
    `count` limits the fault to that many matching requests (not for down)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._remaining: int | None = None
        self._release = threading.Event()
        self._release.set()
        self._listeners: list[Callable[[Fault | None], None]] = []
        self.hits = 0

    def on_change(self, fn: Callable[[Fault | None], None]) -> None:
        self._listeners.append(fn)

    @property
    def current(self) -> Fault | None:
        return self._fault

    @property
    def remaining(self) -> int | None:
        """How many more requests a counted fault applies to (None: until cleared)."""
        return self._remaining

    @property
    def down(self) -> bool:
        f = self._fault
        return f is not None and f.mode == "down"

    def set(self, mode: str | int, seconds: float = 0.0, *, resource: str | None = None, verb: str | None = None,
            count: int | None = None) -> None:
        m = _ALIASES.get(mode, str(mode))  # type: ignore[call-overload]
        if m not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {MODES}")
        with self._lock:
            self._fault = Fault(m, float(seconds), resource, verb)
            self._remaining = count
            if m == "stall":
                self._release.clear()
            else:
                self._release.set()
        for fn in self._listeners:
            fn(self._fault)

    def clear(self) -> None:
        with self._lock:
            self._fault = None
            self._remaining = None
            self._release.set()
        for fn in self._listeners:
            fn(None)

    def match(self, resource: str, verb: str) -> Fault | None:
        """The fault that applies to this request (consuming one use of a counted fault)."""
        with self._lock:
            f = self._fault
            if f is None or f.mode == "down":
                return f
            if f.resource is not None and f.resource != resource:
                return None
            if f.verb is not None and f.verb != verb:
                return None
            if self._remaining is not None:
                if self._remaining <= 0:
                    return None
                self._remaining -= 1
                if self._remaining == 0:
                    self._fault = None
            self.hits += 1
            return f

    def stall(self, seconds: float) -> None:
        self._release.wait(seconds)
