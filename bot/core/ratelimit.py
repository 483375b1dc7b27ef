"""Per-user command rate limit (the catalog's settings.rate_limit.per_user), a sliding window in memory."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, user: str) -> float:
        """Count one command for `user`; returns 0 when allowed, else seconds until one more is allowed."""
        now = self._clock()
        with self._lock:
            times = self._seen.setdefault(user, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.limit:
                return max(0.0, self.window - (now - times[0]))
            times.append(now)
            return 0.0


def describe_wait(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    return f"{whole} s" if whole < 120 else f"{math.ceil(whole / 60)} min"
