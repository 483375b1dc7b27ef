"""Kubernetes watch streams for /svc watch: a list that gives a resourceVersion, then a watch from it.

One stream per namespace and kind (pods, deployments, HPAs). `watch` yields ("ADDED" | "MODIFIED" |
"DELETED" | "BOOKMARK", object) as the API server sends them (JSON lines of a chunked answer, read as they
arrive, with bookmarks asked for), until the server ends the watch (`timeoutSeconds`) or the caller closes it.
A watch whose resourceVersion is too old (410 Gone, as an HTTP status or as an ERROR event) raises
`WatchExpired`: the caller lists again and compares. Other failures come out as the project's errors.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from bot.clients.kube.client import JSON, KubeClient, ResourceRef
from bot.core.errors import BackendUnavailable

READ_SLACK = 15.0  # seconds a watch's read may wait beyond the server's own timeoutSeconds


@dataclass(frozen=True)
class Kind:
    resource: str
    group: str
    noun: str


KINDS = {
    "pods": Kind("pods", "", "pod"),
    "deployments": Kind("deployments", "apps", "deployment"),
    "horizontalpodautoscalers": Kind("horizontalpodautoscalers", "autoscaling", "horizontal pod autoscaler"),
}


# The generated client's calls, spelled out per kind (the chart's RBAC test reads them from this source).
def _lister(client: KubeClient, resource: str, namespace: str) -> Callable[..., Any]:
    """A function taking the generated client's keyword arguments (watch=True for a watch)."""
    if resource == "pods":
        core = client._api("CoreV1Api")
        return lambda **kw: core.list_namespaced_pod(namespace, **kw)
    if resource == "deployments":
        apps = client._api("AppsV1Api")
        return lambda **kw: apps.list_namespaced_deployment(namespace, **kw)
    autoscaling = client._api("AutoscalingV2Api")
    return lambda **kw: autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace, **kw)


def _watcher(client: KubeClient, resource: str, namespace: str, resource_version: str, *, timeout_seconds: int,
             request_timeout: tuple[float, float]) -> Any:
    """The watch request itself: a chunked answer of JSON lines, read as they arrive."""
    common = {"resource_version": resource_version, "allow_watch_bookmarks": True, "timeout_seconds": timeout_seconds,
              "_preload_content": False, "_request_timeout": request_timeout}
    if resource == "pods":
        core = client._api("CoreV1Api")
        return core.list_namespaced_pod(namespace, watch=True, **common)
    if resource == "deployments":
        apps = client._api("AppsV1Api")
        return apps.list_namespaced_deployment(namespace, watch=True, **common)
    autoscaling = client._api("AutoscalingV2Api")
    return autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace, watch=True, **common)


class WatchExpired(BackendUnavailable):
    """410 Gone: the resourceVersion is too old for the server's watch cache; list again."""


def list_for_watch(client: KubeClient, resource: str, namespace: str, *,
                   deadline: float | None = None) -> tuple[list[JSON], str]:
    """Every object of a kind in a namespace, and the list's resourceVersion to watch from."""
    kind = KINDS[resource]
    target = ResourceRef("list", kind.resource, kind.group, kind.noun, namespace)
    lister = _lister(client, resource, namespace)
    data = client._read_json(target, lambda t: lister(_preload_content=False, _request_timeout=t), deadline=deadline)
    items = [item for item in data.get("items") or [] if isinstance(item, dict)]
    return items, str((data.get("metadata") or {}).get("resourceVersion") or "")


class WatchStream:
    """One watch request; iterate it for events, `close()` from another thread to end it at once."""

    def __init__(self, client: KubeClient, resource: str, namespace: str, resource_version: str, *,
                 timeout_seconds: int = 300, on_connect: Callable[[], None] = lambda: None) -> None:
        self.on_connect = on_connect
        self.client = client
        self.kind = KINDS[resource]
        self.namespace = namespace
        self.resource_version = resource_version
        self.timeout_seconds = timeout_seconds
        self._response: Any = None
        self._closed = threading.Event()

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # closing a broken stream is best effort
                response.shutdown()  # unblocks a read waiting in another thread

    def __iter__(self) -> Iterator[tuple[str, JSON]]:
        target = ResourceRef("watch", self.kind.resource, self.kind.group, self.kind.noun, self.namespace)
        try:
            response = _watcher(self.client, self.kind.resource, self.namespace, self.resource_version,
                                timeout_seconds=self.timeout_seconds,
                                request_timeout=(self.client.connect_timeout, self.timeout_seconds + READ_SLACK))
        except ApiException as exc:
            if exc.status == 410:
                raise WatchExpired(f"cluster {self.client.name}: watch of {self.kind.resource} in "
                                   f"{self.namespace} expired (410 Gone)") from exc
            raise self.client._api_error(target, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"cluster {self.client.name}: cannot watch {self.kind.resource} in "
                                     f"{self.namespace}: {type(exc).__name__}") from exc
        self._response = response
        self.on_connect()
        if self._closed.is_set():
            self.close()
        yield from self._events(response)

    def _events(self, response: Any) -> Iterator[tuple[str, JSON]]:
        pending = b""
        try:
            for chunk in response.stream(65536, decode_content=True):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        yield self._event(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._closed.is_set():
                return
            raise BackendUnavailable(f"cluster {self.client.name}: the watch of {self.kind.resource} in "
                                     f"{self.namespace} broke: {type(exc).__name__}") from exc
        finally:
            response.release_conn()

    def _event(self, line: bytes) -> tuple[str, JSON]:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise BackendUnavailable(f"cluster {self.client.name} sent an unreadable watch event") from exc
        kind = str(event.get("type") or "")
        obj = event.get("object") if isinstance(event.get("object"), dict) else {}
        if kind == "ERROR":
            if obj.get("code") == 410 or obj.get("reason") in ("Expired", "Gone"):
                raise WatchExpired(f"cluster {self.client.name}: watch of {self.kind.resource} in "
                                   f"{self.namespace} expired: {obj.get('message', '')}")
            raise BackendUnavailable(f"cluster {self.client.name}: watch error: {obj.get('message', '')}")
        return kind, obj


__all__ = ["KINDS", "WatchExpired", "WatchStream", "list_for_watch"]
