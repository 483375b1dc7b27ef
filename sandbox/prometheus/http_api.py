"""Prometheus' HTTP API for the stand-in: /api/v1/query, /api/v1/query_range (GET or form POST), /-/ready,
/-/healthy, /api/v1/status/buildinfo, and /sandbox/http_sd (the targets for a real Prometheus' http_sd_configs).

Answers in Prometheus' envelope: {"status":"success","data":{"resultType":...,"result":...}}; errors as
{"status":"error","errorType":"bad_data"|"execution"|"timeout","error":...} with 400 / 422 / 503.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sandbox.httpserver import KeepAliveHandler
from sandbox.prometheus import promql_parser as ast
from sandbox.prometheus.promql_eval import EvalError, Evaluator, RangeView, Vector

if TYPE_CHECKING:
    from sandbox.prometheus import PrometheusSandbox

MAX_POINTS = 11_000
VERSION = "2.42.0-sandbox"


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type = status, error_type


def format_value(v: float) -> str:
    """A sample value as Prometheus writes it (Go's strconv.FormatFloat(v, 'f', -1, 64))."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = format(Decimal(repr(v)).normalize(), "f")
    return "-0" if text == "0" and math.copysign(1, v) < 0 else text


def parse_time(text: str, name: str) -> float:
    try:
        return round(float(text), 3)
    except ValueError:
        pass
    try:
        return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp(), 3)
    except ValueError:
        raise ApiError(400, "bad_data", f'invalid parameter "{name}": cannot parse "{text}" to a valid '
                                        "timestamp") from None


def parse_step(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return ast.parse_duration(text)
    except ast.ParseError:
        raise ApiError(400, "bad_data", f'invalid parameter "{name}": cannot parse "{text}" to a valid '
                                        "duration") from None


def _query(params: dict[str, str]) -> ast.Expr:
    query = params.get("query", "")
    try:
        return ast.parse(query)
    except ast.ParseError as e:
        raise ApiError(400, "bad_data", f"invalid parameter \"query\": {e}") from None


def _vector_json(vec: Vector, t: float) -> list[dict[str, Any]]:
    return [{"metric": m, "value": [t, format_value(v)]} for m, v in vec]


class Engine:
    """Evaluates API requests against the sandbox's TSDB."""

    def __init__(self, owner: PrometheusSandbox) -> None:
        self.owner = owner

    def instant(self, params: dict[str, str]) -> dict[str, Any]:
        expr = _query(params)
        t = parse_time(params["time"], "time") if params.get("time") else round(time.time(), 3)
        db = self.owner.db
        with db.lock:
            try:
                value = Evaluator(db, round(t * 1000)).eval(expr)
            except EvalError as e:
                raise ApiError(422, "execution", str(e)) from None
        kind = ast.value_type(expr)
        if kind == "scalar":
            assert isinstance(value, float | int)
            return {"resultType": "scalar", "result": [t, format_value(float(value))]}
        if kind == "matrix":
            views: list[RangeView] = value  # type: ignore[assignment]
            return {"resultType": "matrix", "result": [
                {"metric": view.metric, "values": [[ts / 1000, format_value(v)]
                                                    for ts, v in view.series.points(view.start_ms, view.end_ms)]}
                for view in views]}
        return {"resultType": "vector", "result": _vector_json(value, t)}  # type: ignore[arg-type]

    def range(self, params: dict[str, str]) -> dict[str, Any]:
        for name in ("start", "end", "step"):
            if not params.get(name):
                raise ApiError(400, "bad_data", f'invalid parameter "{name}": missing')
        start, end = parse_time(params["start"], "start"), parse_time(params["end"], "end")
        step = parse_step(params["step"], "step")
        if end < start:
            raise ApiError(400, "bad_data", 'invalid parameter "end": end timestamp must not be before start time')
        if step <= 0:
            raise ApiError(400, "bad_data", 'invalid parameter "step": zero or negative query resolution step '
                                            "widths are not accepted. Try a positive integer")
        if (end - start) / step > MAX_POINTS:
            raise ApiError(400, "bad_data", "exceeded maximum resolution of 11,000 points per timeseries. Try "
                                            "decreasing the query resolution (?step=XX)")
        expr = _query(params)
        kind = ast.value_type(expr)
        if kind not in ("scalar", "vector"):
            raise ApiError(400, "bad_data", 'invalid parameter "query": invalid expression type '
                                            '"range vector" for range query, must be Scalar or instant Vector')
        start_ms, end_ms, step_ms = round(start * 1000), round(end * 1000), round(step * 1000)
        series: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[list[Any]]]] = {}
        db = self.owner.db
        deadline = time.monotonic() + self.owner.query_timeout
        t_ms = start_ms
        with db.lock:
            while t_ms <= end_ms:
                if time.monotonic() > deadline:
                    raise ApiError(503, "timeout", "query timed out in query execution")
                try:
                    value = Evaluator(db, t_ms).eval(expr)
                except EvalError as e:
                    raise ApiError(422, "execution", str(e)) from None
                points: list[tuple[dict[str, str], float]] = (
                    [({}, float(value))] if isinstance(value, float | int) else value)  # type: ignore[list-item]
                for metric, v in points:
                    key = tuple(sorted(metric.items()))
                    series.setdefault(key, (metric, []))[1].append([t_ms / 1000, format_value(v)])
                t_ms += step_ms
        return {"resultType": "matrix",
                "result": [{"metric": m, "values": vals} for m, vals in series.values()]}


class PrometheusHandler(KeepAliveHandler):
    sandbox: PrometheusSandbox  # set on the subclass the server is built with
    log_prefix = "prometheus: "

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        self._serve(self.read_body())

    def _serve(self, body: bytes) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                                           keep_blank_values=True).items()})
        path = re.sub("/+$", "", url.path) or "/"
        self.sandbox.requests.append((path, dict(params)))
        try:
            if path in ("/-/ready", "/-/healthy"):
                self.send_body(200, b"Prometheus Server is Ready.\n", "text/plain; charset=utf-8")
                return
            if path == "/sandbox/http_sd":
                self._json(200, self.sandbox.http_sd())
                return
            if path == "/api/v1/status/buildinfo":
                data: dict[str, Any] = {"version": VERSION, "revision": "sandbox", "branch": "sandbox",
                                        "buildUser": "svcbot", "buildDate": "", "goVersion": "python"}
            elif path == "/api/v1/query":
                data = self.sandbox.engine.instant(params)
            elif path == "/api/v1/query_range":
                data = self.sandbox.engine.range(params)
            else:
                self.send_body(404, b"404 page not found\n", "text/plain; charset=utf-8")
                return
        except ApiError as e:
            self._json(e.status, {"status": "error", "errorType": e.error_type, "error": str(e)})
            return
        self._json(200, {"status": "success", "data": data})

    def _json(self, status: int, doc: Any) -> None:
        self.send_body(status, json.dumps(doc, separators=(",", ":")).encode(), "application/json")
