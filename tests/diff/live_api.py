"""A small Kubernetes API over HTTP serving Deployments and ConfigMaps for `/svc diff --live` tests.

It answers GETs for the two object kinds --live reads, with the API server's JSON and `Status` 404s,
and records every path asked for (so tests can show no Secret was ever requested). The real
kubernetes client talks to it through a kubeconfig; the full sandbox is used where it is available.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

_PATH = re.compile(r"^/(?:apis/apps/v1|api/v1)/namespaces/([^/]+)/(deployments|configmaps|secrets)/([^/?]+)")


@dataclass
class LiveApi:
    url: str
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (kind, ns, name)
    requests: list[str] = field(default_factory=list)

    def add_deployment(self, namespace: str, name: str, container: dict[str, Any],
                       volumes: list[dict[str, Any]] | None = None) -> None:
        self.objects["deployments", namespace, name] = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app", "image": "payment:1",
                                                                          **container}],
                                                          "volumes": volumes or []}}}}

    def add_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.objects["configmaps", namespace, name] = {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        self.requests.append(path)
        match = _PATH.match(path)
        if match is not None:
            namespace, kind, name = match.groups()
            found = self.objects.get((kind, namespace, name))
            if found is not None:
                return 200, found
            group = "apps" if kind == "deployments" else ""
            reason = f'{kind}{"." + group if group else ""} "{name}" not found'
            return 404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": reason, "reason": "NotFound", "code": 404}
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}


@contextmanager
def serve_live_api() -> Iterator[LiveApi]:
    api: LiveApi

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = api.answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api = LiveApi(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def write_kubeconfig(path: Path, url: str, contexts: tuple[str, ...]) -> Path:
    """One context per name, all pointing at `url`, without credentials worth anything."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
        "clusters": [{"name": name, "cluster": {"server": url}} for name in contexts],
        "users": [{"name": "svcbot", "user": {"token": "test-token-not-a-secret"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "svcbot"}} for name in contexts],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
