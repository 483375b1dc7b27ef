"""Servers for the front-door tests (their fixtures are in conftest.py): a loopback server that answers one
byte a second (the slow drip), and a scripted one that answers each request with a fixed status, headers
and body."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class DripServer:
    """Accepts connections and answers each one byte a second: from the status line on (`headers`), or with
    whole headers and then a body that never ends (`body`). Counts connections it served."""

    def __init__(self, mode: str = "headers") -> None:
        self.mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self.closed = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)  # the request (small, one read is enough on loopback)
                if self.mode == "body":
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 1000000\r\n\r\n")
                    payload = b'{"data": "' + b"x" * 999_000
                else:
                    payload = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + b" " * 1000
                for index in range(len(payload)):
                    if self._stop.wait(1.0):
                        return
                    connection.sendall(payload[index:index + 1])
            except OSError:
                self.closed.set()  # the client cut the connection

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@dataclass
class Scripted:
    """Answers every request with `status`, `headers` and `body`; records the paths asked for. `routes`: the
    first (piece, status, body) whose piece occurs in the path (query included) answers instead."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    body: bytes = b"{}"
    paths: list[str] = field(default_factory=list)
    url: str = ""
    routes: list[tuple[str, int, bytes]] = field(default_factory=list)

    def answer(self, path: str) -> tuple[int, bytes]:
        return next(((status, body) for piece, status, body in self.routes if piece in path),
                    (self.status, self.body))


def write_kubeconfig(path: Path, url: str, context: str = "prod-ctx") -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": "svcbot", "user": {"token": "test-token-not-secret"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "svcbot"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path
