"""A Loki stand-in: the HTTP API svcbot uses, answering like Loki does, for the sandbox and the tests.

Endpoints: `POST /loki/api/v1/push` (JSON, optionally gzipped; timestamps must be strings),
`/loki/api/v1/query_range` (log queries -> `streams`, metric queries -> `matrix`), `/loki/api/v1/query`
(metric queries only -> `vector`), `/loki/api/v1/labels`, `/loki/api/v1/label/<name>/values` and
`/ready`. Queries are evaluated by sandbox.logql_engine. Errors are plain text with Loki's status codes
and wording (400 parse errors and limits, 401 without an org id when auth is on, 429, 504).

Served by sandbox.httpserver (HTTP/1.1 keep-alive with TCP_NODELAY), on 127.0.0.1 unless given a host.

Fault switches for tests: `fail_next(status, times)` answers the next read requests with 429/502/503/504
(with Loki's bodies); `stall(seconds)` holds read requests without answering. Every request is recorded
in `seen` (path, parameters, tenant, auth scheme) so tests can count what reached Loki.

    loki = LokiSandbox().start()
    loki.push_seed()              # the sandbox's log lines, timestamped relative to now
    ... loki.url ...
    loki.stop()
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from sandbox import logql_engine as engine
from sandbox.httpserver import LOOPBACK, HttpServer, KeepAliveHandler

DEFAULT_TENANT = "ops"  # the sandbox catalog's loki.tenant
MAX_ENTRIES = 5000  # max_entries_limit_per_query
MAX_QUERY_LENGTH_NS = 721 * 3_600_000_000_000  # max_query_length: 30d1h
MAX_LABELS = 15
MAX_LINE_BYTES = 256 * 1024
REJECT_OLDER_NS = 7 * 86_400_000_000_000
CREATION_GRACE_NS = 10 * 60_000_000_000
DEFAULT_LABELS_WINDOW_NS = 6 * 3_600_000_000_000
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

FAULT_BODIES = {
    429: "too many outstanding requests",
    500: "rpc error: code = Internal desc = sandbox fault injection",
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "Service Unavailable",
    504: "request timed out, decrease the duration of the request or add more label matchers (prefer exact "
         "match over regex match) to reduce the amount of data processed",
}


class HttpError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status, self.body = status, body


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    params: Mapping[str, str]
    tenant: str | None
    auth: str | None  # "basic", "bearer" or None; never the credentials


def go_duration(ns: int) -> str:
    """Go's time.Duration.String() for whole seconds and up (e.g. 744h0m0s)."""
    seconds = ns // 1_000_000_000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s" if minutes else f"{secs}s"


def parse_timestamp(value: str, default_ns: int) -> int:
    """Loki's rules: integers of up to 10 digits are seconds, longer ones nanoseconds, floats seconds
    (to the millisecond), else RFC3339."""
    value = value.strip()
    if not value:
        return default_ns
    if re.fullmatch(r"-?\d+", value):
        return int(value) * 1_000_000_000 if len(value.lstrip("-")) <= 10 else int(value)
    if re.fullmatch(r"-?\d+\.\d*", value):
        return round(float(value) * 1000) * 1_000_000
    try:
        import datetime as _dt  # noqa: PLC0415 - only for the rarely used RFC3339 form

        parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HttpError(400, f'cannot parse "{value}" to a valid timestamp') from None
    fraction = re.search(r"\.(\d+)", value)
    nanos = int((fraction.group(1) + "000000000")[:9]) if fraction else 0
    return int(parsed.timestamp()) * 1_000_000_000 + nanos


def parse_duration_ns(value: str, what: str) -> int:
    value = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return round(float(value) * 1e9)
    if engine._DURATION.fullmatch(value):
        return engine.duration_ns(value)
    raise HttpError(400, f'cannot parse "{value}" to a valid duration for {what}')


class LokiSandbox:
    """The stand-in server. Not thread-hostile: pushes and queries may run at once."""

    def __init__(self, host: str = LOOPBACK, port: int = 0, *, auth_enabled: bool = True,
                 basic_auth: tuple[str, str] | None = None, bearer_token: str | None = None,
                 tenant: str = DEFAULT_TENANT) -> None:
        self._http = HttpServer(type("LokiHandler", (_Handler,), {"sandbox": self}), name="sandbox-loki",
                                host=host, port=port)
        # require X-Scope-OrgID and keep tenants apart (Loki's auth_enabled: true), the default as in production;
        # auth_enabled=False is Loki's single-tenant mode (every request is tenant "fake")
        self.auth_enabled = auth_enabled
        self.tenant = tenant  # where push() and push_seed() write unless told otherwise
        self.basic_auth = basic_auth  # what a reverse proxy in front of Loki would check
        self.bearer_token = bearer_token
        self.seen: list[SeenRequest] = []
        self._tenants: dict[str, dict[tuple[tuple[str, str], ...], engine.Stream]] = {}
        self._lock = threading.Lock()
        self._faults: list[tuple[int, str, str]] = []
        self._stall_until = 0.0
        self._released = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> LokiSandbox:
        self._released.clear()
        self._http.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let stalled requests go
        self._http.stop()

    def __enter__(self) -> LokiSandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._http.host

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    def addresses(self) -> dict[str, str]:
        return {"loki": self.url}

    # --- data -----------------------------------------------------------------------------------------

    def push(self, streams: list[dict[str, Any]], tenant: str | None = None, timeout: float = 10.0) -> None:
        """Push streams in Loki's JSON push format through the HTTP API (to `tenant`, default self.tenant)."""
        tenant = tenant or self.tenant
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        auth: Any = self.basic_auth
        if self.bearer_token:
            headers["Authorization"] = f"Bearer {self.bearer_token}"
        response = requests.post(self.url + "/loki/api/v1/push", json={"streams": streams}, headers=headers,
                                 auth=auth, timeout=timeout)
        if response.status_code != 204:
            raise RuntimeError(f"push failed: {response.status_code} {response.text[:200]}")

    def push_seed(self, now: float | None = None, *, tenant: str | None = None,
                  namespace_label: str = "namespace", service_label: str = "app",
                  pods: Mapping[tuple[str, str], list[str]] | None = None) -> int:
        """Push the sandbox's seed log lines, timestamped relative to `now` (under the names in `pods`, see
        sandbox.seed.logs.seed_streams); return how many."""
        from sandbox.seed.logs import seed_streams  # noqa: PLC0415 - the seed is only needed here

        streams = seed_streams(time.time() if now is None else now, namespace_label=namespace_label,
                               service_label=service_label, pods=pods)
        for start in range(0, len(streams), 20):
            self.push(streams[start:start + 20], tenant=tenant)
        return sum(len(stream["values"]) for stream in streams)

    def line_count(self) -> int:
        with self._lock:
            return sum(len(stream.lines) for streams in self._tenants.values() for stream in streams.values())

    # --- faults ---------------------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, body: str | None = None, *, matching: str = "") -> None:
        """Answer the next `times` read requests with `status` (Loki's body for it unless given); with
        `matching`, only requests whose query contains that text (e.g. "count_over_time")."""
        with self._lock:
            text = body if body is not None else FAULT_BODIES.get(status, "")
            self._faults.extend([(status, text, matching)] * times)

    def stall(self, seconds: float = 3600.0) -> None:
        """Hold read requests for `seconds` (or until unstall/stop) before answering."""
        self._released.clear()
        self._stall_until = time.monotonic() + seconds

    def unstall(self) -> None:
        self._stall_until = 0.0
        self._released.set()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
        self.unstall()

    def fault_state(self) -> dict[str, Any]:
        """What is switched on: {"failing": {status: how many more}, "stalled": bool}."""
        with self._lock:
            failing: dict[str, int] = {}
            for status, _body, _matching in self._faults:
                failing[str(status)] = failing.get(str(status), 0) + 1
        return {"failing": failing, "stalled": self._stall_until > time.monotonic()}

    def requests_to(self, path: str) -> list[SeenRequest]:
        return [seen for seen in self.seen if seen.path == path]

    # --- request handling (called from the handler threads) ----------------------------------------------

    def _take_fault(self, query: str) -> tuple[int, str] | None:
        with self._lock:
            for index, (status, body, matching) in enumerate(self._faults):
                if matching in query:
                    del self._faults[index]
                    return status, body
            return None

    def _wait_if_stalled(self) -> None:
        left = self._stall_until - time.monotonic()
        if left > 0:
            self._released.wait(left)

    def _check_auth(self, headers: Mapping[str, str]) -> str:
        header = headers.get("Authorization", "")
        if self.basic_auth is not None:
            expected = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if header != expected:
                raise HttpError(401, "Unauthorized")
        if self.bearer_token is not None and header != f"Bearer {self.bearer_token}":
            raise HttpError(401, "Unauthorized")
        tenant = headers.get("X-Scope-OrgID", "")
        if not self.auth_enabled:
            return "fake"
        if not tenant:
            raise HttpError(401, "no org id")
        return tenant

    def _streams(self, tenant: str) -> list[engine.Stream]:
        tenants = tenant.split("|")  # multi-tenant queries read every named tenant
        return [stream for name in tenants for stream in self._tenants.get(name, {}).values()]

    def handle_push(self, tenant: str, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise HttpError(400, f"loghttp.PushRequest: cannot decode the push body: {exc}") from None
        if "|" in tenant:
            raise HttpError(400, "multiple org IDs present")
        streams = payload.get("streams") if isinstance(payload, dict) else None
        if not isinstance(streams, list):
            raise HttpError(400, "loghttp.PushRequest.Streams: expected a list of streams")
        now = time.time_ns()
        accepted: list[tuple[dict[str, str], list[tuple[int, str]]]] = []
        for number, item in enumerate(streams):
            labels = item.get("stream") if isinstance(item, dict) else None
            if not isinstance(labels, dict) or not labels:
                raise HttpError(400, f"streams[{number}]: a stream needs at least one label")
            if len(labels) > MAX_LABELS:
                raise HttpError(400, f"stream '{_show(labels)}' has {len(labels)} label names; limit {MAX_LABELS}")
            for name, value in labels.items():
                if not LABEL_NAME.match(str(name)) or not isinstance(value, str):
                    raise HttpError(400, f"error parsing labels {_show(labels)}: invalid label {name!r}")
            entries: list[tuple[int, str]] = []
            for index, value in enumerate(item.get("values") or []):
                if not isinstance(value, list) or len(value) not in (2, 3):
                    raise HttpError(400, f"streams[{number}].values[{index}]: expected [\"<ns>\", \"<line>\"]")
                if not isinstance(value[0], str) or not value[0].isdigit():
                    raise HttpError(400, f"streams[{number}].values[{index}]: the timestamp must be a string "
                                         "of nanoseconds since the epoch")
                if not isinstance(value[1], str):
                    raise HttpError(400, f"streams[{number}].values[{index}]: the line must be a string")
                timestamp = int(value[0])
                if timestamp < now - REJECT_OLDER_NS:
                    raise HttpError(400, f"entry for stream '{_show(labels)}' has timestamp too old: {value[0]}")
                if timestamp > now + CREATION_GRACE_NS:
                    raise HttpError(400, f"entry for stream '{_show(labels)}' has timestamp too new: {value[0]}")
                if len(value[1].encode()) > MAX_LINE_BYTES:
                    raise HttpError(400, f"line too long for stream '{_show(labels)}': limit {MAX_LINE_BYTES}")
                entries.append((timestamp, value[1]))
            accepted.append((dict(labels), entries))
        with self._lock:
            store = self._tenants.setdefault(tenant, {})
            for labels, entries in accepted:
                key = tuple(sorted(labels.items()))
                stream = store.get(key)
                if stream is None:
                    stream = store[key] = engine.Stream(labels=labels)
                for timestamp, line in entries:
                    stream.add(timestamp, line)

    def handle_query_range(self, tenant: str, params: Mapping[str, str]) -> dict[str, Any]:
        query = _required(params, "query")
        now = time.time_ns()
        end = parse_timestamp(params.get("end", ""), now)
        since = parse_duration_ns(params["since"], "since") if params.get("since") else 3_600_000_000_000
        start = parse_timestamp(params.get("start", ""), end - since)
        if end < start:
            raise HttpError(400, "end timestamp must not be before or equal to start time")
        if end - start > MAX_QUERY_LENGTH_NS:
            raise HttpError(400, f"the query time range exceeds the limit (query length: {go_duration(end - start)}, "
                                 "limit: 30d1h)")
        limit = _int(params.get("limit", "100"), "limit")
        if limit > MAX_ENTRIES:
            raise HttpError(400, f"max entries limit per query exceeded, limit > max_entries_limit_per_query "
                                 f"({limit} > {MAX_ENTRIES})")
        if limit <= 0:
            raise HttpError(400, "limit must be a positive value")
        direction = params.get("direction", "backward").lower()
        if direction not in ("forward", "backward"):
            raise HttpError(400, f"invalid direction {params['direction']!r}")
        expr = _parse(query)
        started = time.perf_counter()
        with self._lock:
            streams = self._streams(tenant)
            if isinstance(expr, engine.LogExpr):
                result = engine.eval_log(expr, streams, start, end, limit=limit, backward=direction == "backward")
                kind = "streams"
            else:
                default_step = max((end - start) // 1_000_000_000 // 250, 1) * 1_000_000_000
                step = parse_duration_ns(params["step"], "step") if params.get("step") else default_step
                result = _metric(lambda: engine.eval_matrix(expr, streams, start, end, step))
                kind = "matrix"
        return _envelope(kind, result, started)

    def handle_query(self, tenant: str, params: Mapping[str, str]) -> dict[str, Any]:
        expr = _parse(_required(params, "query"))
        if isinstance(expr, engine.LogExpr):
            raise HttpError(400, "log queries are not supported as an instant query type, please change your "
                                 "query to a range query type")
        at = parse_timestamp(params.get("time", ""), time.time_ns())
        started = time.perf_counter()
        with self._lock:
            streams = self._streams(tenant)
            result = _metric(lambda: engine.eval_vector(expr, streams, at))
        return _envelope("vector", result, started)

    def handle_labels(self, tenant: str, params: Mapping[str, str], name: str | None) -> dict[str, Any]:
        end = parse_timestamp(params.get("end", ""), time.time_ns())
        since = parse_duration_ns(params["since"], "since") if params.get("since") else DEFAULT_LABELS_WINDOW_NS
        start = parse_timestamp(params.get("start", ""), end - since)
        matchers: tuple[engine.Matcher, ...] = ()
        if params.get("query"):
            expr = _parse(params["query"])
            if not isinstance(expr, engine.LogExpr):
                raise HttpError(400, "only a stream selector is accepted as the query of a label request")
            matchers = expr.matchers
        with self._lock:
            streams = [stream for stream in engine.select(self._streams(tenant), matchers)
                       if stream.window(start, end)]
            if name is None:
                names = {label for stream in streams for label in stream.labels}
            else:
                names = {stream.labels[name] for stream in streams if name in stream.labels}
        return {"status": "success", "data": sorted(names)}


def _show(labels: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f'{name}="{value}"' for name, value in sorted(labels.items())) + "}"


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise HttpError(400, f"{name} parameter is missing")
    return value


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HttpError(400, f'strconv.Atoi: parsing "{value}": invalid syntax ({name})') from None


def _parse(query: str) -> engine.Expr:
    try:
        return engine.parse(query)
    except (engine.ParseError, engine.QueryError) as exc:
        raise HttpError(400, str(exc)) from None


def _metric(evaluate: Any) -> list[dict[str, Any]]:
    try:
        result: list[dict[str, Any]] = evaluate()
    except engine.QueryError as exc:
        raise HttpError(400, str(exc)) from None
    return result


def _envelope(kind: str, result: list[dict[str, Any]], started: float) -> dict[str, Any]:
    lines = sum(len(item.get("values", ())) for item in result) if kind == "streams" else 0
    elapsed = time.perf_counter() - started
    return {"status": "success", "data": {"resultType": kind, "result": result, "stats": {
        "summary": {"execTime": elapsed, "queueTime": 0, "totalLinesProcessed": lines,
                    "totalEntriesReturned": lines}}}}


class _Handler(KeepAliveHandler):
    sandbox: LokiSandbox
    server_version = "loki-sandbox"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _body(self) -> bytes:
        body = self.read_body()
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        body = self._body()
        query = split.query
        if method == "POST" and self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            query = "&".join(part for part in (query, body.decode("utf-8", "replace")) if part)
        params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
        auth = self.headers.get("Authorization", "").split(" ", 1)[0].lower() or None
        self.sandbox.seen.append(SeenRequest(method, path, params, self.headers.get("X-Scope-OrgID"), auth))
        try:
            if path == "/ready":
                self._send(200, "ready\n", "text/plain; charset=utf-8")
                return
            tenant = self.sandbox._check_auth(self.headers)
            if path == "/loki/api/v1/push" and method == "POST":
                content_type = self.headers.get("Content-Type", "")
                if not content_type.startswith("application/json"):
                    raise HttpError(415, f"unsupported Content-Type {content_type!r}: the stand-in takes JSON")
                self.sandbox.handle_push(tenant, body)
                self._send(204, "", "text/plain")
                return
            fault = self.sandbox._take_fault(params.get("query", ""))
            self.sandbox._wait_if_stalled()
            if fault is not None:
                raise HttpError(*fault)
            if path == "/loki/api/v1/query_range":
                answer = self.sandbox.handle_query_range(tenant, params)
            elif path == "/loki/api/v1/query":
                answer = self.sandbox.handle_query(tenant, params)
            elif path == "/loki/api/v1/labels":
                answer = self.sandbox.handle_labels(tenant, params, None)
            elif (match := re.fullmatch(r"/loki/api/v1/label/([^/]+)/values", path)) is not None:
                answer = self.sandbox.handle_labels(tenant, params, match.group(1))
            else:
                raise HttpError(404, "404 page not found")
            self._send(200, json.dumps(answer, ensure_ascii=False), "application/json; charset=UTF-8")
        except HttpError as exc:
            self._send(exc.status, exc.body + "\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            return  # the client hung up: nobody to answer

    def _send(self, status: int, body: str, content_type: str) -> None:
        try:
            self.send_body(status, body.encode("utf-8", errors="surrogateescape"), content_type)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client hung up: nobody to answer
