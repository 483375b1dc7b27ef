"""The stand-in's PromQL parser and evaluator against values computed by hand from Prometheus 2.x's rules
(extrapolatedRate, counter resets, bucketQuantile, lookback and staleness, vector matching). No server: a TSDB
filled with known samples; the HTTP side is test_prometheus_standin.py, the real engine's verdict
test_prometheus_agreement.py."""

from __future__ import annotations

import math

import pytest

from sandbox.prometheus.promql_eval import EvalError, Evaluator
from sandbox.prometheus.promql_parser import ParseError, parse, parse_duration
from sandbox.prometheus.tsdb import STALE_NAN, TSDB


def _db() -> TSDB:
    db = TSDB()
    for t, v in ((15, 10), (25, 20), (35, 30), (45, 40)):
        db.append({"__name__": "c", "pod": "a", "app": "x"}, t * 1000, v)
    for t, v in ((15, 10), (25, 20), (35, 5), (45, 15)):  # a counter reset between 25 s and 35 s
        db.append({"__name__": "c", "pod": "b", "app": "x"}, t * 1000, v)
    for le, v in (("0.1", 10), ("0.5", 60), ("1", 90), ("+Inf", 100)):
        db.append({"__name__": "h_bucket", "le": le, "app": "x"}, 45_000, v)
    db.append({"__name__": "g", "pod": "a", "app": "x"}, 0, 3)
    db.append({"__name__": "g", "pod": "b", "app": "y"}, 0, 5)
    db.append({"__name__": "g", "pod": "b", "app": "y"}, 100_000, STALE_NAN)
    db.append({"__name__": "m", "pod": "a", "app": "x"}, 0, 4)
    db.append({"__name__": "m", "pod": "b", "app": "y"}, 0, 10)
    return db


def _eval(query: str, at: float = 60.0) -> dict[tuple[tuple[str, str], ...], float] | float:
    value = Evaluator(_db(), round(at * 1000)).eval(parse(query))
    if isinstance(value, float | int):
        return float(value)
    return {tuple(sorted(m.items())): v for m, v in value}  # type: ignore[union-attr]


def _one(query: str, at: float = 60.0, **labels: str) -> float:
    result = _eval(query, at)
    assert isinstance(result, dict)
    return result[tuple(sorted(labels.items()))]


def test_rate_and_increase_extrapolate_as_prometheus_does() -> None:
    # pod a: 30 counted over 30 s of samples; the start extrapolates to the zero crossing (10 s before the
    # first sample, under 1.1 * the 10 s spacing), the end by half a spacing (15 s is too far): 45 s in all
    assert _one('increase(c{pod="a"}[60s])', pod="a", app="x") == pytest.approx(45.0)
    assert _one('rate(c{pod="a"}[1m])', pod="a", app="x") == pytest.approx(0.75)
    # pod b: 5 + 20 (the reset keeps what was counted) + 10 = 25; zero crossing 12 s out -> half a spacing
    assert _one('increase(c{pod="b"}[60s])', pod="b", app="x") == pytest.approx(25 * 40 / 30)
    assert _one('irate(c{pod="b"}[60s])', pod="b", app="x") == pytest.approx(1.0)
    assert _one('irate(c{pod="b"}[60s])', at=36, pod="b", app="x") == pytest.approx(0.5)  # 5 after a reset
    assert _eval('rate(c[5s])') == {}  # fewer than two samples in the window: nothing


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    assert _one("histogram_quantile(0.5, h_bucket)", app="x") == pytest.approx(0.42)
    assert _one("histogram_quantile(0.8, h_bucket)", app="x") == pytest.approx(0.5 + 0.5 * 20 / 30)
    assert _one("histogram_quantile(0.99, h_bucket)", app="x") == pytest.approx(1.0)  # in +Inf: the last bound
    assert math.isinf(_one("histogram_quantile(1.5, h_bucket)", app="x"))


def test_lookback_staleness_and_offset() -> None:
    assert _one('g{pod="a"}', at=299, pod="a", app="x", __name__="g") == 3
    assert _eval('g{pod="a"}', at=301) == {}  # older than the 5 m lookback
    assert _eval('g{pod="b"}', at=101) == {}  # a staleness marker ends the series at once
    assert _one('g{pod="b"}', at=99, pod="b", app="y", __name__="g") == 5
    assert _one('c{pod="a"} offset 20s', at=46, pod="a", app="x", __name__="c") == 20


def test_aggregations_group_by_and_without() -> None:
    assert _eval("sum(m)") == {(): 14.0}
    assert _eval("sum by (app) (m)") == {(("app", "x"),): 4.0, (("app", "y"),): 10.0}
    assert _eval("max without (pod) (m)") == {(("app", "x"),): 4.0, (("app", "y"),): 10.0}
    assert _eval("avg(m)") == {(): 7.0}
    assert _eval("count by (nope) (m)") == {(): 2.0}
    assert _eval("min(m) by (app)") == {(("app", "x"),): 4.0, (("app", "y"),): 10.0}


def test_binary_operators_match_drop_names_and_filter() -> None:
    assert _eval("m / g") == {(("app", "x"), ("pod", "a")): 4 / 3, (("app", "y"), ("pod", "b")): 2.0}
    assert _eval("m / g", at=120) == {(("app", "x"), ("pod", "a")): 4 / 3}  # g{pod="b"} went stale at 100 s
    assert _eval("m - on (pod) g", at=50) == {(("pod", "a"),): 1.0, (("pod", "b"),): 5.0}
    assert _eval("m * ignoring (app) g", at=50) == {(("pod", "a"),): 12.0, (("pod", "b"),): 50.0}
    assert _eval("m > 5") == {(("__name__", "m"), ("app", "y"), ("pod", "b")): 10.0}  # a filter keeps the name
    assert _eval("5 < m") == {(("__name__", "m"), ("app", "y"), ("pod", "b")): 10.0}
    assert _eval("m > bool 5") == {(("app", "x"), ("pod", "a")): 0.0, (("app", "y"), ("pod", "b")): 1.0}
    assert _eval("-m + 1") == {(("app", "x"), ("pod", "a")): -3.0, (("app", "y"), ("pod", "b")): -9.0}
    with pytest.raises(EvalError, match="duplicate series for the match group"):
        _eval("sum by (app) (m) + on () m")
    with pytest.raises(EvalError, match="many-to-one matching must be explicit"):
        _eval("m + on () sum(m)")


@pytest.mark.parametrize(("query", "value"), [
    ("1 + 2 * 3", 7.0), ("(1 + 2) * 3", 9.0), ("10 - 2 - 3", 5.0), ("2 * 3 % 4", 2.0), ("-2 * 3", -6.0),
    ("2 > bool 1", 1.0), ("1 == bool 2", 0.0), ("7 / 0", math.inf), ("0x10", 16.0), ("1e3 / 1e1", 100.0),
    ("scalar(sum(m)) / 2", 7.0), ("time()", 60.0), ("clamp_max(vector(5), 3) * 0 + 1", None),
])
def test_scalar_arithmetic_follows_prometheus_precedence(query: str, value: float | None) -> None:
    result = _eval(query)
    if value is None:
        assert result == {(): 1.0}
    else:
        assert result == value


def test_regex_matchers_are_fully_anchored_and_functions_drop_the_name() -> None:
    assert _eval('m{pod=~"a|b", app!~"y"}') == {(("__name__", "m"), ("app", "x"), ("pod", "a")): 4.0}
    assert _eval('m{pod=~"^a"}') == _eval('m{pod="a"}')
    assert _eval('m{app=~"x."}') == {}  # "x." does not match "x": anchored at both ends
    assert _eval('abs(m{pod="a"})') == {(("app", "x"), ("pod", "a")): 4.0}
    assert _eval('last_over_time(m{pod="a"}[1m])') == {(("__name__", "m"), ("app", "x"), ("pod", "a")): 4.0}
    assert _eval('max_over_time(c{pod="b"}[1m])') == {(("app", "x"), ("pod", "b")): 20.0}
    assert _eval('avg_over_time(c{pod="a"}[1m])') == {(("app", "x"), ("pod", "a")): 25.0}


def test_durations_and_refusals() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1500ms") == 1.5
    assert parse_duration("2w") == 14 * 86400
    for query, message in (("m[5m:1m]", "subqueries"), ("m @ 100", "@ modifier"), ("1 > 2", "BOOL"),
                           ("sum(m, m)", "wrong number"), ("rate(m)", "range vector"), ("{}", "non-empty matcher"),
                           ('{a=~""}', "non-empty matcher"), ("m + on(a) group_left m", "group_left"),
                           ("histogram_quantile(m, m)", "scalar"), ("m offset", "duration")):
        with pytest.raises(ParseError, match=message):
            parse(query)
