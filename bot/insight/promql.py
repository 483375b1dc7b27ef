"""Every PromQL query svcbot sends, built here and nowhere else. Pure functions returning strings.

Label values (a namespace, a service, a cluster, a pod-name pattern) enter a query only as string literals
made by `string_literal` (Go's escaping: backslash, double quote, newline), and the regex for a version's pods
is RE2-escaped first. Label and metric names come from the catalog only, checked against Prometheus' name
rules there. The queries keep to the subset docs/design-notes.md names (the sandbox's stand-in evaluates that
subset; the agreement test (tests/standins) runs `agreement_queries` through a real Prometheus and the stand-in).

Shapes:
- the error ratio is `1 - ok / all`, not `5xx / all`: a service that never answered a 5xx has no 5xx series
  at all (the ratio would be empty, read as "no data"), while every serving service has non-5xx series;
- a status query is one selector over both the request counter and the latency buckets
  (`{__name__=~"a|b"}`), summed by service, code and le, so one query per environment answers every
  service's error rate and p99 (`bot/insight/metrics.py` does the quantile from the buckets).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")  # metric names (label names: no colon, checked in the catalog)


class PromQLError(ValueError):
    """A name that is not a Prometheus name, or a window that is not a duration."""


@dataclass(frozen=True)
class MetricNames:
    """The metric names a service exposes; defaults follow Prometheus' client and Go's runtime conventions."""

    requests: str = "http_requests_total"  # a counter with a status-code label
    code_label: str = "code"
    duration: str = "http_request_duration_seconds"  # a histogram: _bucket{le}, _sum, _count
    cpu: str = "process_cpu_seconds_total"
    memory: str = "process_resident_memory_bytes"
    heap: str = "go_memstats_heap_inuse_bytes"
    gomemlimit: str = "go_gc_gomemlimit_bytes"
    goroutines: str = "go_goroutines"


@dataclass(frozen=True)
class Scope:
    """Which series a query reads: one namespace (and cluster, for a Prometheus shared by clusters), one
    service or all of them, optionally only pods whose name matches `pod_regex` (a version's pods)."""

    namespace: str
    service: str | None = None
    namespace_label: str = "namespace"
    service_label: str = "app"
    pod_label: str = "pod"
    cluster_label: str | None = None
    cluster: str | None = None
    pod_regex: str | None = None


# --- literals and names ---------------------------------------------------------------------------------

def string_literal(value: str) -> str:
    """A PromQL double-quoted string holding exactly `value` (Go's strconv.Unquote reads it back)."""
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def regex_escape(text: str) -> str:
    """`text` matched literally by RE2 (Prometheus anchors regex matchers itself)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def _name(name: str) -> str:
    if not NAME.match(name):
        raise PromQLError(f"{name!r} is not a Prometheus metric or label name")
    return name


def duration(seconds: float) -> str:
    """A PromQL duration for a window: whole seconds (at least 1s)."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise PromQLError(f"{seconds!r} is not a window")
    return f"{max(1, round(seconds))}s"


def pods_of_replicaset(replicaset: str) -> str:
    """The pod-name regex of one ReplicaSet's pods (`<replicaset>-<5 random chars>`)."""
    return regex_escape(replicaset) + "-[a-z0-9]+"


def matchers(scope: Scope, *extra: str) -> str:
    parts = [f"{_name(scope.namespace_label)}={string_literal(scope.namespace)}"]
    if scope.cluster_label and scope.cluster is not None:
        parts.insert(0, f"{_name(scope.cluster_label)}={string_literal(scope.cluster)}")
    if scope.service is not None:
        parts.append(f"{_name(scope.service_label)}={string_literal(scope.service)}")
    if scope.pod_regex is not None:
        parts.append(f"{_name(scope.pod_label)}=~{string_literal(scope.pod_regex)}")
    parts.extend(extra)
    return ",".join(parts)


def selector(metric: str, scope: Scope, *extra: str) -> str:
    return f"{_name(metric)}{{{matchers(scope, *extra)}}}"


# --- one service (or one version's pods): the metrics verb, verify, the approval message ---------------

def request_rate(scope: Scope, window: float, names: MetricNames = MetricNames()) -> str:
    """Requests per second, all pods together."""
    return f"sum(rate({selector(names.requests, scope)}[{duration(window)}]))"


def error_ratio(scope: Scope, window: float, names: MetricNames = MetricNames()) -> str:
    """The share of requests answered 5xx, 0..1 (see the module's note on `1 - ok / all`)."""
    span = duration(window)
    ok = selector(names.requests, scope, f'{_name(names.code_label)}!~"5.."')
    every = selector(names.requests, scope)
    return f"1 - sum(rate({ok}[{span}])) / sum(rate({every}[{span}]))"


def latency_quantile(scope: Scope, window: float, quantile: float, names: MetricNames = MetricNames()) -> str:
    """A latency quantile in seconds from the duration histogram, all pods together."""
    if not 0 <= quantile <= 1:
        raise PromQLError(f"{quantile!r} is not a quantile")
    buckets = selector(names.duration + "_bucket", scope)
    return f"histogram_quantile({quantile:g}, sum by (le) (rate({buckets}[{duration(window)}])))"


def cpu_cores(scope: Scope, window: float, names: MetricNames = MetricNames()) -> str:
    """CPU in cores of the busiest pod (compared with one pod's limit)."""
    return f"max(rate({selector(names.cpu, scope)}[{duration(window)}]))"


def memory_bytes(scope: Scope, names: MetricNames = MetricNames()) -> str:
    """Resident memory of the largest pod (compared with one pod's limit and GOMEMLIMIT)."""
    return f"max({selector(names.memory, scope)})"


def gomemlimit_bytes(scope: Scope, names: MetricNames = MetricNames()) -> str:
    return f"max({selector(names.gomemlimit, scope)})"


def goroutines(scope: Scope, names: MetricNames = MetricNames()) -> str:
    """Goroutines of the busiest pod."""
    return f"max({selector(names.goroutines, scope)})"


# --- every service of a namespace at once: status ------------------------------------------------------

def status_rates(scope: Scope, window: float, names: MetricNames = MetricNames()) -> str:
    """Per service, the request rate by code and the latency buckets' rates by le, in ONE query: series with
    an `le` label are buckets, the others requests by code (bot/insight/metrics.py reads them)."""
    metric_names = f"{regex_escape(names.requests)}|{regex_escape(names.duration + '_bucket')}"
    inner = f"{{__name__=~{string_literal(metric_names)},{matchers(scope)}}}"
    by = f"{_name(scope.service_label)}, {_name(names.code_label)}, le"
    return f"sum by ({by}) (rate({inner}[{duration(window)}]))"


# --- for the agreement test (real Prometheus vs the stand-in) -------------------------------------------

def agreement_queries(scope: Scope, window: float) -> dict[str, str]:
    """Every query shape svcbot sends, for one scope and window (instant or range alike)."""
    everything = Scope(namespace=scope.namespace, namespace_label=scope.namespace_label,
                       service_label=scope.service_label, cluster_label=scope.cluster_label,
                       cluster=scope.cluster)
    return {
        "request_rate": request_rate(scope, window),
        "error_ratio": error_ratio(scope, window),
        "p50": latency_quantile(scope, window, 0.5),
        "p99": latency_quantile(scope, window, 0.99),
        "cpu_cores": cpu_cores(scope, window),
        "memory_bytes": memory_bytes(scope),
        "gomemlimit_bytes": gomemlimit_bytes(scope),
        "goroutines": goroutines(scope),
        "status_rates": status_rates(everything, window),
    }
