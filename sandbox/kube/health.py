"""Simulated HTTP endpoints of the pods (/healthz, /readyz, anything else), configurable per service and per
pod, read by the kubelet probes of the simulation and by pods/proxy and services/proxy."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from .util import clone


@dataclass(frozen=True)
class Endpoint:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str -> text/plain
    latency: float = 0.0  # seconds, real time
    content_type: str = ""  # a str body's media type when not text/plain (e.g. Prometheus' text format)

    def payload(self) -> tuple[str, bytes]:
        if self.content_type and isinstance(self.body, str):
            return self.content_type, self.body.encode()
        if isinstance(self.body, dict | list):
            return "application/json", json.dumps(self.body, separators=(",", ":")).encode()
        if self.body is None:
            return "text/plain; charset=utf-8", b""
        return "text/plain; charset=utf-8", str(self.body).encode()


NOT_FOUND = Endpoint(404, "404 page not found\n")

DEFAULTS: dict[str, Endpoint] = {
    "/healthz": Endpoint(200, {"status": "ok"}),
    "/readyz": Endpoint(200, {"status": "ok", "checks": {}}),
    "/livez": Endpoint(200, {"status": "ok"}),
}


def norm_path(path: str) -> str:
    path = "/" + path.lstrip("/")
    return path.split("?", 1)[0]


def endpoint_from(spec: Any, base: Endpoint | None = None) -> Endpoint:
    base = base or Endpoint()
    if not isinstance(spec, dict):
        return base
    return Endpoint(
        status=int(spec.get("status", base.status)),
        body=clone(spec["body"]) if "body" in spec else base.body,
        latency=float(spec.get("latency", base.latency)),
    )


class Health:
    """Layers, most specific first: pod override, service in namespace, service everywhere, defaults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._defaults: dict[str, Endpoint] = dict(DEFAULTS)
        self._service: dict[tuple[str, str, str], Endpoint] = {}  # (service, namespace or "*", path)
        self._by_cluster: dict[tuple[str, str, str, str], Endpoint] = {}  # (cluster, ns, service, path)
        self._pod: dict[tuple[str, str, str, str], Endpoint] = {}  # (cluster, ns, pod, path)

    def set_default(self, path: str, ep: Endpoint) -> None:
        with self._lock:
            self._defaults[norm_path(path)] = ep

    def set_service(self, service: str, namespace: str, path: str, ep: Endpoint) -> None:
        """Seed configuration: namespace "*" applies in every namespace."""
        with self._lock:
            self._service[(service, namespace, norm_path(path))] = ep

    def set(self, cluster: str, namespace: str, service: str, path: str, ep: Endpoint, pod: str | None = None) -> None:  # noqa: PLR0917
        with self._lock:
            if pod:
                self._pod[(cluster, namespace, pod, norm_path(path))] = ep
            else:
                self._by_cluster[(cluster, namespace, service, norm_path(path))] = ep

    def clear(self, cluster: str | None = None, namespace: str | None = None, service: str | None = None,
              path: str | None = None, pod: str | None = None) -> None:
        p = norm_path(path) if path else None
        with self._lock:
            for k in list(self._by_cluster):
                if (cluster in (None, k[0]) and namespace in (None, k[1]) and service in (None, k[2])
                        and p in (None, k[3]) and pod is None):
                    del self._by_cluster[k]
            for k in list(self._pod):
                if (cluster in (None, k[0]) and namespace in (None, k[1]) and pod in (None, k[2])
                        and p in (None, k[3]) and service is None):
                    del self._pod[k]

    def has_pod_override(self, cluster: str, namespace: str, pod: str, path: str) -> bool:
        with self._lock:
            return (cluster, namespace, pod, norm_path(path)) in self._pod

    def resolve(self, cluster: str, namespace: str, service: str, pod: str, path: str) -> Endpoint:
        p = norm_path(path)
        with self._lock:
            for table, key in (
                (self._pod, (cluster, namespace, pod, p)),
                (self._by_cluster, (cluster, namespace, service, p)),
                (self._service, (service, namespace, p)),
                (self._service, (service, "*", p)),
                (self._defaults, p),
            ):
                ep = table.get(key)  # type: ignore[attr-defined]
                if ep is not None:
                    return ep
        return NOT_FOUND
