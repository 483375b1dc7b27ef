"""Fixtures for the front-door tests: the servers of front_door_servers.py, started and stopped per test."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from front_door_servers import DripServer, Scripted


@pytest.fixture(name="drip", params=["headers", "body"])
def _drip(request: pytest.FixtureRequest) -> Iterator[DripServer]:
    server = DripServer(request.param)
    yield server
    server.close()


@pytest.fixture(name="scripted")
def _scripted() -> Iterator[Scripted]:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.paths.append(self.path)
            status, body = script.answer(self.path)
            self.send_response(status)
            for key, value in script.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.do_GET()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield script
    server.shutdown()
    server.server_close()


