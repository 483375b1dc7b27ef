"""The stand-in's in-memory time-series store: one series per label set, samples appended in time order,
staleness markers as Prometheus writes them, retention by age.

Each series keeps its timestamps and values in compact arrays (12 bytes a sample) and its counter resets aside,
so increase() over any window is a few binary searches whatever the window's length (a range query of
rate(...[1h]) at 1 s scrapes would otherwise walk 3600 samples per step).
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
    """Samples of one series: ms timestamps as 32-bit offsets from `base`, values as doubles (12 bytes a
    sample). Counter resets and staleness markers are rare, so they are kept aside in short lists: the
    running total lost to resets up to each reset, and the markers' timestamps."""

    __slots__ = ("base", "labels", "last", "offset", "resets", "stale_times", "times", "values")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.base = 0  # ms; times hold t - base
        self.times = array("i")
        self.values = array("d")
        self.resets: list[tuple[int, float]] = []  # (t ms of the sample after a reset, offset from then on)
        self.stale_times: list[int] = []  # ms of the staleness markers, ascending
        self.last: float | None = None  # the newest real (not stale) value
        self.offset = 0.0

    def t(self, i: int) -> int:
        return self.base + self.times[i]

    def append(self, t_ms: int, value: float) -> None:
        if not self.times:
            self.base = t_ms
        elif t_ms <= self.t(len(self.times) - 1):
            return  # out of order or duplicate: Prometheus rejects it too
        if t_ms - self.base >= 2**31 - 1:
            self._rebase(t_ms)
        if is_stale(value):
            self.stale_times.append(t_ms)
        else:
            if self.last is not None and value < self.last:
                self.offset += self.last  # a counter reset: what was counted before still counts
                self.resets.append((t_ms, self.offset))
            self.last = value
        self.times.append(t_ms - self.base)
        self.values.append(value)

    def _rebase(self, t_ms: int) -> None:
        new_base = self.t(0) if self.times else t_ms
        shift = new_base - self.base
        self.times = array("i", (x - shift for x in self.times))
        self.base = new_base

    def adjusted(self, i: int) -> float:
        """The value at index i plus everything lost to counter resets up to it (increase = a difference)."""
        t_ms = self.t(i)
        k = bisect.bisect_right(self.resets, (t_ms, math.inf)) - 1
        return self.values[i] + (self.resets[k][1] if k >= 0 else 0.0)

    def latest_before(self, t_ms: int, lookback_ms: int) -> float | None:
        """The instant value at t: the newest sample in [t - lookback, t], unless it is a staleness marker."""
        i = bisect.bisect_right(self.times, t_ms - self.base) - 1
        if i < 0 or self.t(i) < t_ms - lookback_ms:
            return None
        value = self.values[i]
        return None if is_stale(value) else value

    def window(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """Index range [lo, hi) of the samples with start <= t <= end (Prometheus 2.x: both ends closed),
        narrowed to begin and end on real samples (a window of only markers is empty)."""
        lo = bisect.bisect_left(self.times, start_ms - self.base)
        hi = bisect.bisect_right(self.times, end_ms - self.base)
        if self.stale_times:
            while lo < hi and is_stale(self.values[lo]):
                lo += 1
            while hi > lo and is_stale(self.values[hi - 1]):
                hi -= 1
        return lo, hi

    def real_count(self, lo: int, hi: int) -> int:
        """How many real samples lie in [lo, hi)."""
        if hi <= lo:
            return 0
        if not self.stale_times:
            return hi - lo
        a = bisect.bisect_left(self.stale_times, self.t(lo))
        b = bisect.bisect_right(self.stale_times, self.t(hi - 1))
        return (hi - lo) - (b - a)

    def points(self, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        lo, hi = self.window(start_ms, end_ms)
        return [(self.t(i), self.values[i]) for i in range(lo, hi) if not is_stale(self.values[i])]

    def trim(self, before_ms: int) -> None:
        cut = bisect.bisect_left(self.times, before_ms - self.base)
        if cut:
            del self.times[:cut]
            del self.values[:cut]
            self.stale_times = [t for t in self.stale_times if t >= before_ms]


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
