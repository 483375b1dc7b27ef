"""What a sandbox pod's GET /metrics answers: Prometheus' text format (0.0.4, written by prometheus_client's
exposition) with values that follow the image version's behaviour in the registry.

Every value is a pure function of (pod name, image, container start, wall-clock time), so two scrapers that
read the same pod at different moments (the Prometheus stand-in and a real Prometheus) see one consistent
history: counters are integrals of a smooth request rate since the container started (a restart starts them
again at 0, a counter reset), gauges wobble around a per-pod level. Behaviours (sandbox/seed/world.yaml):
  normal    ~0.1-0.5 % of requests answer 500, p99 latency ~150-250 ms
  erroring  ~5 % answer 500
  slow      p99 ~2 s
  leaking   memory grows toward the container's memory limit until the OOM kill (time-scale aware)
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the classic text format this writes
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
ROUTES = (("GET", 0.7), ("POST", 0.3))  # (method, share of the traffic); handler /api/<service>
WOBBLE_PERIOD = 600.0  # seconds: the request rate's slow swing
GC_EVERY = 2.0  # seconds between two garbage collections
MiB = 1 << 20
_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": MiB, "GiB": 1 << 30, "K": 10**3, "M": 10**6, "G": 10**9,
          "Ki": 1 << 10, "Mi": MiB, "Gi": 1 << 30}
Sample = tuple[str, dict[str, str], float]  # (sample name, labels, value)


@dataclass(frozen=True)
class PodModel:
    """The inputs of a pod's metrics: who it is, how its version behaves, when its container started."""

    service: str
    pod: str
    image: str
    behaviours: frozenset[str]
    started: float  # wall-clock seconds of the current container run's start
    memory_limit: float  # bytes (0: none)
    gomemlimit: float  # bytes (0: GOMEMLIMIT unset)
    leak_run: float  # real seconds from start to the OOM kill of a leaking version

    def _unit(self, what: str) -> float:
        """A deterministic number in [0, 1) for this pod and version."""
        digest = hashlib.sha256(f"{self.pod}|{self.image}|{what}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    # ------------------------------------------------------------------ traffic

    @property
    def base_rate(self) -> float:
        return 20.0 + 40.0 * self._unit("rate")  # requests per second

    def requests(self, t: float) -> float:
        """Requests served since the container started: the integral of base*(1 + 0.2 sin(wt + phase))."""
        elapsed = max(t - self.started, 0.0)
        w, phase = 2 * math.pi / WOBBLE_PERIOD, 2 * math.pi * self._unit("phase")
        swing = 0.2 / w * (math.cos(w * self.started + phase) - math.cos(w * (self.started + elapsed) + phase))
        return self.base_rate * (elapsed + swing)

    @property
    def error_ratio(self) -> float:
        if "erroring" in self.behaviours:
            return 0.045 + 0.01 * self._unit("errors")
        return 0.001 + 0.004 * self._unit("errors")

    @property
    def latency(self) -> tuple[float, float]:
        """(median seconds, sigma) of the log-normal latency: p99 = median * exp(2.326 sigma)."""
        if "slow" in self.behaviours:
            return 0.25 + 0.05 * self._unit("median"), 0.9
        return 0.03 + 0.02 * self._unit("median"), 0.7

    # ------------------------------------------------------------------ process

    def heap(self, t: float) -> float:
        limit = self.memory_limit or 512 * MiB
        level = (0.25 + 0.1 * self._unit("heap")) * limit
        if "leaking" in self.behaviours and self.leak_run > 0:
            grown = min(max(t - self.started, 0.0) / self.leak_run, 1.0)
            return level + (0.72 - 0.25) * limit * grown
        return level * (1 + 0.05 * math.sin(2 * math.pi * (t / 300.0 + self._unit("heap-phase"))))

    def samples(self, t: float) -> list[tuple[Metric, list[Sample]]]:
        """The pod's metric families at wall-clock time t."""
        handler = f"/api/{self.service}"
        total = self.requests(t)
        requests: list[Sample] = []
        buckets: list[Sample] = []
        median, sigma = self.latency
        mean = median * math.exp(sigma * sigma / 2)
        for method, share in ROUTES:
            served = total * share
            errors = math.floor(served * self.error_ratio)
            labels = {"method": method, "handler": handler}
            requests.append(("http_requests_total", {"code": "200", **labels}, float(math.floor(served) - errors)))
            requests.append(("http_requests_total", {"code": "500", **labels}, float(errors)))
            count = math.floor(served)
            for le in BUCKETS:
                cdf = 0.5 * math.erfc(-(math.log(le) - math.log(median)) / (sigma * math.sqrt(2)))
                buckets.append(("http_request_duration_seconds_bucket", {**labels, "le": _le(le)},
                                float(math.floor(count * cdf))))
            buckets.append(("http_request_duration_seconds_bucket", {**labels, "le": "+Inf"}, float(count)))
            buckets.append(("http_request_duration_seconds_sum", labels, round(count * mean, 3)))
            buckets.append(("http_request_duration_seconds_count", labels, float(count)))
        elapsed = max(t - self.started, 0.0)
        heap = self.heap(t)
        gcs = math.floor(elapsed / GC_EVERY)
        gc_pause = 0.0002 + 0.0003 * self._unit("gc")
        wobble = math.sin(2 * math.pi * (t / 120.0 + self._unit("goroutine-phase")))
        families: list[tuple[Metric, list[Sample]]] = [
            (Metric("http_requests", "Requests served, by status code, method and handler.", "counter"), requests),
            (Metric("http_request_duration_seconds", "Time to answer a request.", "histogram"), buckets),
            (Metric("go_goroutines", "Number of goroutines that currently exist.", "gauge"),
             [("go_goroutines", {}, float(round(20 + 30 * self._unit("goroutines") + 4 * wobble)))]),
            (Metric("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", "gauge"),
             [("go_memstats_heap_inuse_bytes", {}, float(round(heap)))]),
            (Metric("go_memstats_alloc_bytes", "Number of bytes allocated and still in use.", "gauge"),
             [("go_memstats_alloc_bytes", {}, float(round(heap * 0.85)))]),
            (Metric("go_gc_duration_seconds", "A summary of the pause duration of garbage collection cycles.",
                    "summary"),
             [*(("go_gc_duration_seconds", {"quantile": q}, gc_pause * f)
                for q, f in (("0", 0.4), ("0.25", 0.7), ("0.5", 1.0), ("0.75", 1.4), ("1", 3.0))),
              ("go_gc_duration_seconds_sum", {}, round(gcs * gc_pause * 1.1, 6)),
              ("go_gc_duration_seconds_count", {}, float(gcs))]),
            (Metric("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter"),
             [("process_cpu_seconds_total", {}, round(total * 0.004 + elapsed * 0.01, 2))]),
            (Metric("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge"),
             [("process_resident_memory_bytes", {}, float(round(heap * 1.2 + 12 * MiB)))]),
            (Metric("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge"),
             [("process_start_time_seconds", {}, round(self.started, 2))]),
        ]
        if self.gomemlimit:
            families.append((Metric("go_gc_gomemlimit_bytes", "Go runtime memory limit (GOMEMLIMIT).", "gauge"),
                             [("go_gc_gomemlimit_bytes", {}, self.gomemlimit)]))
        return families

    def flat(self, t: float) -> list[Sample]:
        """Every sample at t, as a scraper of the text would read them."""
        return [s for _family, samples in self.samples(t) for s in samples]

    def exposition(self, t: float) -> str:
        """The text a scrape at t reads (prometheus_client's writer)."""
        return generate_latest(_Families(self.samples(t))).decode()  # type: ignore[arg-type]


class _Families:
    """A one-shot collector registry for generate_latest: yields the families with their samples."""

    def __init__(self, families: list[tuple[Metric, list[Sample]]]) -> None:
        self.families = families

    def collect(self) -> Any:
        for family, samples in self.families:
            for name, labels, value in samples:
                family.add_sample(name, labels, value)
            yield family


def _le(bound: float) -> str:
    return repr(bound)


def parse_quantity(text: str) -> float:
    """'512Mi' -> bytes; '450MiB' (GOMEMLIMIT) too. 0 for what it cannot read."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]i?B?|B)?\s*", str(text))
    if not m:
        return 0.0
    unit = m.group(2) or ""
    return float(m.group(1)) * _UNITS.get(unit, _UNITS.get(unit.removesuffix("B"), 1))


def model_for(pod: dict[str, Any], container: dict[str, Any], image: str, behaviours: set[str],  # noqa: PLR0917
              started: float, leak_run: float) -> PodModel:
    """The PodModel of one container of a pod object."""
    meta = pod.get("metadata") or {}
    limits = ((container.get("resources") or {}).get("limits") or {})
    gomemlimit = next((str(e.get("value", "")) for e in container.get("env") or []
                       if isinstance(e, dict) and e.get("name") == "GOMEMLIMIT"), "")
    return PodModel(
        service=str((meta.get("labels") or {}).get("app", "")),
        pod=str(meta.get("name", "")),
        image=image,
        behaviours=frozenset(behaviours),
        started=started,
        memory_limit=parse_quantity(str(limits.get("memory", ""))),
        gomemlimit=parse_quantity(gomemlimit) if gomemlimit else 0.0,
        leak_run=leak_run,
    )
