"""What Prometheus' answers say about a service: panels for /svc metrics, numbers for status, checks for verify.

Queries come from bot/insight/promql.py only; this module runs them (in parallel on the Prometheus lane) and
turns the answers into plain numbers. An empty answer is not an error of Prometheus: it means the service
exposes no such metric (or has no pods/traffic in the window), said per panel by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.clients.lanes import gather
from bot.clients.prometheus import PrometheusClient, Sample
from bot.core.catalog import Catalog, ServiceMetrics
from bot.core.errors import BotError
from bot.insight import promql

JSON = Mapping[str, object]


@dataclass(frozen=True)
class Source:
    """Where one service's metrics in one environment are read: the client, the series' scope, the names."""

    client: PrometheusClient
    scope: promql.Scope
    names: promql.MetricNames


def names_of(metrics: ServiceMetrics) -> promql.MetricNames:
    return promql.MetricNames(**metrics.model_dump())


def scope_of(catalog: Catalog, env: str, service: str | None, cluster_value: str | None,
             pod_regex: str | None = None) -> promql.Scope:
    environment = catalog.environment(env)
    found = catalog.prometheus_for(environment.cluster)
    assert found is not None
    labels = found[0].labels
    return promql.Scope(namespace=environment.namespace, service=service, namespace_label=labels.namespace,
                        service_label=labels.service, pod_label=labels.pod, cluster_label=labels.cluster,
                        cluster=cluster_value, pod_regex=pod_regex)


def source_for(catalog: Catalog, prometheus: Callable[[str], tuple[PrometheusClient, str | None]],
               service: str, env: str, pod_regex: str | None = None) -> Source:
    """`prometheus` is Backends.prometheus (cluster -> client, cluster label value); UserError if none."""
    client, cluster_value = prometheus(catalog.environment(env).cluster)
    return Source(client, scope_of(catalog, env, service, cluster_value, pod_regex),
                  names_of(catalog.service(service).metrics))


# --- histogram quantiles (as Prometheus' histogram_quantile) -------------------------------------------

def histogram_quantile(quantile: float, buckets: Iterable[tuple[float, float]]) -> float:
    """`quantile` of cumulative (upper bound, count) buckets, interpolating linearly within a bucket like
    Prometheus (the +Inf bucket answers the highest finite bound; no observations: NaN)."""
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    total = ordered[-1][1]
    if total <= 0 or math.isnan(total):
        return math.nan
    rank = quantile * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return ordered[-2][0]
            if bound <= 0 and previous_count == 0:
                return bound
            width = count - previous_count
            return previous_bound + (bound - previous_bound) * ((rank - previous_count) / width if width else 0)
        previous_bound, previous_count = bound, count
    return ordered[-2][0]


# --- status: every service of an environment in one query ----------------------------------------------

@dataclass(frozen=True)
class Numbers:
    """A service's traffic now: requests per second, 5xx share (0..1) and p99 seconds (NaN when unknown)."""

    rate: float
    error_ratio: float
    p99: float


def status_numbers(samples: Sequence[Sample], service_label: str, code_label: str) -> dict[str, Numbers]:
    """Per service, from `promql.status_rates`' answer: series with `le` are buckets, the others requests."""
    requests: dict[str, float] = {}
    errors: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    for sample in samples:
        service = sample.labels.get(service_label, "")
        value = sample.last
        if not service or math.isnan(value):
            continue
        le = sample.labels.get("le")
        if le is not None:
            try:
                bound = float(le)
            except ValueError:
                continue
            per = buckets.setdefault(service, {})
            per[bound] = per.get(bound, 0.0) + value
            continue
        requests[service] = requests.get(service, 0.0) + value
        if sample.labels.get(code_label, "").startswith("5"):
            errors[service] = errors.get(service, 0.0) + value
    out: dict[str, Numbers] = {}
    for service in {*requests, *buckets}:
        total = requests.get(service, 0.0)
        ratio = errors.get(service, 0.0) / total if total > 0 else math.nan
        p99 = histogram_quantile(0.99, buckets.get(service, {}).items())
        out[service] = Numbers(rate=total, error_ratio=ratio, p99=p99)
    return out


# --- the metrics verb's panels ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Series:
    name: str  # "p50", "p99", "error %"...
    points: tuple[tuple[float, float], ...]  # (unix seconds, value), NaN dropped


@dataclass(frozen=True)
class Panel:
    """One chart panel: its series, the unit its values are in, the limit lines to draw, and why it is empty."""

    key: str
    title: str
    unit: str  # "req/s", "%", "s", "cores", "bytes", ""
    series: tuple[Series, ...]
    limits: tuple[tuple[str, float], ...] = ()  # (label, value): CPU limit, memory limit, GOMEMLIMIT
    missing: str = ""  # why there is no data (no such metric, Prometheus failed)


# key -> (title, unit, [(series name, query builder)])
def panel_queries(source: Source, window: float) -> dict[str, tuple[str, str, list[tuple[str, str]]]]:
    scope, names = source.scope, source.names
    return {
        "requests": ("Request rate", "req/s", [("requests", promql.request_rate(scope, window, names))]),
        "errors": ("Errors", "%", [("5xx", promql.error_ratio(scope, window, names))]),
        "latency": ("Latency", "s", [("p50", promql.latency_quantile(scope, window, 0.5, names)),
                                     ("p99", promql.latency_quantile(scope, window, 0.99, names))]),
        "cpu": ("CPU, busiest pod", "cores", [("cpu", promql.cpu_cores(scope, window, names))]),
        "memory": ("Memory, largest pod", "bytes", [("rss", promql.memory_bytes(scope, names)),
                                                     ("GOMEMLIMIT", promql.gomemlimit_bytes(scope, names))]),
        "goroutines": ("Goroutines, busiest pod", "", [("goroutines", promql.goroutines(scope, names))]),
    }


METRIC_OF = {"requests": "requests", "errors": "requests", "latency": "duration", "cpu": "cpu",
             "memory": "memory", "goroutines": "goroutines"}


def panel_calls(source: Source, *, start: float, end: float, step: float, window: float,
                deadline: float) -> dict[tuple[str, str], Callable[[], list[Sample]]]:
    """One range query per series of every panel, keyed (panel, series), to run at once on the Prometheus lane
    (`bot.clients.lanes.gather`, with whatever else the command reads)."""
    return {(key, name): _range_call(source.client, query, start, end, step, deadline)
            for key, (_title, _unit, queries) in panel_queries(source, window).items() for name, query in queries}


def panels_from(source: Source, window: float, answers: Mapping[Any, Any]) -> tuple[Panel, ...]:
    """The panels from `panel_calls`' answers (each a list of samples or the BotError it raised)."""
    panels = []
    for key, (title, unit, queries) in panel_queries(source, window).items():
        series: list[Series] = []
        problems: list[str] = []
        for name, _query in queries:
            answer = answers[(key, name)]
            if isinstance(answer, BotError):
                problems.append(answer.message)
                continue
            assert isinstance(answer, list)
            points = tuple((t, v * 100 if unit == "%" else v) for sample in answer[:1] for t, v in sample.points
                           if math.isfinite(v))
            if points:
                series.append(Series(name, points))
        missing = ""
        if not series:
            missing = problems[0] if problems else _no_data(source.names, key)
        panels.append(Panel(key=key, title=title, unit=unit, series=tuple(series), missing=missing))
    return tuple(panels)


def _no_data(names: promql.MetricNames, key: str) -> str:
    metric = getattr(names, METRIC_OF[key]) + ("_bucket" if key == "latency" else "")
    if key in {"errors", "latency", "requests"}:
        return f"no data: no {metric} series for this service in the window (no such metric, or no traffic)"
    return f"no data: the service exposes no {metric} (services.<name>.metrics names the metric it does expose)"


def fetch_panels(source: Source, *, start: float, end: float, step: float, window: float,
                 deadline: float) -> tuple[Panel, ...]:
    """Every panel over [start, end], all queries at once on the Prometheus lane."""
    answers = gather(panel_calls(source, start=start, end=end, step=step, window=window, deadline=deadline),
                     deadline, lane_of=source.client.lane)
    return panels_from(source, window, answers)


def _range_call(client: PrometheusClient, query: str, start: float, end: float, step: float,  # noqa: PLR0917
                deadline: float) -> Callable[[], list[Sample]]:
    return lambda: client.query_range(query, start=start, end=end, step=step, deadline=deadline)


def with_limits(panel: Panel, limits: Sequence[tuple[str, float]]) -> Panel:
    return Panel(panel.key, panel.title, panel.unit, panel.series, tuple(limits), panel.missing)


# --- trends and windows ------------------------------------------------------------------------------------

def trend(points: Sequence[tuple[float, float]]) -> str:
    """'rising', 'falling' or 'steady': the last third's mean against the first third's (±10 %)."""
    values = [value for _t, value in points if math.isfinite(value)]
    if len(values) < 3:
        return "steady"
    third = max(1, len(values) // 3)
    first, last = sum(values[:third]) / third, sum(values[-third:]) / third
    scale = max(abs(first), abs(last), 1e-9)
    if (last - first) / scale > 0.10:
        return "rising"
    if (first - last) / scale > 0.10:
        return "falling"
    return "steady"


def range_step(since: float, points: int = 60) -> float:
    """A step giving about `points` points over `since` seconds (whole seconds, at least 1)."""
    return float(max(1, math.ceil(since / points)))


def rate_window(step: float, minimum: float = 60.0) -> float:
    """The rate() window for a step: at least `minimum` (four scrapes of 15 s) and two steps."""
    return max(minimum, 2 * step)


# --- Kubernetes facts the panels are compared with ----------------------------------------------------

def parse_quantity(value: object) -> float | None:
    """A Kubernetes quantity ('500m', '1', '256Mi', '1G') as a number (cores or bytes)."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    text = str(value).strip()
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024.0, "Mi": 1024.0 ** 2,
                "Gi": 1024.0 ** 3, "Ti": 1024.0 ** 4}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * suffixes[suffix]
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None


def container_limits(deployment: JSON, container: str) -> dict[str, float]:
    """'cpu' (cores), 'memory' (bytes), 'gomemlimit' (bytes, from the GOMEMLIMIT env) of one container."""
    spec = deployment.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    out: dict[str, float] = {}
    for item in (pod or {}).get("containers") or []:
        if not isinstance(item, dict) or item.get("name") != container:
            continue
        limits = (item.get("resources") or {}).get("limits") or {}
        for key in ("cpu", "memory"):
            value = parse_quantity(limits.get(key))
            if value is not None:
                out[key] = value
        for env in item.get("env") or []:
            if isinstance(env, dict) and env.get("name") == "GOMEMLIMIT":
                value = parse_quantity(str(env.get("value", "")).replace("B", ""))
                if value is not None:
                    out["gomemlimit"] = value
    return out


def restarts(pods: Iterable[JSON]) -> int:
    total = 0
    for pod in pods:
        status = pod.get("status")
        for item in (status.get("containerStatuses") or []) if isinstance(status, dict) else []:
            count = item.get("restartCount") if isinstance(item, dict) else None
            total += count if isinstance(count, int) else 0
    return total


# --- status: one query per environment -------------------------------------------------------------------

STATUS_WINDOW = 300.0  # the last 5 minutes: what "now" means for status' numbers


def traffic_call(catalog: Catalog, prometheus: Callable[[str], tuple[PrometheusClient, str | None]], env: str,
                 services: Sequence[str], deadline: float) -> tuple[str, Callable[[], dict[str, Numbers]]] | None:
    """(lane, call) answering every `services`' numbers in `env` with one query (one per distinct set of metric
    names, when services name theirs differently); None when no Prometheus holds the environment's cluster."""
    environment = catalog.environment(env)
    if catalog.prometheus_for(environment.cluster) is None:
        return None
    client, cluster_value = prometheus(environment.cluster)
    one = services[0] if len(services) == 1 else None
    scope = scope_of(catalog, env, one, cluster_value)
    by_names: dict[promql.MetricNames, list[str]] = {}
    for name in services:
        by_names.setdefault(names_of(catalog.service(name).metrics), []).append(name)

    def call() -> dict[str, Numbers]:
        out: dict[str, Numbers] = {}
        for names, members in by_names.items():
            samples = client.query(promql.status_rates(scope, STATUS_WINDOW, names), deadline=deadline)
            found = status_numbers(samples, scope.service_label, names.code_label)
            out.update({name: found[name] for name in members if name in found})
        return out

    return client.lane, call


def traffic_text(numbers: Numbers) -> str:
    """'0.31 % errors · p99 180 ms · 12.3 req/s'."""
    errors = f"{numbers.error_ratio * 100:.2f} % errors" if math.isfinite(numbers.error_ratio) else "errors n/a"
    p99 = f"p99 {numbers.p99 * 1000:.0f} ms" if math.isfinite(numbers.p99) else "p99 n/a"
    return f"{errors} · {p99} · {numbers.rate:.1f} req/s"


def current_traffic_line(catalog: Catalog, prometheus: Callable[[str], tuple[PrometheusClient, str | None]],
                         service: str, env: str, *, deadline: float) -> str:
    """'Current version in prod (last 5m): 0.31 % errors · p99 180 ms · 12.3 req/s' for the approver's
    baseline; '' without a Prometheus, a why when it failed (an approval message never waits on it long)."""
    try:
        found = traffic_call(catalog, prometheus, env, [service], deadline)
        if found is None:
            return ""
        numbers = found[1]().get(service)
    except BotError as exc:
        return f"Current version in {env}: no traffic numbers ({exc.message})"
    if numbers is None:
        return f"Current version in {env}: no request metrics in Prometheus"
    return f"Current version in {env} (last 5m): {traffic_text(numbers)}"
