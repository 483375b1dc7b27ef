"""Evaluates a parsed PromQL expression (promql_parser) against the stand-in's TSDB at one instant, with
Prometheus 2.x semantics: 5 m lookback for instant selectors, closed range windows, rate() extrapolation
as in Prometheus' extrapolatedRate, counter resets, histogram_quantile's linear interpolation within
buckets, `__name__` dropped by functions and arithmetic (kept by filtering comparisons and last_over_time).
A range query evaluates the expression at each step (http_api.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.prometheus import promql_parser as ast
from sandbox.prometheus.tsdb import TSDB, Series

LOOKBACK_MS = 5 * 60 * 1000
Metric = dict[str, str]
Vector = list[tuple[Metric, float]]


class EvalError(Exception):
    """A query that parses but cannot be evaluated (Prometheus answers 422, errorType execution)."""


@dataclass
class RangeView:
    """One series' samples inside a range selector's window at the evaluation instant."""

    metric: Metric
    series: Series
    lo: int
    hi: int
    start_ms: int
    end_ms: int
    range_s: float


Value = float | Vector | list[RangeView]


def key_of(metric: Metric) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))


def drop_name(metric: Metric) -> Metric:
    return {k: v for k, v in metric.items() if k != "__name__"}


class Evaluator:
    def __init__(self, db: TSDB, t_ms: int, lookback_ms: int = LOOKBACK_MS) -> None:
        self.db = db
        self.t_ms = t_ms
        self.lookback_ms = lookback_ms

    def eval(self, e: ast.Expr) -> Value:
        match e:
            case ast.NumberLiteral(value=v):
                return v
            case ast.Paren(expr=inner):
                return self.eval(inner)
            case ast.VectorSelector():
                return self.select(e)
            case ast.MatrixSelector():
                return self.select_range(e)
            case ast.Unary(expr=inner):
                value = self.eval(inner)
                if isinstance(value, float):
                    return -value
                return [(drop_name(m), -v) for m, v in _vector(value)]
            case ast.Aggregate():
                return self.aggregate(e)
            case ast.Call():
                return self.call(e)
            case ast.Binary():
                return self.binary(e)
        raise EvalError(f"cannot evaluate {e!r}")

    # -------------------------------------------------------------- selectors

    def _matching(self, sel: ast.VectorSelector) -> list[Series]:
        name = next((m.value for m in sel.matchers if m.name == "__name__" and m.op == "="), None)
        out = []
        for series in self.db.candidates(name):
            labels = dict(series.labels)
            if all(m.matches(labels.get(m.name, "")) for m in sel.matchers):
                out.append(series)
        return out

    def select(self, sel: ast.VectorSelector) -> Vector:
        t = self.t_ms - int(sel.offset * 1000)
        out: Vector = []
        for series in self._matching(sel):
            value = series.latest_before(t, self.lookback_ms)
            if value is not None:
                out.append((dict(series.labels), value))
        return out

    def select_range(self, sel: ast.MatrixSelector) -> list[RangeView]:
        end = self.t_ms - int(sel.vector.offset * 1000)
        start = end - int(sel.range * 1000)
        out = []
        for series in self._matching(sel.vector):
            lo, hi = series.window(start, end)
            if hi > lo:
                out.append(RangeView(dict(series.labels), series, lo, hi, start, end, sel.range))
        return out

    # -------------------------------------------------------------- functions

    def call(self, e: ast.Call) -> Value:
        f = e.func
        if f == "time":
            return self.t_ms / 1000
        args = [self.eval(a) for a in e.args]
        if f in ("rate", "increase", "irate"):
            out: Vector = []
            for view in _matrix(args[0]):
                value = _irate(view) if f == "irate" else _extrapolated(view, is_rate=f == "rate")
                if value is not None:
                    out.append((drop_name(view.metric), value))
            return out
        if f.endswith("_over_time"):
            return [(view.metric if f == "last_over_time" else drop_name(view.metric), _over_time(f, view))
                    for view in _matrix(args[0])]
        if f == "histogram_quantile":
            return _histogram_quantile(_scalar(args[0]), _vector(args[1]))
        if f in ("clamp_min", "clamp_max"):
            bound = _scalar(args[1])
            pick = max if f == "clamp_min" else min
            return [(drop_name(m), pick(v, bound)) for m, v in _vector(args[0])]
        if f == "abs":
            return [(drop_name(m), abs(v)) for m, v in _vector(args[0])]
        if f == "vector":
            return [({}, _scalar(args[0]))]
        if f == "scalar":
            vec = _vector(args[0])
            return vec[0][1] if len(vec) == 1 else math.nan
        raise EvalError(f"function {f!r} is not supported")

    # -------------------------------------------------------------- aggregation

    def aggregate(self, e: ast.Aggregate) -> Vector:
        groups: dict[tuple[tuple[str, str], ...], tuple[Metric, list[float]]] = {}
        for metric, value in _vector(self.eval(e.expr)):
            if e.without:
                drop = {*e.grouping, "__name__"}
                labels = {k: v for k, v in metric.items() if k not in drop}
            else:
                labels = {k: metric[k] for k in e.grouping if metric.get(k, "") != ""}
            groups.setdefault(key_of(labels), (labels, []))[1].append(value)
        reduce: dict[str, Callable[[list[float]], float]] = {
            "sum": _sum, "avg": lambda vs: _sum(vs) / len(vs), "min": _min, "max": _max, "count": len}
        return [(labels, float(reduce[e.op](values))) for labels, values in groups.values()]

    # -------------------------------------------------------------- binary operators

    def binary(self, e: ast.Binary) -> Value:
        lhs, rhs = self.eval(e.lhs), self.eval(e.rhs)
        if isinstance(lhs, float) and isinstance(rhs, float):
            value, _keep = _op(e.op, lhs, rhs)
            return value if e.op not in ast.COMPARISON else float(_keep)
        if isinstance(lhs, float) or isinstance(rhs, float):
            return self._vector_scalar(e, lhs, rhs)
        return self._vector_vector(e, _vector(lhs), _vector(rhs))

    def _vector_scalar(self, e: ast.Binary, lhs: Value, rhs: Value) -> Vector:
        swap = isinstance(lhs, float)
        vec, scalar = (_vector(rhs), lhs) if swap else (_vector(lhs), rhs)
        assert isinstance(scalar, float)
        comparison = e.op in ast.COMPARISON
        out: Vector = []
        for metric, v in vec:
            a, b = (scalar, v) if swap else (v, scalar)
            value, keep = _op(e.op, a, b)
            if comparison:
                if e.bool_:
                    value, keep = float(keep), True
                else:
                    value = v  # a filter keeps the vector's own value, whichever side it is on
            if keep:
                out.append((drop_name(metric) if not comparison or e.bool_ else metric, value))
        return out

    def _vector_vector(self, e: ast.Binary, lhs: Vector, rhs: Vector) -> Vector:
        def signature(metric: Metric) -> tuple[tuple[str, str], ...]:
            if e.on is not None:
                return tuple(sorted((k, metric.get(k, "")) for k in e.on))
            return key_of({k: v for k, v in metric.items() if k not in {*e.ignoring, "__name__"}})

        right: dict[tuple[tuple[str, str], ...], tuple[Metric, float]] = {}
        for metric, v in rhs:
            sig = signature(metric)
            if sig in right:
                raise EvalError(f"found duplicate series for the match group {dict(sig)} on the right hand-side "
                                "of the operation: many-to-many matching not allowed: matching labels must be "
                                "unique on one side")
            right[sig] = (metric, v)
        seen: set[tuple[tuple[str, str], ...]] = set()
        comparison = e.op in ast.COMPARISON
        out: Vector = []
        for metric, v in lhs:
            sig = signature(metric)
            if sig not in right:
                continue
            if sig in seen:
                raise EvalError("multiple matches for labels: many-to-one matching must be explicit "
                                "(group_left/group_right)")
            seen.add(sig)
            value, keep = _op(e.op, v, right[sig][1])
            if comparison:
                value, keep = (float(keep), True) if e.bool_ else (v, keep)
            if not keep:
                continue
            result = drop_name(metric) if not comparison or e.bool_ else dict(metric)
            if e.on is not None:
                result = {k: val for k, val in result.items() if k in e.on}
            elif e.ignoring:
                result = {k: val for k, val in result.items() if k not in e.ignoring}
            out.append((result, value))
        return out


# ------------------------------------------------------------------ helpers


def _vector(value: Value) -> Vector:
    assert isinstance(value, list)
    return value  # type: ignore[return-value]


def _matrix(value: Value) -> list[RangeView]:
    assert isinstance(value, list)
    return value  # type: ignore[return-value]


def _scalar(value: Value) -> float:
    assert isinstance(value, float | int)
    return float(value)


def _sum(values: list[float]) -> float:
    return math.fsum(values) if all(math.isfinite(v) for v in values) else sum(values)


def _min(values: list[float]) -> float:
    real = [v for v in values if not math.isnan(v)]
    return min(real) if real else math.nan


def _max(values: list[float]) -> float:
    real = [v for v in values if not math.isnan(v)]
    return max(real) if real else math.nan


def _op(op: str, a: float, b: float) -> tuple[float, bool]:
    """(arithmetic result, comparison result) as Go's float64 arithmetic gives them."""
    match op:
        case "+":
            return a + b, True
        case "-":
            return a - b, True
        case "*":
            return a * b, True
        case "/":
            if b == 0:
                return (math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)), True
            return a / b, True
        case "%":
            return (math.fmod(a, b) if b != 0 and math.isfinite(a) else math.nan), True
        case "==":
            return a, a == b
        case "!=":
            return a, a != b
        case ">":
            return a, a > b
        case "<":
            return a, a < b
        case ">=":
            return a, a >= b
        case "<=":
            return a, a <= b
    raise EvalError(f"operator {op!r} is not supported")


def _extrapolated(view: RangeView, *, is_rate: bool) -> float | None:
    """Prometheus 2.42's extrapolatedRate (promql/functions.go) for counters."""
    s, lo, hi = view.series, view.lo, view.hi
    count = s.real_count(lo, hi)
    if count < 2:
        return None
    first_t, last_t = s.t(lo), s.t(hi - 1)
    first_v = s.values[lo]
    result = s.adjusted(hi - 1) - s.adjusted(lo)
    to_start = (first_t - view.start_ms) / 1000
    to_end = (view.end_ms - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (count - 1)
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    return result / view.range_s if is_rate else result


def _irate(view: RangeView) -> float | None:
    points = view.series.points(view.start_ms, view.end_ms)[-2:]
    if len(points) < 2:
        return None
    (t0, v0), (t1, v1) = points
    if t1 == t0:
        return None
    delta = v1 if v1 < v0 else v1 - v0
    return delta / ((t1 - t0) / 1000)


def _over_time(func: str, view: RangeView) -> float:
    values = [v for _t, v in view.series.points(view.start_ms, view.end_ms)]
    if func == "last_over_time":
        return values[-1]
    if func == "max_over_time":
        return _max(values)
    if func == "min_over_time":
        return _min(values)
    # Prometheus' avg_over_time: a running mean (incremental), close to the plain mean
    mean = 0.0
    for i, v in enumerate(values, 1):
        mean += (v - mean) / i
    return mean


def _histogram_quantile(q: float, vec: Vector) -> Vector:
    groups: dict[tuple[tuple[str, str], ...], tuple[Metric, list[tuple[float, float]]]] = {}
    for metric, value in vec:
        le = metric.get("le")
        if le is None:
            continue
        try:
            bound = float(le)
        except ValueError:
            continue
        labels = {k: v for k, v in metric.items() if k not in ("le", "__name__")}
        groups.setdefault(key_of(labels), (labels, []))[1].append((bound, value))
    return [(labels, _bucket_quantile(q, buckets)) for labels, buckets in groups.values()]


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' bucketQuantile (promql/quantile.go, 2.42)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if not buckets or not math.isinf(buckets[-1][0]):
        return math.nan
    merged: list[list[float]] = []  # coalesce equal bounds
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    for i in range(1, len(merged)):  # ensureMonotonic
        merged[i][1] = max(merged[i][1], merged[i - 1][1])
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)
