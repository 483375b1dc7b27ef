"""Helpers for the metrics tests (imported by name, like the other test folders' *_helpers modules): running a
command as a user, and a local HTTP server standing in for a Prometheus that is slow or answers errors."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def run(runtime: Any, text: str, user: str = "U0ALICE") -> Any:
    return runtime.dispatcher.execute(text, user, source="terminal", follow_runs=True)


class FixedPrometheus:
    """A local HTTP server answering every request with one status and body after `delay` seconds."""

    def __init__(self, status: int, body: dict[str, Any] | str, delay: float = 0.0) -> None:
        payload = (json.dumps(body) if isinstance(body, dict) else body).encode()
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if delay:
                    release.wait(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *_args: object) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """A client that gave up (the timeouts under test) breaks the pipe: expected."""

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
