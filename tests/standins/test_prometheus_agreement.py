"""The real engine judges the stand-in: a real Prometheus (Debian's 2.42, `SVCBOT_TEST_PROMETHEUS`, set by
.ci/run) scrapes the sandbox's pods with the DIR/prometheus.yml svcbot sandbox writes (through the API server's
pod proxy, admin token, sandbox CA, targets from http_sd), while the stand-in scrapes the same pods; then the
same queries, instant and range, over several services, windows and steps, go to both, and the answers must
agree. Skipped outside CI without the binary (with the reason); a failure under CI.

Tolerance, and why: both engines read the same deterministic counters, but at different moments (each
scrapes every second, in its own phase). A rate over a window W then differs by the counters' integer
steps at the window's edges and by rate()'s extrapolation over a different sub-interval: at 20-60 requests/s
a pod and W >= 10 s that is a few percent. Agreement is |a - b| <= REL * max(|a|, |b|) + ABS, with REL 10 %
for rates, increases and ratios and ABS 8 counts over the window (for rate(), 8 / W per second; 0.01 for a
ratio): a series that counts a few events per window (a narrow latency bucket, the 500s of a healthy version)
differs by one event at either end of the window, which no relative slack covers, and the answers sum up to 6
such series (3 pods x 2 methods; 4 counts apart seen); 15 % for quantiles, or the next bucket
(histogram_quantile interpolates inside the bucket where the rank falls: when the rank sits at a bucket's
edge, one count more or less puts it in the bucket on the other side); 2 % (ABS 1) for gauges. Label
sets must match exactly, and a range query's steps too.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from bot.insight import promql
from sandbox.kube import KubeSandbox
from sandbox.kube.sim.metrics import BUCKETS
from sandbox.prometheus import PrometheusSandbox

BINARY_VARIABLE = "SVCBOT_TEST_PROMETHEUS"
WINDOWS = (10, 20)  # seconds: the rate windows (the data must cover window + the range queries' span)
SPAN = 8  # seconds a range query covers
COUNT_SLACK = 8.0  # counts a window: a sum of up to 6 counters, each one event more or less at an end
SETTLE = max(WINDOWS) + SPAN + 3  # seconds of data both need after the rollout, before the queries


def _binary() -> str:
    path = os.environ.get(BINARY_VARIABLE) or shutil.which("prometheus") or ""
    reason = "" if path and os.access(path, os.X_OK) else (
        f"{BINARY_VARIABLE} is not set and no prometheus on PATH (.ci/run installs Debian's prometheus and sets it)")
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must judge the Prometheus stand-in with a real Prometheus: {reason}")
        pytest.skip(f"no real Prometheus: {reason}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Both:
    real: str
    standin: str
    kube: KubeSandbox
    at: float = 0.0  # the instant every query is evaluated at
    compared: int = 0  # values compared so far (an empty answer on both sides compares nothing)

    def get(self, base: str, path: str, params: dict[str, Any]) -> Any:
        r = requests.get(base + path, params=params, timeout=15)
        body = r.json()
        assert r.status_code == 200, f"{base}: {body}"
        assert body["status"] == "success"
        return body["data"]


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _count(base: str, query: str) -> int:
    body = requests.get(base + "/api/v1/query", params={"query": query}, timeout=5).json()
    result = body["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


@pytest.fixture(name="both", scope="module")
def fixture_both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Both]:
    binary = _binary()
    directory = tmp_path_factory.mktemp("prometheus-agreement")
    with KubeSandbox(time_scale=0.05) as kube:
        kube.start()
        standin = PrometheusSandbox(kube, interval=1.0).start()
        config = standin.write_config(directory, interval=1.0)
        port = _free_port()
        log = (directory / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        both = Both(f"http://127.0.0.1:{port}", standin.url, kube)
        try:
            _wait("the real Prometheus to be ready", lambda: requests.get(
                both.real + "/-/ready", timeout=2).status_code == 200 or proc.poll() is not None, 30)
            assert proc.poll() is None, (directory / "prometheus.log").read_text()[-2000:]
            # a rollout while both scrape: staging's payment goes erroring (1.5.4, with a GOMEMLIMIT), dev's
            # slow (1.5.5); the real Prometheus must find the new pods through http_sd
            ca = str(kube.auth.write_ca(directory / "ca.pem"))
            # the seed's crash-looping pod lives 75 ms at a time: one scraper catches it alive, the other not;
            # deleted, its replacement (without the seed's fault) runs like the others
            for pod in kube.pod_names().get(("prod", "inventory/crashing"), []):
                _delete_pod(kube, ca, "prod", pod)
            _set_image(kube, ca, "staging", "registry.example.com/payment:1.5.4", gomemlimit="400MiB")
            _set_image(kube, ca, "dev", "registry.example.com/payment:1.5.5")
            for base in (both.real, both.standin):
                _wait(f"{base} to scrape the rollout's pods", lambda base=base: _count(
                    base, 'count(up{app="payment",namespace=~"dev|staging"} == 1)') == 3
                    and _count(base, 'count(go_gc_gomemlimit_bytes{namespace="staging"})') == 2
                    and _count(base, 'count(up{app="inventory",namespace="prod"})') == 3
                    and _count(base, 'count(up{app="inventory",namespace="prod"} == 1)') == 3, 60)
            time.sleep(SETTLE)  # history to query: the windows and the range queries' span, after the rollout
            both.at = round(time.time() - 1.5, 3)
            yield both
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            standin.stop()


def _delete_pod(kube: KubeSandbox, ca: str, namespace: str, pod: str) -> None:
    cluster, _ns = kube.env(namespace)
    r = requests.delete(f"{cluster.url}/api/v1/namespaces/{namespace}/pods/{pod}", headers=kube.admin_headers(),
                        verify=ca, timeout=10)
    assert r.status_code == 200, r.text


def _set_image(kube: KubeSandbox, ca: str, namespace: str, image: str, gomemlimit: str | None = None) -> None:
    cluster, _ns = kube.env(namespace)
    container: dict[str, Any] = {"name": "app", "image": image}
    if gomemlimit:
        container["env"] = [{"name": "GOMEMLIMIT", "value": gomemlimit}]
    r = requests.patch(
        f"{cluster.url}/apis/apps/v1/namespaces/{namespace}/deployments/payment-api",
        json={"spec": {"template": {"spec": {"containers": [container]}}}},
        headers={**kube.admin_headers(), "Content-Type": "application/strategic-merge-patch+json"},
        verify=ca, timeout=10)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------------------------------ comparison

def _tolerance(query: str) -> tuple[float, float]:
    """(relative, absolute) slack for a query's values: see the module's note."""
    if "histogram_quantile" in query:
        return 0.15, 0.005
    if " / " in query:  # a ratio of rates
        return 0.10, 0.01
    if "process_cpu_seconds_total" in query:  # counts hundredths of a second
        return 0.10, 0.005
    if "increase(" in query:
        return 0.10, COUNT_SLACK
    if "rate(" in query:
        window = min(int(w) for w in re.findall(r"\[(\d+)s\]", query))
        return 0.10, COUNT_SLACK / window
    return 0.02, 1.0


def _close(a: float, b: float, query: str) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    rel, absolute = _tolerance(query)
    if abs(a - b) <= rel * max(abs(a), abs(b)) + absolute:
        return True
    # a quantile whose rank sits at a bucket's edge lands in the bucket on either side, by one count
    return "histogram_quantile" in query and abs(_bucket(a) - _bucket(b)) <= 1


def _bucket(value: float) -> int:
    return bisect.bisect_left(BUCKETS, value)


def _series(data: dict[str, Any]) -> dict[frozenset[tuple[str, str]], Any]:
    if data["resultType"] == "scalar":
        return {frozenset(): float(data["result"][1])}
    if data["resultType"] == "vector":
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in data["result"]}
    return {frozenset(r["metric"].items()): {t: float(v) for t, v in r["values"]} for r in data["result"]}


def _agree(both: Both, query: str, path: str, params: dict[str, Any]) -> list[str]:
    real = _series(both.get(both.real, path, {"query": query, **params}))
    standin = _series(both.get(both.standin, path, {"query": query, **params}))
    both.compared += sum(len(v) if isinstance(v, dict) else 1 for v in real.values())
    if set(real) != set(standin):
        return [f"{query}: label sets differ: real only {set(real) - set(standin)}, "
                f"stand-in only {set(standin) - set(real)}"]
    problems = []
    for labels, value in real.items():
        other = standin[labels]
        if isinstance(value, dict):
            if set(value) != set(other):
                problems.append(f"{query} {dict(labels)}: steps differ {sorted(value)} vs {sorted(other)}")
                continue
            bad = [(t, value[t], other[t]) for t in value if not _close(value[t], other[t], query)]
            if bad:
                problems.append(f"{query} {dict(labels)}: (t, real, stand-in) {bad}")
        elif not _close(value, other, query):
            problems.append(f"{query} {dict(labels)}: real {value} stand-in {other}")
    return problems


OWN_QUERIES = [
    'sum by (app, namespace) (rate(http_requests_total[{w}s]))',
    'sum by (namespace) (rate(http_requests_total{{code="500"}}[{w}s])) '
    '/ on (namespace) sum by (namespace) (rate(http_requests_total[{w}s]))',
    'histogram_quantile(0.99, sum by (le, app, namespace) (rate(http_request_duration_seconds_bucket[{w}s])))',
    'histogram_quantile(0.5, sum without (pod, instance, method, handler, job, cluster) '
    '(rate(http_request_duration_seconds_bucket{{app=~"pay.*|orders"}}[{w}s])))',
    'sum by (pod) (increase(http_requests_total{{app="orders",namespace="prod"}}[{w}s]))',
    'sum(irate(http_requests_total{{code!="500"}}[{w}s]))',
    'avg by (namespace) (rate(process_cpu_seconds_total[{w}s]) * 1000) > bool 0',
    'max by (app) (go_memstats_heap_inuse_bytes) / 1024 / 1024',
    'min by (app, namespace) (avg_over_time(go_goroutines[{w}s]))',
    'max_over_time(go_goroutines{{namespace="prod",app!~"gateway"}}[{w}s]) - min_over_time(go_goroutines'
    '{{namespace="prod",app!~"gateway"}}[{w}s]) >= 0',
    'last_over_time(go_gc_gomemlimit_bytes[{w}s])',
    'clamp_max(sum by (namespace) (rate(http_requests_total[{w}s] offset 3s)), 40)',
    'count without (pod, instance) (up == 1)',
    'abs(-sum(rate(http_requests_total{{namespace="prod"}}[{w}s])) % 100000) + scalar(count(up)) - time() + time()',
    'vector(2) * 3 - 1',
    'count by (app) (process_resident_memory_bytes) + 0 * sum by (app) (go_goroutines)',
]


def _bot_queries() -> list[str]:
    scopes = [
        promql.Scope(namespace="staging", service="payment"),
        promql.Scope(namespace="dev", service="payment"),
        promql.Scope(namespace="prod", service="orders"),
        promql.Scope(namespace="prod", service="inventory", cluster_label="cluster", cluster="prod"),
        promql.Scope(namespace="prod", service="payment", pod_regex="payment-api-[a-z0-9]+-[a-z0-9]+"),
    ]
    return sorted({q for scope in scopes for w in WINDOWS for q in promql.agreement_queries(scope, w).values()})


def test_instant_queries_agree_with_a_real_prometheus(both: Both) -> None:
    queries = [q.format(w=w) for q in OWN_QUERIES for w in WINDOWS] + _bot_queries()
    before = both.compared
    problems = [p for q in dict.fromkeys(queries) for p in _agree(both, q, "/api/v1/query", {"time": both.at})]
    health = _scrape_health(both)
    assert not problems, "\n".join(problems + health)
    assert both.compared - before > 500  # the answers were not all empty


def test_range_queries_agree_with_a_real_prometheus(both: Both) -> None:
    queries = [
        'sum by (app, namespace) (rate(http_requests_total[10s]))',
        'histogram_quantile(0.99, sum by (le, namespace) (rate(http_request_duration_seconds_bucket'
        '{app="payment"}[10s])))',
        'max by (namespace) (go_memstats_heap_inuse_bytes{app="payment"})',
        *[q for q in _bot_queries() if "[10s]" in q],
    ]
    problems = []
    before = both.compared
    for step in ("2s", "4"):
        params = {"start": both.at - SPAN, "end": both.at, "step": step}
        for q in queries:
            problems += _agree(both, q, "/api/v1/query_range", params)
    assert not problems, "\n".join(problems + _scrape_health(both))
    assert both.compared - before > 500


def test_the_stand_in_is_tested_outside_the_subset_like_prometheus(both: Both) -> None:
    """Beyond the subset the stand-in says bad_data; the same text parses for Prometheus (it is PromQL)."""
    query = 'topk(1, sum by (app) (rate(http_requests_total[10s])))'
    real = requests.get(both.real + "/api/v1/query", params={"query": query}, timeout=10)
    standin = requests.get(both.standin + "/api/v1/query", params={"query": query}, timeout=10)
    assert real.status_code == 200
    assert standin.status_code == 400
    assert standin.json()["errorType"] == "bad_data"
    # and a syntax error is bad_data for both
    for base in (both.real, both.standin):
        r = requests.get(base + "/api/v1/query", params={"query": "sum(rate(up[5m])"}, timeout=10)
        assert r.status_code == 400
        assert r.json()["errorType"] == "bad_data"


def _scrape_health(both: Both) -> list[str]:
    """What a disagreement's reader needs: the real Prometheus' failed or slow scrapes (a loaded machine)."""
    targets = requests.get(both.real + "/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    out = [f"real Prometheus target {t['labels'].get('pod')}: {t['health']} {t['lastError']!r} "
           f"({t['lastScrapeDuration']:.3f} s)" for t in targets
           if t["health"] != "up" or t["lastScrapeDuration"] > 0.5]
    failed = requests.get(both.real + "/api/v1/query", params={
        "query": "count_over_time((up == 0)[60s:1s])", "time": both.at}, timeout=10).json()["data"]["result"]
    out += [f"real Prometheus: {r['metric'].get('pod')} failed {r['value'][1]} scrapes in the last minute"
            for r in failed]
    return out or ["(every scrape of the real Prometheus succeeded)"]


def _shape(doc: Any) -> Any:
    """The JSON's structure: keys and value types, the first element of each list standing for all."""
    if isinstance(doc, dict):
        if "metric" in doc:  # a series: its labels' names matter, not their values
            return {k: sorted(v) if k == "metric" else _shape(v) for k, v in doc.items()}
        return {k: _shape(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_shape(doc[0])] if doc else []
    return type(doc).__name__


@pytest.mark.parametrize(("path", "query"), [
    ("/api/v1/query", 'up{app="orders",namespace="prod"}'),
    ("/api/v1/query", 'up{app="orders",namespace="prod"}[5s]'),
    ("/api/v1/query", "time()"),
    ("/api/v1/query_range", 'sum by (pod) (rate(http_requests_total{app="orders",namespace="prod"}[10s]))'),
])
def test_answers_have_the_real_envelope(both: Both, path: str, query: str) -> None:
    params: dict[str, Any] = {"query": query, "time": both.at}
    if path.endswith("range"):
        params = {"query": query, "start": both.at - 4, "end": both.at, "step": "2s"}
    real = requests.post(both.real + path, data=params, timeout=10).json()
    standin = requests.post(both.standin + path, data=params, timeout=10).json()
    assert real["data"]["result"]
    assert _shape(standin) == _shape(real)
