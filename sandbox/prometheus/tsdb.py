"""The stand-in's in-memory time-series store: one series per label set, samples appended in time order,
staleness markers as Prometheus writes them, retention by age.

Each series keeps its timestamps (ms) and values in compact arrays, plus a reset-adjusted running value for
counters, so increase() over any window is two binary searches whatever the window's length (a range query
of rate(...[1h]) at 1 s scrapes would otherwise walk 3600 samples per step).
"""

from __future__ import annotations

import bisect
import math
import struct
import threading
from array import array
from collections.abc import Iterable

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]  # Prometheus' staleness marker bits
Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs, __name__ included


def is_stale(value: float) -> bool:
    return math.isnan(value) and struct.pack("<d", value) == struct.pack("<d", STALE_NAN)


class Series:
    __slots__ = ("adjusted", "labels", "last", "offset", "stales", "times", "values")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.times = array("q")  # ms
        self.values = array("d")
        self.adjusted = array("d")  # value + every value lost to counter resets before it
        self.stales = array("i")  # how many staleness markers up to and including this sample
        self.last: float | None = None  # the newest real (not stale) value
        self.offset = 0.0

    def append(self, t_ms: int, value: float) -> None:
        if self.times and t_ms <= self.times[-1]:
            return  # out of order or duplicate: Prometheus rejects it too
        stale = is_stale(value)
        if not stale:
            if self.last is not None and value < self.last:
                self.offset += self.last  # a counter reset: what was counted before still counts
            self.last = value
        self.times.append(t_ms)
        self.values.append(value)
        self.adjusted.append((self.last or 0.0) + self.offset if stale else value + self.offset)
        self.stales.append((self.stales[-1] if self.stales else 0) + (1 if stale else 0))

    def latest_before(self, t_ms: int, lookback_ms: int) -> float | None:
        """The instant value at t: the newest sample in [t - lookback, t], unless it is a staleness marker."""
        i = bisect.bisect_right(self.times, t_ms) - 1
        if i < 0 or self.times[i] < t_ms - lookback_ms:
            return None
        value = self.values[i]
        return None if is_stale(value) else value

    def window(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """Index range [lo, hi) of the samples with start <= t <= end (Prometheus 2.x: both ends closed),
        narrowed to begin and end on real samples (a window of only markers is empty)."""
        lo, hi = bisect.bisect_left(self.times, start_ms), bisect.bisect_right(self.times, end_ms)
        while lo < hi and is_stale(self.values[lo]):
            lo += 1
        while hi > lo and is_stale(self.values[hi - 1]):
            hi -= 1
        return lo, hi

    def real_count(self, lo: int, hi: int) -> int:
        """How many real samples lie in [lo, hi)."""
        if hi <= lo:
            return 0
        return (hi - lo) - (self.stales[hi - 1] - self.stales[lo])

    def points(self, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        lo, hi = self.window(start_ms, end_ms)
        return [(self.times[i], self.values[i]) for i in range(lo, hi) if not is_stale(self.values[i])]

    def trim(self, before_ms: int) -> None:
        cut = bisect.bisect_left(self.times, before_ms)
        if cut:
            del self.times[:cut]
            del self.values[:cut]
            del self.adjusted[:cut]
            del self.stales[:cut]


class TSDB:
    def __init__(self, retention_s: float = 2 * 3600) -> None:
        self.retention_ms = int(retention_s * 1000)
        self.lock = threading.RLock()  # appends and queries; a query holds it for its whole evaluation
        self._series: dict[Labels, Series] = {}
        self._by_name: dict[str, dict[Labels, Series]] = {}

    def append(self, labels: dict[str, str], t_ms: int, value: float) -> None:
        key: Labels = tuple(sorted(labels.items()))
        with self.lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = Series(key)
                self._by_name.setdefault(labels.get("__name__", ""), {})[key] = series
            series.append(t_ms, value)

    def mark_stale(self, keys: Iterable[Labels], t_ms: int) -> None:
        with self.lock:
            for key in keys:
                series = self._series.get(key)
                if series is not None and series.values and not is_stale(series.values[-1]):
                    series.append(t_ms, STALE_NAN)

    def candidates(self, name: str | None) -> Iterable[Series]:
        """Every series, or those of one metric name (the selector's `__name__="..."`)."""
        if name is not None:
            return list(self._by_name.get(name, {}).values())
        return list(self._series.values())

    def compact(self, now_ms: int) -> None:
        """Drop samples past the retention, and series left empty."""
        with self.lock:
            for key, series in list(self._series.items()):
                series.trim(now_ms - self.retention_ms)
                if not series.times:
                    del self._series[key]
                    self._by_name.get(dict(key).get("__name__", ""), {}).pop(key, None)

    def __len__(self) -> int:
        return len(self._series)
