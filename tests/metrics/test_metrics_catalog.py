"""The catalog's Prometheus keys and verify steps: what loads, what `svcbot check` refuses and how it says so."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.catalog import parse_catalog
from bot.core.errors import CatalogError

VERIFY = {"verify": {"checks": ["error_rate <= 1%", "p99 <= 500ms"], "interval": "10s", "duration": "1m"}}


@pytest.fixture(name="raw")
def _raw(example_catalog_path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(example_catalog_path.read_text()))


def problems_of(raw: dict[str, Any]) -> list[str]:
    try:
        parse_catalog(yaml.safe_dump(raw))
    except CatalogError as exc:
        return exc.problems
    return []


def with_verify(raw: dict[str, Any], step: dict[str, Any] = VERIFY) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    target = next(iter(changed["pipelines"]["standard"]["targets"].values()))
    target.setdefault("steps", []).append(step)
    return changed


def test_global_prometheus_with_a_cluster_label(raw: dict[str, Any]) -> None:
    raw["prometheus"] = {"url": "http://prometheus:9090", "labels": {"cluster": "cluster"}}
    catalog = parse_catalog(yaml.safe_dump(with_verify(raw)))
    found = catalog.prometheus_for("prod")
    assert found is not None
    assert found[1] == "prod"
    assert catalog.services["payment"].metrics.requests == "http_requests_total"


def test_a_clusters_own_prometheus_wins(raw: dict[str, Any]) -> None:
    raw["prometheus"] = {"url": "http://global:9090", "labels": {"cluster": "cluster"}}
    raw["clusters"]["prod"]["prometheus"] = {"url": "https://prod-prometheus:9090", "tenant": "ops"}
    catalog = parse_catalog(yaml.safe_dump(raw))
    own = catalog.prometheus_for("prod")
    assert own is not None
    assert (own[0].url, own[1]) == ("https://prod-prometheus:9090", None)


def test_shared_prometheus_needs_a_cluster_label(raw: dict[str, Any]) -> None:
    raw["prometheus"] = {"url": "http://prometheus:9090"}
    assert any(problem.startswith("prometheus.labels.cluster: required") for problem in problems_of(raw))


def test_verify_needs_a_prometheus(raw: dict[str, Any]) -> None:
    raw.pop("prometheus", None)  # the example catalog has one
    assert any("has a verify step but no Prometheus" in problem for problem in problems_of(with_verify(raw)))


@pytest.mark.parametrize(("check", "words"), [
    ("error_rate <= 1ms", "an error rate is a percentage"),
    ("p99 <= 5%", "a latency is a duration"),
    ("cpu <= 1", "is not a check"),
])
def test_bad_checks_are_named(raw: dict[str, Any], check: str, words: str) -> None:
    raw["prometheus"] = {"url": "http://prometheus:9090", "labels": {"cluster": "cluster"}}
    problems = problems_of(with_verify(raw, {"verify": {"checks": [check]}}))
    assert any(words in problem and "verify.checks" in problem for problem in problems), problems


def test_duration_shorter_than_interval(raw: dict[str, Any]) -> None:
    raw["prometheus"] = {"url": "http://prometheus:9090", "labels": {"cluster": "cluster"}}
    problems = problems_of(with_verify(raw, {"verify": {"checks": ["p99 <= 1s"], "interval": "1m",
                                                        "duration": "30s"}}))
    assert any("shorter than its interval" in problem for problem in problems), problems


def test_metric_names_are_checked(raw: dict[str, Any]) -> None:
    raw["services"]["payment"]["metrics"] = {"requests": "http requests"}
    assert any(problem.startswith("services.payment.metrics.requests") for problem in problems_of(raw))
