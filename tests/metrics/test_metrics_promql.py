"""PromQL built safely (bot/insight/promql.py) and the numbers read from answers (bot/insight/metrics.py)."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.clients.prometheus import Sample
from bot.core.catalog import parse_verify_check
from bot.insight import metrics, promql


@given(st.text())
def test_string_literals_read_back_as_the_text(text: str) -> None:
    """A literal is also a JSON string (Go's escapes are a superset); it reads back exactly."""
    literal = promql.string_literal(text)
    assert json.loads(literal.replace("\\x", "\\u00")) == text


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_regex_escape_matches_only_the_text(text: str) -> None:
    pattern = re.compile(promql.regex_escape(text))
    assert pattern.fullmatch(text)


def test_user_text_cannot_leave_its_matcher() -> None:
    scope = promql.Scope(namespace='prod"} or vector(1) #', service="pay\\ment")
    query = promql.request_rate(scope, 60)
    assert query == ('sum(rate(http_requests_total{namespace="prod\\"} or vector(1) #",app="pay\\\\ment"}[60s]))')


def test_names_are_checked() -> None:
    with pytest.raises(promql.PromQLError):
        promql.request_rate(promql.Scope(namespace="prod", namespace_label="name space"), 60)


def test_pods_of_a_replicaset() -> None:
    regex = re.compile(promql.pods_of_replicaset("payment-api-7d9f8c"))
    assert regex.fullmatch("payment-api-7d9f8c-x2k4p")
    assert not regex.fullmatch("payment-api-7d9f8c9-x2k4p-a")
    assert not regex.fullmatch("payment-api-5b6c7d-x2k4p")


def test_histogram_quantile_as_prometheus() -> None:
    """Linear interpolation in the bucket holding the rank; the +Inf bucket answers the highest bound."""
    buckets = [(0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (math.inf, 100.0)]
    assert metrics.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert metrics.histogram_quantile(0.7, buckets) == pytest.approx(0.15)
    assert metrics.histogram_quantile(0.99, [(0.1, 50.0), (math.inf, 100.0)]) == pytest.approx(0.1)
    assert math.isnan(metrics.histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 0.0)]))


def test_status_numbers_from_one_answer() -> None:
    """Buckets (with le) and requests by code come back in one answer; each service gets its numbers."""
    samples = [
        Sample({"app": "payment", "code": "200"}, ((0.0, 99.0),)),
        Sample({"app": "payment", "code": "500"}, ((0.0, 1.0),)),
        Sample({"app": "payment", "le": "0.1"}, ((0.0, 90.0),)),
        Sample({"app": "payment", "le": "0.5"}, ((0.0, 100.0),)),
        Sample({"app": "payment", "le": "+Inf"}, ((0.0, 100.0),)),
        Sample({"app": "orders", "code": "200"}, ((0.0, 5.0),)),
    ]
    numbers = metrics.status_numbers(samples, "app", "code")
    assert numbers["payment"].rate == 100.0
    assert numbers["payment"].error_ratio == pytest.approx(0.01)
    assert numbers["payment"].p99 == pytest.approx(0.1 + 0.4 * 0.9)
    assert numbers["orders"].error_ratio == 0.0
    assert math.isnan(numbers["orders"].p99)


@pytest.mark.parametrize(("text", "parsed"), [
    ("error_rate <= 1%", ("error_rate", "<=", 0.01)),
    ("p99 <= 500ms", ("p99", "<=", 0.5)),
    ("p50<2s", ("p50", "<", 2.0)),
])
def test_verify_checks_parse(text: str, parsed: tuple[str, str, float]) -> None:
    metric, op, limit = parse_verify_check(text)
    assert (metric, op) == parsed[:2]
    assert limit == pytest.approx(parsed[2])


@pytest.mark.parametrize("text", ["error_rate <= 1ms", "p99 <= 5%", "cpu <= 1", "p99 >= 1s", "p99 <= "])
def test_bad_verify_checks_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"error_rate|latency|check"):
        parse_verify_check(text)
