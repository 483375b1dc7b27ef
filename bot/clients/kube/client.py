"""The Kubernetes client's reads (this package is the only code that imports `kubernetes`).

One `KubeClient` per cluster of the catalog, created once by `Backends.kube(cluster)` and shared by every
command thread. Its ApiClient is built lazily (a bad kubeconfig never stops the bot from starting) from
the kubeconfig context the catalog names, or from the in-cluster service account.

Every call:
- fits its connect and read timeouts into what is left of the caller's deadline (`deadline=`, a
  `time.monotonic()` value; `invocation.deadline` in commands);
- is retried, when it is an idempotent read and the failure is transient, with exponential backoff and
  jitter, only while the deadline allows;
- returns plain JSON as the API server sent it (dicts with camelCase keys; lists return their `items`),
  read with `_preload_content=False` so nothing is lost or mangled by the generated models; the read verbs'
  GETs go out on the ApiClient's own pool without the generated layer (lean_get.py: it cost more CPU than
  the requests themselves), writes, the pod proxy and logs through the generated client;
- raises only bot.core.errors: `NotFound` ("no deployment payment-api in prod (namespace prod)"), `Forbidden`
  (which RBAC permission is missing), `Conflict`, `UserError` (400/422, the server's reason),
  `BackendUnavailable` (which cluster, since when) and `DeadlineExceeded`. No kubernetes, urllib3 or
  socket exception gets out (tests/status/test_status_kube_client.py proves it against a scripted server).

Layout: `ResourceRef` (what a call touches, in RBAC terms, for error wording), `KubeClient` with its plumbing
(`_call`: timeouts, retries, error mapping) and one section per API area (apps, core, autoscaling,
leases, the pod proxy). The deploy engine's writes, on the same `_call` path with `idempotent=False`, are
`DeployKube` in writes.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException, OpenApiException
from kubernetes.config.config_exception import ConfigException

from bot.clients import deadlines
from bot.clients.breaker import CircuitBreaker
from bot.clients.kube.lean_get import LeanGetter, path_of
from bot.clients.lanes import LANE_THREADS
from bot.core.catalog import Cluster
from bot.core.errors import (
    BackendUnavailable,
    BotError,
    Conflict,
    DeadlineExceeded,
    Forbidden,
    NotFound,
    UserError,
)

JSON = dict[str, Any]

CONNECT_TIMEOUT = 3.0  # seconds; a cluster that does not accept a connection in 3 s is down for us
READ_TIMEOUT = 10.0  # seconds, unless the caller's deadline is closer
MIN_CALL_TIME = 0.05  # below this much time left a call cannot succeed; fail with DeadlineExceeded
READ_ATTEMPTS = 3
BACKOFF_BASE = 0.1  # seconds; doubled on each retry, with +-50% jitter
BACKOFF_CAP = 1.0
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
BODY_LIMIT = 256  # characters of a server message kept in an error


def cut(text: str, limit: int = BODY_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- what a call is about: used to word errors -------------------------------------------------------


@dataclass(frozen=True)
class ResourceRef:
    """The object or collection a call touches, in RBAC terms (verb, group, resource, namespace)."""

    verb: str  # RBAC verb: get, list, patch, create, update
    resource: str  # plural resource, e.g. "deployments", "pods/proxy"
    group: str  # "" for the core group
    kind: str  # what a person calls it: "deployment", "config map"
    namespace: str
    name: str = ""

    @property
    def qualified_resource(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


# --- the pod proxy's answer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PodHttpResponse:
    """One GET through the API server's pod proxy.

    `status` is the pod's HTTP status, or None when the API server could not reach the pod (then
    `error` says why). `latency` is seconds for the whole round trip through the API server.
    """

    pod: str
    port: int
    path: str
    status: int | None
    body: bytes
    latency: float
    error: str = ""
    content_type: str = ""

    @property
    def ok(self) -> bool:
        """The kubelet's rule for HTTP probes: 200 <= status < 400."""
        return self.status is not None and 200 <= self.status < 400


# --- the client ---------------------------------------------------------------------------------------


class KubeClient:
    """One cluster. Thread-safe: the ApiClient (a urllib3 pool) is created once and shared."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        environments: Mapping[str, str] | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        pool_size: int = LANE_THREADS,  # a connection for every request its lane can have in flight
    ) -> None:
        """`environments` maps namespace -> environment name on this cluster, for error messages."""
        self.name = name
        self.cluster = cluster
        self.environments = dict(environments or {})
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._api_client: Any = None
        self._apis: dict[str, Any] = {}
        self._getter: LeanGetter | None = None
        self._failing_since: float | None = None  # wall clock of the first failure in a row
        self.breaker = CircuitBreaker(f"cluster {name}")
        self._requests = 0
        self._random = random.Random()  # noqa: S311 - backoff jitter, not secrets

    # --- plumbing -------------------------------------------------------------------------------------

    @property
    def lane(self) -> str:
        """The lane this cluster's requests run on when a command asks several things at once (bot/clients/lanes.py)."""
        return f"cluster {self.name}"

    @property
    def request_count(self) -> int:
        """HTTP requests sent to this cluster so far (retries included); for benchmarks and tests."""
        return self._requests

    @property
    def failing_since(self) -> float | None:
        """Wall-clock time since which every call failed to reach the cluster, or None when it answers."""
        return self._failing_since

    def close(self) -> None:
        """Drop the connection pool; the next call builds a new one."""
        with self._lock:
            api_client, self._api_client = self._api_client, None
            self._apis.clear()
            self._getter = None
        if api_client is not None:
            api_client.close()

    def prepare(self) -> None:
        """Load the kubeconfig and build the API classes the read verbs use, without a request: done at
        start-up (bot/slack/app.py), so the first command after a restart does not pay for it."""
        self._api("AppsV1Api")
        self._api("CoreV1Api")
        self._api("CoordinationV1Api")
        self._lean()

    @property
    def prepared(self) -> bool:
        return self._api_client is not None

    def _api(self, kind: str) -> Any:
        """The generated API class `kind` (CoreV1Api, AppsV1Api...) bound to this cluster's ApiClient."""
        with self._lock:
            if self._api_client is None:
                self._api_client = self._build_api_client()
            api = self._apis.get(kind)
            if api is None:
                api = self._apis[kind] = getattr(k8s, kind)(self._api_client)
            return api

    def _lean(self) -> LeanGetter:
        """GETs for the read verbs on this cluster's connections, without the generated layer (lean_get.py)."""
        getter = self._getter
        if getter is None:
            self._api("CoreV1Api")  # the ApiClient, built once
            with self._lock:
                if self._getter is None:
                    self._getter = LeanGetter(self._api_client)
                getter = self._getter
        return getter

    def _get(self, *segments: str, query: Mapping[str, str | None] | None = None,
             ) -> Callable[[tuple[float, float]], Any]:
        """The request for `_read_json`/`_items`: GET the API path made of `segments` (each encoded)."""
        path = path_of(*segments)
        getter = self._lean()
        return lambda timeouts: getter.get(path, query, timeouts)

    def _build_api_client(self) -> Any:
        configuration = k8s.Configuration()
        # We retry ourselves (reads only, within the deadline); urllib3's own retries would also
        # repeat writes and ignore the deadline.
        configuration.retries = False
        configuration.connection_pool_maxsize = self.pool_size
        try:
            if self.cluster.in_cluster:
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                api_client = k8s.ApiClient(configuration=configuration)
            else:
                # KUBECONFIG is read now, not at import time as the library's default does, so a process
                # (or a test) that sets it after importing us still gets it.
                api_client = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=os.environ.get("KUBECONFIG") or None, context=self.cluster.context,
                    persist_config=False, client_configuration=configuration)
            # Total deadlines (bot/clients/deadlines.py): a server dripping bytes is cut at the call's deadline.
            deadlines.install(api_client.rest_client.pool_manager)
            return api_client
        except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
            source = ("the in-cluster service account" if self.cluster.in_cluster
                      else f"kubeconfig context '{self.cluster.context}'")
            raise BackendUnavailable(f"cluster {self.name}: cannot load {source}: {cut(str(exc))}") from exc

    def _total(self, deadline: float | None) -> float:
        """The time by which a call, its retries and the reading of its answer end, whatever the server does."""
        return deadline if deadline is not None else time.monotonic() + self.connect_timeout + self.read_timeout

    def _timeouts(self, deadline: float | None) -> tuple[float, float]:
        if deadline is None:
            return self.connect_timeout, self.read_timeout
        left = deadline - time.monotonic()
        if left < MIN_CALL_TIME:
            raise DeadlineExceeded(f"no time left to ask cluster {self.name}")
        return min(self.connect_timeout, left), min(self.read_timeout, left)

    def _call(self, target: ResourceRef, request: Callable[[tuple[float, float]], Any], *,
              deadline: float | None, idempotent: bool,
              translate: Callable[[ResourceRef, ApiException], BotError] | None = None) -> Any:
        """Send one request (retried if idempotent), return the urllib3 response; map every failure.

        `request` gets the (connect, read) timeouts to pass as `_request_timeout`. The cluster's circuit
        breaker fails the call at once while the cluster is known to be down.
        """
        self.breaker.before_call()
        try:
            with deadlines.total_deadline(self._total(deadline)):
                response = self._call_with_retries(target, request, deadline=deadline, idempotent=idempotent,
                                                   translate=translate)
        except BackendUnavailable:
            self.breaker.failure()
            raise
        except BotError:
            self.breaker.success()  # the cluster answered (404, 403, 409...): it is reachable
            raise
        self.breaker.success()
        return response

    def _call_with_retries(self, target: ResourceRef, request: Callable[[tuple[float, float]], Any], *,
                           deadline: float | None, idempotent: bool,
                           translate: Callable[[ResourceRef, ApiException], BotError] | None = None) -> Any:
        attempts = READ_ATTEMPTS if idempotent else 1
        attempt = 0
        while True:
            attempt += 1
            timeouts = self._timeouts(deadline)
            with self._lock:
                self._requests += 1
            try:
                response = request(timeouts)
            except BotError:
                raise
            except ApiException as exc:
                error = (translate or self._api_error)(target, exc)
                if isinstance(error, BackendUnavailable) and exc.status in RETRYABLE_STATUS:
                    retry_after = error.retry_after
                else:
                    self._reachable()
                    raise error from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if deadlines.expired():  # cut at the total deadline: the answer was still dribbling in
                    raise self._unreachable(f"no answer within {timeouts[1]:.1f}s "
                                            "(an answer still arriving at the deadline)") from exc
                error = self._unreachable(_network_problem(exc, timeouts))
                retry_after = None
            except (OpenApiException, ValueError, TypeError) as exc:
                # The generated client validates arguments with pydantic and can fail to parse.
                raise BackendUnavailable(
                    f"cluster {self.name}: could not {target.verb} {target.qualified_resource}: {cut(str(exc))}"
                ) from exc
            else:
                self._reachable()
                return response
            if attempt >= attempts:
                raise error
            pause = self._backoff(attempt, retry_after)
            if deadline is not None and time.monotonic() + pause + MIN_CALL_TIME >= deadline:
                raise error
            time.sleep(pause)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        pause = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1)) * self._random.uniform(0.5, 1.5)
        if retry_after is not None:
            pause = max(pause, min(retry_after, BACKOFF_CAP * 2))
        return pause

    def _reachable(self) -> None:
        self._failing_since = None

    def _unreachable(self, problem: str) -> BackendUnavailable:
        with self._lock:
            if self._failing_since is None:
                self._failing_since = time.time()
            since = self._failing_since
        when = dt.datetime.fromtimestamp(since, tz=dt.UTC).strftime("%H:%M:%S UTC")
        return BackendUnavailable(f"cluster {self.name} unreachable: {problem} (failing since {when})")

    def _where(self, namespace: str) -> str:
        env = self.environments.get(namespace)
        return f"in {env} (namespace {namespace})" if env else f"in namespace {namespace} on cluster {self.name}"

    def _api_error(self, target: ResourceRef, exc: ApiException) -> BotError:
        status = exc.status or 0
        message = _status_message(exc)
        if status == 404:
            if target.name:
                return NotFound(f"no {target.kind} {target.name} {self._where(target.namespace)}")
            return NotFound(f"cluster {self.name} does not serve {target.qualified_resource} "
                            f"{self._where(target.namespace)} ({message or 'not found'})")
        if status == 403:
            group = target.group or '""'
            return Forbidden(
                f"svcbot may not {target.verb} {target.qualified_resource} {self._where(target.namespace)}: "
                f"missing RBAC permission verb={target.verb} resource={target.resource} apiGroup={group} "
                f"namespace={target.namespace} on cluster {self.name}"
            )
        if status == 401:
            return BackendUnavailable(f"cluster {self.name} rejected svcbot's credentials (401 Unauthorized): "
                                      "check the kubeconfig context or service account token")
        if status == 409:
            return Conflict(f"{target.kind} {target.name} {self._where(target.namespace)} changed meanwhile: "
                            f"{message or 'conflict'}")
        if status in (400, 422):
            return UserError(f"cluster {self.name} refused to {target.verb} {target.kind} {target.name} "
                             f"{self._where(target.namespace)}: {message or exc.reason}")
        if status == 0:  # TLS failures come back from the REST layer as status 0
            return self._unreachable(cut(str(exc.reason or "TLS error")))
        retry_after = _retry_after(exc)
        detail = message or str(exc.reason or "")
        return BackendUnavailable(
            f"cluster {self.name} answered {status} to {target.verb} {target.qualified_resource} "
            f"{self._where(target.namespace)}: {cut(detail)}", retry_after=retry_after)

    def _read_json(self, target: ResourceRef, request: Callable[[tuple[float, float]], Any], *,
                   deadline: float | None) -> JSON:
        with deadlines.total_deadline(self._total(deadline)):
            response = self._call(target, request, deadline=deadline, idempotent=True)
            data = self.read_body_json(target, response)
        if not isinstance(data, dict):
            raise BackendUnavailable(f"cluster {self.name} sent a {type(data).__name__} for "
                                     f"{target.qualified_resource}, not an object")
        return data

    def read_body_json(self, target: ResourceRef, response: Any) -> Any:
        """The JSON of a response's body, read within the current total deadline; errors name the cluster."""
        try:
            # orjson: decoding the lists was the largest single item of a status's CPU left (issue 22's profile)
            return orjson.loads(response.data)
        except (ValueError, RecursionError, urllib3.exceptions.HTTPError, OSError) as exc:
            if deadlines.expired():
                raise self._unreachable(f"no whole answer to {target.verb} {target.qualified_resource} "
                                        "before the deadline (the answer was still arriving)") from exc
            raise BackendUnavailable(f"cluster {self.name} sent an unreadable answer to {target.verb} "
                                     f"{target.qualified_resource}: {cut(str(exc))}") from exc
        finally:
            response.release_conn()

    def _items(self, target: ResourceRef, request: Callable[[tuple[float, float]], Any], *,
               deadline: float | None) -> list[JSON]:
        items = self._read_json(target, request, deadline=deadline).get("items")
        if items is None:
            return []
        if not isinstance(items, list):
            # The rest of svcbot relies on a list of objects: a wrong shape is the cluster's error, by name.
            raise BackendUnavailable(f"cluster {self.name} answered {target.verb} {target.qualified_resource} "
                                     f"{self._where(target.namespace)} with items that are a "
                                     f"{type(items).__name__}, not a list")
        return [item for item in items if isinstance(item, dict)]

    # --- apps/v1 reads --------------------------------------------------------------------------------

    def read_deployment(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON:
        target = ResourceRef("get", "deployments", "apps", "deployment", namespace, name)
        return self._read_json(target, self._get("apis", "apps", "v1", "namespaces", namespace, "deployments", name),
                               deadline=deadline)

    def list_deployments(self, namespace: str, label_selector: str | None = None, *,
                         deadline: float | None = None) -> list[JSON]:
        target = ResourceRef("list", "deployments", "apps", "deployment", namespace)
        return self._items(target, self._get("apis", "apps", "v1", "namespaces", namespace, "deployments",
                                             query={"labelSelector": label_selector}), deadline=deadline)

    def list_replicasets(self, namespace: str, label_selector: str | None = None, *,
                         deadline: float | None = None) -> list[JSON]:
        target = ResourceRef("list", "replicasets", "apps", "replica set", namespace)
        return self._items(target, self._get("apis", "apps", "v1", "namespaces", namespace, "replicasets",
                                             query={"labelSelector": label_selector}), deadline=deadline)

    # --- core/v1 reads --------------------------------------------------------------------------------

    def list_pods(self, namespace: str, label_selector: str | None = None, *,
                  deadline: float | None = None) -> list[JSON]:
        target = ResourceRef("list", "pods", "", "pod", namespace)
        return self._items(target, self._get("api", "v1", "namespaces", namespace, "pods",
                                             query={"labelSelector": label_selector}), deadline=deadline)

    def list_events(self, namespace: str, field_selector: str | None = None, *,
                    deadline: float | None = None) -> list[JSON]:
        target = ResourceRef("list", "events", "", "event", namespace)
        return self._items(target, self._get("api", "v1", "namespaces", namespace, "events",
                                             query={"fieldSelector": field_selector}), deadline=deadline)

    def read_config_map(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON:
        target = ResourceRef("get", "configmaps", "", "config map", namespace, name)
        return self._read_json(target, self._get("api", "v1", "namespaces", namespace, "configmaps", name),
                               deadline=deadline)

    # --- autoscaling/v2 reads -------------------------------------------------------------------------

    def list_hpas(self, namespace: str, *, deadline: float | None = None) -> list[JSON]:
        target = ResourceRef("list", "horizontalpodautoscalers", "autoscaling", "horizontal pod autoscaler",
                        namespace)
        return self._items(target, self._get("apis", "autoscaling", "v2", "namespaces", namespace,
                                             "horizontalpodautoscalers"), deadline=deadline)

    # --- coordination.k8s.io/v1 leases (deploy locks) -------------------------------------------------

    def read_lease(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON:
        target = ResourceRef("get", "leases", "coordination.k8s.io", "lease", namespace, name)
        return self._read_json(target, self._get("apis", "coordination.k8s.io", "v1", "namespaces", namespace,
                                                 "leases", name), deadline=deadline)

    def list_leases(self, namespace: str, label_selector: str | None = None, *,
                    deadline: float | None = None) -> list[JSON]:
        target = ResourceRef("list", "leases", "coordination.k8s.io", "lease", namespace)
        return self._items(target, self._get("apis", "coordination.k8s.io", "v1", "namespaces", namespace, "leases",
                                             query={"labelSelector": label_selector}), deadline=deadline)

    # --- the pod proxy (GET a pod's HTTP endpoint through the API server) ----------------------------

    def pod_http_get(self, namespace: str, pod: str, port: int, path: str, *,
                     deadline: float | None = None) -> PodHttpResponse:
        """GET `path` on `pod:port` through the API server. Not retried: a probe reports what it saw.

        The pod's own non-2xx answers come back as a response, not an error; only the API server's
        refusals (pod not found, RBAC, cluster down) raise.
        """
        target = ResourceRef("get", "pods/proxy", "", "pod", namespace, pod)
        # The generated client percent-encodes the path parameter, slashes included, so it is sent
        # without the leading slash (see reference/kubernetes.md section 4).
        relative = path.lstrip("/")
        started = time.monotonic()
        with deadlines.total_deadline(self._total(deadline)):
            return self._pod_http_get(target, port, path, relative=relative, started=started, deadline=deadline)

    def _pod_http_get(self, target: ResourceRef, port: int, path: str, *, relative: str, started: float,
                      deadline: float | None) -> PodHttpResponse:
        pod, namespace = target.name, target.namespace
        api = self._api("CoreV1Api")  # here, beside its call: the RBAC test reads the two together
        try:
            response = self._call(target, lambda t: api.connect_get_namespaced_pod_proxy_with_path(
                name=f"{pod}:{port}", namespace=namespace, path=relative, _preload_content=False,
                _request_timeout=t), deadline=deadline, idempotent=False,
                translate=self._proxy_error)
        except _UpstreamAnswer as answer:
            return PodHttpResponse(pod=pod, port=port, path=path, status=answer.status, body=answer.body,
                                   latency=time.monotonic() - started, error=answer.error,
                                   content_type=answer.content_type)
        try:
            body = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if deadlines.expired():
                return PodHttpResponse(pod=pod, port=port, path=path, status=response.status, body=b"",
                                       latency=time.monotonic() - started,
                                       error="the answer was still arriving at the deadline")
            return PodHttpResponse(pod=pod, port=port, path=path, status=response.status, body=b"",
                                   latency=time.monotonic() - started,
                                   error=f"the answer broke off: {cut(str(exc))}")
        finally:
            response.release_conn()
        return PodHttpResponse(pod=pod, port=port, path=path, status=response.status, body=body or b"",
                               latency=time.monotonic() - started,
                               content_type=str(response.headers.get("Content-Type", "")))

    def _proxy_error(self, target: ResourceRef, exc: ApiException) -> BotError:
        """Tell the API server's own refusals from the pod's answers passed through the proxy."""
        body_text = exc.body if isinstance(exc.body, str) else ""
        status_object = _parse_status(body_text)
        headers = exc.headers or {}
        content_type = str(headers.get("Content-Type", "")) if hasattr(headers, "get") else ""
        if status_object is None:
            return _UpstreamAnswer(exc.status, body_text.encode(), content_type=content_type)
        reason = status_object.get("reason")
        message = str(status_object.get("message") or "")
        if (exc.status in (502, 503) and reason in {"ServiceUnavailable", "InternalError", None, ""}) or (
                exc.status == 400 and reason == "BadRequest"):  # "pod x does not have a host assigned"
            # "error trying to reach service: dial tcp ...: connection refused": the pod did not answer.
            return _UpstreamAnswer(None, b"", error=cut(message or f"HTTP {exc.status} from the proxy"))
        return self._api_error(target, exc)

    # Writes (patches, leases, jobs) are in DeployKube below, on the same `_call` path with
    # `idempotent=False`: each a ResourceRef with its RBAC verb, so refusals are worded the same way.


class _UpstreamAnswer(BotError):
    """Internal: the pod (not the API server) answered non-2xx, or the API server could not reach it."""

    def __init__(self, status: int | None, body: bytes, error: str = "", content_type: str = "") -> None:
        super().__init__(error or f"HTTP {status}")
        self.status = status
        self.body = body
        self.error = error
        self.content_type = content_type


def _parse_status(text: str) -> JSON | None:
    """A metav1.Status the API server wrote, or None when the body is someone else's."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("kind") == "Status" and data.get("apiVersion") == "v1":
        return data
    return None


def _status_message(exc: ApiException) -> str:
    body = exc.body if isinstance(exc.body, str) else ""
    status = _parse_status(body)
    if status is not None:
        return cut(str(status.get("message") or status.get("reason") or ""))
    return cut(body) if body else ""


def _retry_after(exc: ApiException) -> float | None:
    headers = exc.headers
    if not headers or not hasattr(headers, "get"):
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


_ERRNO = re.compile(r"\[Errno -?\d+\]\s*([^)'\"]+)")


def _network_problem(exc: BaseException, timeouts: tuple[float, float]) -> str:
    """A few words for a transport failure, without object reprs."""
    connect, read = timeouts
    # NewConnectionError subclasses ConnectTimeoutError (urllib3 compatibility): test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        match = _ERRNO.search(str(exc))
        return match.group(1).strip().lower() if match else "cannot connect"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"no connection within {connect:.1f}s"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return f"no answer within {read:.1f}s"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return _network_problem(exc.reason, timeouts)
    text = str(exc)
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip().lower()
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "the connection broke off"
    return cut(text, 120) or type(exc).__name__
