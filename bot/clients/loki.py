"""The Loki HTTP client: the only module that talks to Loki.

Reads only (query_range, query, labels, label values, ready), so every call may be retried: on 429, 502,
503, 504 and connection failures, with exponential backoff and full jitter, as long as the invocation's
deadline leaves room for another attempt. Each attempt's timeout is fitted to what is left of the
deadline, so a stalled Loki is reported by name before the command's deadline passes.

Loki's error bodies are plain text; they become `UserError` (the query or range cannot be run as asked:
the user can change it) or `BackendError` (Loki is busy, down, or refuses svcbot's credentials). No
requests exception leaves this module. Credentials come from the environment and never appear in
messages or logs: `SVCBOT_LOKI_USER` + `SVCBOT_LOKI_PASSWORD` (basic), or `SVCBOT_LOKI_USER` +
`SVCBOT_LOKI_TOKEN` (basic with a token as password, as Grafana Cloud expects), or `SVCBOT_LOKI_TOKEN`
alone (bearer).
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
import structlog

from bot.clients.breaker import CircuitBreaker
from bot.clients.deadlines import DeadlineAdapter, total_deadline
from bot.core.catalog import Loki
from bot.core.errors import BackendError, BackendUnavailable, BotError, DeadlineExceeded, UserError

log = structlog.get_logger("svcbot.loki")

LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_LIMIT = 5000  # Loki's default max_entries_limit_per_query


@dataclass(frozen=True)
class LogStream:
    """One stream of a `streams` result: its labels (stream and extracted) and its [ns, line] entries."""

    labels: Mapping[str, str]
    entries: Sequence[tuple[int, str]]


@dataclass(frozen=True)
class Series:
    """One series of a `matrix` result: its labels and (unix seconds, value) points."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]] = field(default_factory=tuple)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.2  # seconds; doubled each retry, then jittered
BACKOFF_CAP = 4.0
CONNECT_TIMEOUT = 3.05
RESERVE = 0.3  # seconds kept back from the deadline to turn an answer (or a failure) into a reply
MIN_ATTEMPT = 0.2  # an attempt with less time than this is not worth starting
BODY_LIMIT = 256


def _now_ns() -> int:
    return time.time_ns()


class LokiClient:
    """A small requests-based client for Loki's read API, built once per process (see bot.clients.backends)."""

    def __init__(
        self,
        url: str,
        *,
        tenant: str | None = None,
        timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.base_url = url.rstrip("/")
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            # Total deadlines: a server dripping bytes cannot hold a call past its time (bot/clients/deadlines.py).
            session.mount("http://", DeadlineAdapter())
            session.mount("https://", DeadlineAdapter())
        self._session = session
        self._sleep = sleep
        self._jitter = jitter
        self._headers = {"Accept": "application/json", "User-Agent": "svcbot"}
        self.breaker = CircuitBreaker("Loki")
        if tenant:
            self._headers["X-Scope-OrgID"] = tenant
        environ = os.environ if environ is None else environ
        self._auth: tuple[str, str] | None = None
        user = environ.get("SVCBOT_LOKI_USER", "")
        password = environ.get("SVCBOT_LOKI_PASSWORD", "") or environ.get("SVCBOT_LOKI_TOKEN", "")
        token = environ.get("SVCBOT_LOKI_TOKEN", "")
        if user and password:
            self._auth = (user, password)
        elif token:
            self._headers["Authorization"] = f"Bearer {token}"
        split = urlsplit(self.base_url)
        self.display = f"{split.scheme}://{split.hostname or ''}{f':{split.port}' if split.port else ''}"

    @classmethod
    def from_catalog(cls, config: Loki, environ: Mapping[str, str] | None = None) -> LokiClient:
        return cls(config.url, tenant=config.tenant, timeout=config.timeout, environ=environ)

    lane = "loki"  # the lane its queries run on when a command asks several at once (bot/clients/lanes.py)

    def close(self) -> None:
        self._session.close()

    # --- the API --------------------------------------------------------------------------------------

    def query_range(
        self,
        query: str,
        *,
        start_ns: int,
        end_ns: int,
        limit: int = 100,
        direction: str = "backward",
        deadline: float | None = None,
    ) -> list[LogStream]:
        """A log query over [start, end): its streams (the limit counts entries across all of them)."""
        params = {"query": query, "start": str(start_ns), "end": str(end_ns),
                  "limit": str(max(1, min(MAX_LIMIT, limit))), "direction": direction}
        data = self._get("/loki/api/v1/query_range", params, deadline)
        return _streams(_result(data, "streams"))

    def metric_range(
        self, query: str, *, start_ns: int, end_ns: int, step_seconds: int, deadline: float | None = None,
    ) -> list[Series]:
        """A metric query over a range, answered as a matrix."""
        params = {"query": query, "start": str(start_ns), "end": str(end_ns), "step": f"{int(step_seconds)}s"}
        data = self._get("/loki/api/v1/query_range", params, deadline)
        return _matrix(_result(data, "matrix"))

    def query(self, query: str, *, time_ns: int | None = None, deadline: float | None = None) -> list[Series]:
        """An instant metric query: one point per series (a `vector`; a `scalar` becomes one series)."""
        params = {"query": query, "time": str(time_ns if time_ns is not None else _now_ns())}
        data = self._get("/loki/api/v1/query", params, deadline)
        kind = data.get("resultType")
        if kind == "vector":
            return [Series(labels=_labels(item.get("metric")), points=(_point(item.get("value")),))
                    for item in _list(data.get("result"))]
        if kind == "scalar":
            return [Series(labels={}, points=(_point(data.get("result")),))]
        if kind == "matrix":
            return _matrix(_list(data.get("result")))
        raise BackendError(f"Loki answered an instant query with an unexpected result type {kind!r}")

    def labels(self, *, start_ns: int | None = None, end_ns: int | None = None,
               deadline: float | None = None) -> list[str]:
        return self._names("/loki/api/v1/labels", _window(start_ns, end_ns, None), deadline)

    def label_values(self, name: str, *, query: str | None = None, start_ns: int | None = None,
                     end_ns: int | None = None, deadline: float | None = None) -> list[str]:
        if not LABEL_NAME.match(name):
            raise UserError(f"{name!r} is not a label name")
        return self._names(f"/loki/api/v1/label/{name}/values", _window(start_ns, end_ns, query), deadline)

    def ready(self, deadline: float | None = None) -> bool:
        """True when Loki's /ready answers 200; never raises for a down Loki."""
        try:
            timeout = self._attempt_timeout(deadline)
            with total_deadline(time.monotonic() + timeout[1]):
                response = self._session.get(self.base_url + "/ready", headers=self._headers, auth=self._auth,
                                             timeout=timeout)
        except (requests.RequestException, BackendError):
            return False
        return response.status_code == 200

    # --- transport ------------------------------------------------------------------------------------

    def _names(self, path: str, params: dict[str, str], deadline: float | None) -> list[str]:
        payload = self._request(path, params, deadline)
        return [str(item) for item in _list(payload.get("data"))]

    def _get(self, path: str, params: dict[str, str], deadline: float | None) -> dict[str, Any]:
        payload = self._request(path, params, deadline)
        data = payload.get("data")
        if not isinstance(data, dict):
            raise BackendError("Loki's answer has no data section")
        return data

    def _attempt_timeout(self, deadline: float | None) -> tuple[float, float]:
        read = self.timeout
        if deadline is not None:
            left = deadline - time.monotonic() - RESERVE
            if left < MIN_ATTEMPT:
                raise DeadlineExceeded("no time left to ask Loki before the command deadline")
            read = min(read, left)
        return min(CONNECT_TIMEOUT, read), read

    def _request(self, path: str, params: dict[str, str], deadline: float | None) -> dict[str, Any]:
        """One query, retried where safe; Loki's circuit breaker fails it at once while Loki is down."""
        self.breaker.before_call()
        try:
            payload = self._request_with_retries(path, params, deadline)
        except BackendUnavailable:
            self.breaker.failure()
            raise
        except BotError:
            self.breaker.success()  # Loki answered (a parse error, a bad range): it is up
            raise
        self.breaker.success()
        return payload

    def _request_with_retries(self, path: str, params: dict[str, str], deadline: float | None) -> dict[str, Any]:
        attempt = 0
        while True:
            connect, read = self._attempt_timeout(deadline)
            retry_after: float | None = None
            # The read timeout bounds each wait for bytes; the total deadline bounds the whole answer, so
            # a Loki (or a proxy) sending one byte a second is cut after `read` seconds like a silent one.
            try:
                response = self._get_within(path, params, connect, read)
            except requests.ConnectionError as exc:  # includes ConnectTimeout: nothing reached Loki
                failure: BotError = BackendUnavailable(
                    f"cannot reach Loki at {self.display} ({_reason(exc)})")
            except requests.Timeout as exc:  # a read timeout: Loki took the query and stalled
                raise BackendUnavailable(
                    f"Loki at {self.display} did not answer within {read:.1f}s; it may be overloaded "
                    "(try a shorter --since, or add --level/--grep to narrow the query)") from exc
            except requests.RequestException as exc:
                raise BackendUnavailable(f"the request to Loki at {self.display} failed ({_reason(exc)})") from exc
            else:
                if response.status_code == 200:
                    return _json(response)
                failure = _status_error(response, self.display)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                retry_after = _retry_after(response)
            attempt += 1
            delay = self._backoff(attempt, retry_after)
            room = float("inf") if deadline is None else deadline - time.monotonic() - RESERVE - MIN_ATTEMPT
            if attempt >= MAX_ATTEMPTS or delay > room:
                log.warning("loki.gave_up", path=path, attempts=attempt, error=failure.message)
                raise failure
            log.info("loki.retry", path=path, attempt=attempt, delay_s=round(delay, 3), error=failure.message)
            self._sleep(delay)

    def _get_within(self, path: str, params: dict[str, str], connect: float, read: float) -> requests.Response:
        """One GET whose whole answer (headers and body) arrives within `read` seconds, or a Timeout."""
        with total_deadline(time.monotonic() + read) as scope:
            try:
                return self._session.get(self.base_url + path, params=params, headers=self._headers,
                                         auth=self._auth, timeout=(connect, read))
            except requests.RequestException as exc:
                if scope.expired:  # cut by the total deadline: report it as the read timeout it stands for
                    raise requests.ReadTimeout(f"no whole answer within {read:.1f}s") from exc
                raise

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)], but never before Retry-After."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)
        delay = self._jitter(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, BACKOFF_CAP))
        return delay


# --- answers --------------------------------------------------------------------------------------------

def _json(response: requests.Response) -> dict[str, Any]:
    try:
        payload = orjson.loads(response.content)  # a 5,000-line answer decodes in a third of json's time
    except ValueError as exc:
        raise BackendError(f"Loki answered with something that is not JSON: {_body(response)!r}") from exc
    if not isinstance(payload, dict):
        raise BackendError("Loki answered with JSON that is not an object")
    if payload.get("status", "success") != "success":
        detail = str(payload.get("error", ""))[:BODY_LIMIT]
        raise BackendError(f"Loki answered status {payload.get('status')!r}: {detail}")
    return payload


def _result(data: Mapping[str, Any], expected: str) -> list[Any]:
    kind = data.get("resultType")
    if kind != expected:
        raise BackendError(f"Loki answered with a {kind!r} result where a {expected!r} result was expected")
    return _list(data.get("result"))


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _labels(value: object) -> dict[str, str]:
    return {str(key): str(item) for key, item in value.items()} if isinstance(value, dict) else {}


def _streams(result: list[Any]) -> list[LogStream]:
    streams = []
    for item in result:
        if not isinstance(item, dict):
            continue
        entries = []
        for value in _list(item.get("values")):
            try:
                entries.append((int(value[0]), str(value[1])))
            except (TypeError, ValueError, IndexError) as exc:
                raise BackendError(f"Loki answered with a malformed log entry: {str(value)[:80]!r}") from exc
        streams.append(LogStream(labels=_labels(item.get("stream")), entries=tuple(entries)))
    return streams


def _point(value: object) -> tuple[float, float]:
    try:
        return float(value[0]), float(value[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError) as exc:
        raise BackendError(f"Loki answered with a malformed sample: {str(value)[:80]!r}") from exc


def _matrix(result: list[Any]) -> list[Series]:
    return [Series(labels=_labels(item.get("metric")),
                   points=tuple(_point(value) for value in _list(item.get("values"))))
            for item in result if isinstance(item, dict)]


def _window(start_ns: int | None, end_ns: int | None, query: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if start_ns is not None:
        params["start"] = str(start_ns)
    if end_ns is not None:
        params["end"] = str(end_ns)
    if query:
        params["query"] = query
    return params


# --- errors ---------------------------------------------------------------------------------------------

def _body(response: requests.Response) -> str:
    """The first line of a (plain text) error body, cut short: Loki bodies can echo the whole query."""
    text = (response.text or "").strip().replace("\r", " ")
    first = text.split("\n", 1)[0]
    return first if len(first) <= BODY_LIMIT else first[: BODY_LIMIT - 1] + "…"


def _reason(exc: BaseException) -> str:
    """A short cause without URLs (they could carry credentials) or object reprs."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset",
                   "Temporary failure in name resolution", "No route to host", "certificate verify failed"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(exc).__name__


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _status_error(response: requests.Response, where: str) -> BackendError | UserError:
    status = response.status_code
    body = _body(response)
    lowered = body.lower()
    if status == 400:
        if "max entries limit" in lowered:
            return UserError(f"Loki refuses that many lines in one query ({body}); use a smaller --limit")
        if "time range exceeds" in lowered or "query length" in lowered:
            return UserError(f"the time range is longer than this Loki allows ({body}); use a shorter --since")
        if "parse error" in lowered:
            return UserError(f"Loki could not parse the query: {body}")
        return UserError(f"Loki rejected the query: {body}")
    if status in {401, 403}:
        return BackendError(
            f"Loki at {where} refused svcbot ({status}: {body}); check SVCBOT_LOKI_USER/SVCBOT_LOKI_PASSWORD "
            "or SVCBOT_LOKI_TOKEN, and the catalog's loki.tenant")
    if status == 404:
        return BackendError(f"Loki at {where} has no such API (404); loki.url must be the Loki API root")
    if status == 429:
        return BackendUnavailable(f"Loki is busy ({body or 'too many outstanding requests'}); try again in a minute",
                                  retry_after=_retry_after(response))
    if status == 504:
        return BackendUnavailable(
            f"Loki timed out running the query ({body or 'gateway timeout'}); "
            "try a shorter --since, or add --level/--grep to narrow it")
    if status in {502, 503}:
        return BackendUnavailable(f"Loki at {where} is unavailable ({status}: {body or 'no details'})")
    return BackendUnavailable(f"Loki at {where} failed ({status}: {body or 'no details'})")
