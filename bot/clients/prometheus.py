"""The Prometheus HTTP client: the only module that talks to Prometheus' query API.

Reads only (`/api/v1/query`, `/api/v1/query_range`), so every call may be retried: on 429, 502, 503, 504 and
connection failures, with exponential backoff and full jitter, while the caller's deadline leaves room.
Each attempt's timeout is fitted to what is left of the deadline, and a total deadline (bot/clients/deadlines.py)
bounds a whole answer, so a slow Prometheus is named before the command's deadline passes. A circuit
breaker per Prometheus fails calls at once while it is down.

Errors, in the project's words (no requests exception leaves this module):
- down: `BackendUnavailable("cannot reach Prometheus at ...")`; slow: `BackendUnavailable("... did not
  answer within ...")`; an error answer (Prometheus' JSON envelope, `errorType`/`error`): `BackendError`
  naming the error type (`bad_data`: the query was refused; `timeout`/`execution`: it ran too long).
- an empty result is not an error here: callers know which metric was missing and say so (bot/insight/metrics.py).

Credentials come from the environment (the catalog names the prefix, `auth_env`, default SVCBOT_PROMETHEUS):
`<prefix>_USER` + `<prefix>_PASSWORD` (basic), `<prefix>_USER` + `<prefix>_TOKEN` (basic with a token as
password), or `<prefix>_TOKEN` alone (bearer). They never appear in messages or logs.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from bot.clients.breaker import CircuitBreaker
from bot.clients.deadlines import DeadlineAdapter, total_deadline
from bot.core.catalog import Prometheus
from bot.core.errors import BackendError, BackendUnavailable, BotError, DeadlineExceeded

log = structlog.get_logger("svcbot.prometheus")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 3
BACKOFF_BASE = 0.2
BACKOFF_CAP = 2.0
CONNECT_TIMEOUT = 3.05
RESERVE = 0.3  # seconds kept back from the deadline to turn an answer (or a failure) into a reply
MIN_ATTEMPT = 0.2
BODY_LIMIT = 256
MAX_POINTS = 11_000  # Prometheus refuses a range query of more than 11,000 points per series


@dataclass(frozen=True)
class Sample:
    """One series of an answer: its labels and (unix seconds, value) points (one point for an instant query)."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]

    @property
    def last(self) -> float:
        return self.points[-1][1] if self.points else math.nan


class PrometheusClient:
    """A small requests-based client for Prometheus' query API, one per configured Prometheus."""

    lane = "prometheus"  # the lane its queries run on when a command asks several at once

    def __init__(self, url: str, *, tenant: str | None = None, timeout: float = 10.0,
                 auth_env: str = "SVCBOT_PROMETHEUS", environ: Mapping[str, str] | None = None,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[float, float], float] = random.uniform) -> None:
        self.base_url = url.rstrip("/")
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            session.mount("http://", DeadlineAdapter())
            session.mount("https://", DeadlineAdapter())
        self._session = session
        self._sleep = sleep
        self._jitter = jitter
        self._headers = {"Accept": "application/json", "User-Agent": "svcbot"}
        if tenant:
            self._headers["X-Scope-OrgID"] = tenant
        environ = os.environ if environ is None else environ
        self._auth: tuple[str, str] | None = None
        user = environ.get(f"{auth_env}_USER", "")
        password = environ.get(f"{auth_env}_PASSWORD", "") or environ.get(f"{auth_env}_TOKEN", "")
        token = environ.get(f"{auth_env}_TOKEN", "")
        if user and password:
            self._auth = (user, password)
        elif token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.auth_env = auth_env
        split = urlsplit(self.base_url)
        self.display = f"{split.scheme}://{split.hostname or ''}{f':{split.port}' if split.port else ''}"
        self.breaker = CircuitBreaker(f"Prometheus {self.display}")
        self._count_lock = threading.Lock()
        self.queries = 0  # queries sent (bench/ counts them)

    @classmethod
    def from_catalog(cls, config: Prometheus, environ: Mapping[str, str] | None = None) -> PrometheusClient:
        return cls(config.url, tenant=config.tenant, timeout=config.timeout, auth_env=config.auth_env,
                   environ=environ)

    def close(self) -> None:
        self._session.close()

    # --- the API --------------------------------------------------------------------------------------

    def query(self, query: str, *, at: float | None = None, deadline: float | None = None) -> list[Sample]:
        """An instant query at `at` (unix seconds; now by default): one point per series."""
        params = {"query": query, "time": f"{at if at is not None else time.time():.3f}"}
        data = self._data("/api/v1/query", params, deadline)
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "vector":
            return [Sample(_labels(item.get("metric")), (_point(item.get("value")),))
                    for item in _list(result) if isinstance(item, dict)]
        if kind == "scalar":
            return [Sample({}, (_point(result),))]
        if kind == "matrix":
            return _matrix(_list(result))
        raise BackendError(f"Prometheus at {self.display} answered with an unexpected result type {kind!r}")

    def query_range(self, query: str, *, start: float, end: float, step: float,
                    deadline: float | None = None) -> list[Sample]:
        """A range query over [start, end] every `step` seconds: a matrix."""
        step = max(step, (end - start) / MAX_POINTS, 0.001)
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._data("/api/v1/query_range", params, deadline)
        if data.get("resultType") != "matrix":
            raise BackendError(f"Prometheus at {self.display} answered a range query with a "
                               f"{data.get('resultType')!r} result")
        return _matrix(_list(data.get("result")))

    # --- transport ------------------------------------------------------------------------------------

    def _data(self, path: str, params: dict[str, str], deadline: float | None) -> dict[str, Any]:
        with self._count_lock:
            self.queries += 1
        self.breaker.before_call()
        try:
            payload = self._with_retries(path, params, deadline)
        except BackendUnavailable:
            self.breaker.failure()
            raise
        except BotError:
            self.breaker.success()  # it answered (an error about the query): it is up
            raise
        self.breaker.success()
        data = payload.get("data")
        if not isinstance(data, dict):
            raise BackendError(f"Prometheus at {self.display} answered without a data section")
        return data

    def _attempt_timeout(self, deadline: float | None) -> tuple[float, float]:
        read = self.timeout
        if deadline is not None:
            left = deadline - time.monotonic() - RESERVE
            if left < MIN_ATTEMPT:
                raise DeadlineExceeded("no time left to ask Prometheus before the command deadline")
            read = min(read, left)
        return min(CONNECT_TIMEOUT, read), read

    def _with_retries(self, path: str, params: dict[str, str], deadline: float | None) -> dict[str, Any]:
        attempt = 0
        while True:
            connect, read = self._attempt_timeout(deadline)
            retry_after: float | None = None
            # Prometheus stops evaluating at its own `timeout` parameter: ask it to give up just before we do.
            sent = {**params, "timeout": f"{max(0.1, read - 0.1):.1f}s"}
            try:
                response = self._post_within(path, sent, connect, read)
            except requests.ConnectionError as exc:
                failure: BotError = BackendUnavailable(f"cannot reach Prometheus at {self.display} ({_reason(exc)})")
            except requests.Timeout as exc:
                raise BackendUnavailable(
                    f"Prometheus at {self.display} did not answer within {read:.1f}s; it may be overloaded "
                    "(try a shorter --since)") from exc
            except requests.RequestException as exc:
                raise BackendUnavailable(
                    f"the request to Prometheus at {self.display} failed ({_reason(exc)})") from exc
            else:
                if response.status_code == 200:
                    return self._json(response)
                failure = self._status_error(response)
                if response.status_code not in RETRY_STATUSES:
                    raise failure
                retry_after = _retry_after(response)
            attempt += 1
            delay = max(self._jitter(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)),
                        min(retry_after or 0.0, BACKOFF_CAP))
            room = math.inf if deadline is None else deadline - time.monotonic() - RESERVE - MIN_ATTEMPT
            if attempt >= MAX_ATTEMPTS or delay > room:
                log.warning("prometheus.gave_up", path=path, attempts=attempt, error=failure.message)
                raise failure
            log.info("prometheus.retry", path=path, attempt=attempt, delay_s=round(delay, 3), error=failure.message)
            self._sleep(delay)

    def _post_within(self, path: str, params: dict[str, str], connect: float, read: float) -> requests.Response:
        """One POST (form-encoded, as Grafana sends: long queries fit) answered whole within `read` seconds."""
        with total_deadline(time.monotonic() + read) as scope:
            try:
                return self._session.post(self.base_url + path, data=params, headers=self._headers,
                                          auth=self._auth, timeout=(connect, read))
            except requests.RequestException as exc:
                if scope.expired:
                    raise requests.ReadTimeout(f"no whole answer within {read:.1f}s") from exc
                raise

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError as exc:
            raise BackendError(f"Prometheus at {self.display} answered with something that is not JSON: "
                               f"{_body(response)!r}") from exc
        if not isinstance(payload, dict):
            raise BackendError(f"Prometheus at {self.display} answered with JSON that is not an object")
        if payload.get("status") != "success":
            raise _envelope_error(payload, self.display)
        return payload

    def _status_error(self, response: requests.Response) -> BackendError:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("status") == "error":
            error = _envelope_error(payload, self.display)
            if status in RETRY_STATUSES:
                return BackendUnavailable(error.message, retry_after=_retry_after(response))
            return error
        body = _body(response)
        if status in {401, 403}:
            return BackendError(
                f"Prometheus at {self.display} refused svcbot ({status}); check {self.auth_env}_USER/"
                f"{self.auth_env}_PASSWORD or {self.auth_env}_TOKEN, and the catalog's prometheus tenant")
        if status == 404:
            return BackendError(f"Prometheus at {self.display} has no query API (404); prometheus url must be the "
                                "server's root (the part before /api/v1)")
        if status in RETRY_STATUSES:
            return BackendUnavailable(f"Prometheus at {self.display} is unavailable ({status}: {body or 'no details'})",
                                      retry_after=_retry_after(response))
        return BackendError(f"Prometheus at {self.display} failed ({status}: {body or 'no details'})")


# --- answers --------------------------------------------------------------------------------------------

def _envelope_error(payload: Mapping[str, Any], where: str) -> BackendError:
    kind = str(payload.get("errorType") or "error")[:40]
    detail = str(payload.get("error") or "no details")[:BODY_LIMIT]
    if kind == "bad_data":
        return BackendError(f"Prometheus at {where} refused svcbot's query (bad_data: {detail})")
    if kind in {"timeout", "canceled"}:
        return BackendUnavailable(f"Prometheus at {where} gave up running the query ({kind}: {detail}); "
                                  "try a shorter --since")
    if kind == "unavailable":
        return BackendUnavailable(f"Prometheus at {where} is unavailable ({detail})")
    return BackendError(f"Prometheus at {where} answered with an error ({kind}: {detail})")


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _labels(value: object) -> dict[str, str]:
    return {str(key): str(item) for key, item in value.items()} if isinstance(value, dict) else {}


def _point(value: object) -> tuple[float, float]:
    try:
        return float(value[0]), float(value[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError) as exc:
        raise BackendError(f"Prometheus answered with a malformed sample: {str(value)[:80]!r}") from exc


def _matrix(result: list[Any]) -> list[Sample]:
    return [Sample(_labels(item.get("metric")), tuple(_point(value) for value in _list(item.get("values"))))
            for item in result if isinstance(item, dict)]


def _body(response: requests.Response) -> str:
    text = (response.text or "").strip().replace("\r", " ")
    first = text.split("\n", 1)[0]
    return first if len(first) <= BODY_LIMIT else first[: BODY_LIMIT - 1] + "…"


def _reason(exc: BaseException) -> str:
    """A short cause without URLs (they could carry credentials) or object reprs."""
    text = str(exc).lower()
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset",
                   "Temporary failure in name resolution", "No route to host", "certificate verify failed"):
        if marker.lower() in text:
            return marker.lower()
    return type(exc).__name__


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
