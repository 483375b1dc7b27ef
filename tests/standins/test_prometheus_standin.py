"""The pods' /metrics (through the API server's pod proxy, as a real Prometheus reads them) and the Prometheus
stand-in's HTTP API (through plain requests): the shapes and the behaviour markers. The PromQL semantics
against hand-computed values: test_prometheus_promql.py; against a real Prometheus:
test_prometheus_agreement.py."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sandbox.kube.sim.metrics import PodModel
from sandbox.prometheus import PrometheusSandbox
from sandbox.prometheus.promql_eval import _bucket_quantile
from sandbox.stack import SandboxStack

LABELS = {"job", "instance", "cluster", "namespace", "pod", "app"}


@pytest.fixture(name="prom", scope="module")
def fixture_prom(stack: SandboxStack) -> Iterator[PrometheusSandbox]:
    prom = PrometheusSandbox(stack.kube, interval=0.5).start()
    try:
        assert prom.wait_scrapes(6, timeout=30), "the stand-in did not scrape"
        yield prom
    finally:
        prom.stop()


def _admin(stack: SandboxStack) -> tuple[dict[str, str], str]:
    assert stack.kube is not None
    assert stack.directory is not None
    ca = stack.kube.auth.write_ca(stack.directory / "metrics-test-ca.pem")
    return stack.kube.admin_headers(), str(ca)


def _query(prom: PrometheusSandbox, query: str, **params: Any) -> requests.Response:
    return requests.get(f"{prom.url}/api/v1/query", params={"query": query, **params}, timeout=10)


def test_a_pods_metrics_through_the_api_servers_pod_proxy_are_prometheus_text(stack: SandboxStack) -> None:
    assert stack.kube is not None
    headers, ca = _admin(stack)
    pod = stack.kube.pod_names()[("prod", "payment")][0]
    url = f"{stack.kube.clusters['prod'].url}/api/v1/namespaces/prod/pods/{pod}:8080/proxy/metrics"
    first = requests.get(url, headers=headers, verify=ca, timeout=10)
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(first.text)}
    assert {"http_requests", "http_request_duration_seconds", "go_goroutines", "go_memstats_heap_inuse_bytes",
            "go_gc_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes"} <= set(families)
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    codes = {s.labels["code"] for s in families["http_requests"].samples}
    assert {"200", "500"} <= codes
    # counters grow between two reads (they are functions of the wall clock: read until a request has happened)
    def total(fams: dict[str, Any]) -> float:
        return sum(s.value for s in fams["http_requests"].samples)

    deadline = time.monotonic() + 10
    while True:
        second = {f.name: f for f in text_string_to_metric_families(
            requests.get(url, headers=headers, verify=ca, timeout=10).text)}
        if total(second) > total(families) or time.monotonic() > deadline:
            break
    assert total(second) > total(families)


def _model(image: str, behaviours: set[str], age: float = 3600.0) -> PodModel:
    return PodModel("payment", "payment-api-x", image, frozenset(behaviours), time.time() - age, 512 * 2**20, 0.0,
                    4.0)


def _p99(model: PodModel, t: float) -> float:
    buckets = [(float(labels["le"]), value) for name, labels, value in model.flat(t)
               if name == "http_request_duration_seconds_bucket" and labels["method"] == "GET"]
    return _bucket_quantile(0.99, buckets)


def _error_ratio(model: PodModel, t: float) -> float:
    samples = [(labels["code"], value) for name, labels, value in model.flat(t) if name == "http_requests_total"]
    return sum(v for c, v in samples if c == "500") / sum(v for _c, v in samples)


def test_the_registry_markers_show_in_the_metrics() -> None:
    t = time.time()
    normal, erroring = _model("r/payment:1.4.1", set()), _model("r/payment:1.5.4", {"erroring"})
    slow = _model("r/payment:1.5.5", {"slow"})
    assert 0.0005 < _error_ratio(normal, t) < 0.006
    assert 0.04 < _error_ratio(erroring, t) < 0.06
    assert 0.1 < _p99(normal, t) < 0.35
    assert 1.5 < _p99(slow, t) < 2.5
    leaking = PodModel("payment", "p", "r/payment:1.5.1", frozenset({"leaking"}), t, 512 * 2**20, 0.0, 4.0)
    assert leaking.heap(t + 3.9) > 1.8 * leaking.heap(t)
    assert leaking.heap(t + 3.9) < 512 * 2**20


def test_the_stand_in_answers_a_selector_a_rate_and_a_sum_by(prom: PrometheusSandbox) -> None:
    up = _query(prom, 'up{namespace="prod",app="payment"}').json()
    assert up["status"] == "success"
    assert up["data"]["resultType"] == "vector"
    assert len(up["data"]["result"]) == 3
    assert all(set(r["metric"]) == LABELS | {"__name__"} and r["metric"]["cluster"] == "prod"
               for r in up["data"]["result"])
    body = _query(prom, 'sum by (namespace) (rate(http_requests_total{app="payment"}[2s]))').json()
    result = {r["metric"]["namespace"]: float(r["value"][1]) for r in body["data"]["result"]}
    assert set(result) == {"dev", "staging", "prod"}
    assert all(15 < v < 250 for v in result.values()), result  # 20-60 requests/s a pod, 1-3 pods
    scalar = _query(prom, "time()", time="1700000000.5").json()
    assert scalar["data"] == {"resultType": "scalar", "result": [1700000000.5, "1700000000.5"]}


def test_a_range_query_answers_a_matrix_by_post(prom: PrometheusSandbox) -> None:
    end = time.time()
    r = requests.post(f"{prom.url}/api/v1/query_range", timeout=10, data={
        "query": 'sum by (app) (rate(http_requests_total{namespace="staging"}[2s]))',
        "start": f"{end - 1:.3f}", "end": f"{end:.3f}", "step": "250ms"})
    body = r.json()
    assert r.status_code == 200, body
    assert body["data"]["resultType"] == "matrix"
    series = {s["metric"]["app"]: s["values"] for s in body["data"]["result"]}
    assert set(series) == {"payment", "orders", "gateway", "inventory"}
    assert all(len(values) == 5 for values in series.values())
    assert all(isinstance(t, float) and isinstance(v, str) for values in series.values() for t, v in values)


@pytest.mark.parametrize(("query", "why"), [
    ("topk(3, up)", "aggregation 'topk' is not supported"),
    ("up ^ 2", "operator '^' is not supported"),
    ("up and up", "operator 'and' is not supported"),
    ("rate(up[5m:1m])", "subqueries are not supported"),
    ("label_replace(up, 'a', 'b', 'c', 'd')", "function 'label_replace' is not supported"),
    ('sum(rate(up{job="x"}[5m])', "expected ')'"),
    ("", "no expression found"),
])
def test_anything_outside_the_subset_is_bad_data_in_prometheus_envelope(prom: PrometheusSandbox, query: str,
                                                                         why: str) -> None:
    r = _query(prom, query)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert why in body["error"]


def test_prometheus_yml_scrapes_through_the_pod_proxy_with_the_admin_token(stack: SandboxStack,
                                                                          prom: PrometheusSandbox,
                                                                          tmp_path: Path) -> None:
    path = prom.write_config(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    job = cfg["scrape_configs"][0]
    token = Path(job["authorization"]["credentials_file"])
    assert token.read_text() == stack.kube.auth.admin_token  # type: ignore[union-attr]
    assert token.stat().st_mode & 0o077 == 0
    assert Path(job["tls_config"]["ca_file"]).read_bytes() == stack.kube.auth.ca_pem  # type: ignore[union-attr]
    sd = requests.get(job["http_sd_configs"][0]["url"], timeout=10)
    assert sd.headers["Content-Type"] == "application/json"
    groups = sd.json()
    assert len(groups) == len(prom.http_sd()) > 10
    group = next(g for g in groups if g["labels"]["namespace"] == "prod" and g["labels"]["app"] == "payment")
    labels = group["labels"]
    assert set(labels) >= LABELS
    assert labels["job"] == "sandbox-pods"
    # what Prometheus would fetch: scheme://target + __metrics_path__, with the file's token and CA
    url = f"{labels['__scheme__']}://{group['targets'][0]}{labels['__metrics_path__']}"
    r = requests.get(url, headers={"Authorization": f"Bearer {token.read_text()}"},
                     verify=job["tls_config"]["ca_file"], timeout=10)
    assert r.status_code == 200
    assert "http_requests_total{" in r.text
    goroutines = next(f for f in text_string_to_metric_families(r.text) if f.name == "go_goroutines")
    assert not math.isnan(goroutines.samples[0].value)
