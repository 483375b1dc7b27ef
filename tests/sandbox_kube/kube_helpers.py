"""Helpers for the sandbox Kubernetes API tests: object builders, waiting, raw HTTP."""

from __future__ import annotations

import itertools
import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
TIME_SCALE = 0.05  # a 3-replica rollout with a readiness delay takes about a second
KUBECTL = Path(sys.executable).parent / "kubectl"
_counter = itertools.count(1)
_TRUSTED: dict[str, tuple[ssl.SSLContext, str]] = {}  # cluster URL -> (TLS context, admin token)


def trust(kube: Any) -> None:
    """Raw requests made with http() to this sandbox's clusters trust its CA and carry its admin's token."""
    context = kube.auth.client_context()
    for cluster in kube.clusters.values():
        _TRUSTED[cluster.url] = (context, kube.auth.admin_token)


def _credentials(url: str) -> tuple[ssl.SSLContext | None, str]:
    for prefix, found in _TRUSTED.items():
        if url.startswith(prefix + "/") or url == prefix:
            return found
    return None, ""


def unique(prefix: str) -> str:
    """A name no other test uses (tests share one session-wide sandbox)."""
    return f"{prefix}-{next(_counter)}-{int(time.time() * 1000) % 100000}"


def wait_for(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def deployment(name: str, image: str, *, replicas: int = 2, app: str | None = None,
               sidecar: bool = False, readiness: str | None = None, extra: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    app = app or name
    container: dict[str, Any] = {
        "name": "app", "image": image, "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
    }
    if readiness:
        container["readinessProbe"] = {"httpGet": {"path": readiness, "port": 8080}, "periodSeconds": 10}
    containers = [container]
    if sidecar:
        containers.append({"name": "sidecar", "image": "envoyproxy/envoy:v1.30.1"})
    d: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": app, "tier": "test"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": containers}}},
    }
    if extra:
        d["spec"].update(extra)
    return d


def job(name: str, image: str, command: list[str], *, backoff_limit: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "job", "image": image, "command": command}]}}},
    }


def http(method: str, url: str, body: Any = None, content_type: str = "application/json",
         headers: dict[str, str] | None = None, timeout: float = 10.0, token: str | None = None
         ) -> tuple[int, Any]:
    """A raw request (as the admin unless `token`; "" sends none); returns (status, parsed JSON or text)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", content_type)
    context, admin = _credentials(url)
    bearer = admin if token is None else token
    if bearer:
        req.add_header("Authorization", f"Bearer {bearer}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
        e.close()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")
