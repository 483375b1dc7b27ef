"""Helpers for the /svc logs tests: catalogs pointing at a Loki, and a server with fixed answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICES = ("payment", "orders", "gateway", "inventory")


def catalog_yaml(loki_url: str | None, *, deadline: str = "10s", grafana: bool = True,
                 services: tuple[str, ...] = SERVICES, extra_env: str = "") -> str:
    loki = ""
    if loki_url is not None:
        links = ', grafana_url: "https://grafana.example.com", datasource_uid: loki-uid' if grafana else ""
        loki = f'loki: {{url: "{loki_url}", tenant: ops, timeout: 5s{links}}}\n'
    service_lines = "\n".join(f"  {name}: {{}}" for name in services)
    return (
        f"settings: {{default_env: prod, command_deadline: {deadline}, rate_limit: {{per_user: 1000/min}}}}\n"
        "clusters: {nonprod: {context: nonprod}, prod: {context: prod}}\n"
        "environments:\n"
        "  dev: {cluster: nonprod, namespace: dev}\n"
        "  staging: {cluster: nonprod, namespace: staging}\n"
        "  prod: {cluster: prod, namespace: prod}\n"
        f"{extra_env}"
        f"{loki}"
        f"services:\n{service_lines}\n"
        "access: {rules: [{verbs: [status, logs, trace], envs: ['*'], who: ['*']}]}\n"
    )


# --- a fixture server answering with fixed bodies (Loki's documented responses) ----------------------------

class FixedAnswers:
    """A tiny HTTP server answering every GET with the next queued (status, content type, body)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str, str]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                status, content_type, body = outer.answers.pop(0) if outer.answers else (404, "text/plain", "")
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer_json(self, payload: Any) -> None:
        self.answers.append((200, "application/json", json.dumps(payload) if not isinstance(payload, str)
                             else payload))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
