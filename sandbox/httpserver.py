"""The HTTP server under every stand-in (the Kubernetes API in sandbox/kube/server.py, Loki in
sandbox/loki.py, Slack in sandbox/slack/front.py): a ThreadingHTTPServer on a daemon thread, bound to
loopback on a port picked once and kept across restarts, and the request-handler plumbing the three share.

    server = HttpServer(MyHandler, name="sandbox-thing")   # MyHandler(KeepAliveHandler) or (Handler)
    server.start(); server.url                              # http://127.0.0.1:<port>
    server.stop()                                           # or stop(drop_connections=True)
    server.start()                                          # the same port again

What each stand-in decides for itself: whether its handler keeps connections alive (KeepAliveHandler,
HTTP/1.1 with TCP_NODELAY) or answers one request per connection (Handler, HTTP/1.0); whether stopping also
cuts the keep-alive connections already open (the Kubernetes stand-in's "down" fault must look like a dead
server to clients holding pooled connections); where connection errors go; and its own fault hooks (stalls,
injected errors), which live with each stand-in because each one's clients expect different failures.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
POLL_INTERVAL = 0.05  # how often serve_forever looks for shutdown(): bounds how long stop() takes


class _Server(ThreadingHTTPServer):
    # A handler thread stuck in a stall, a watch or a follow must never keep the interpreter alive, and
    # server_close() must not wait for one (daemon threads are never joined).
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True  # a restart re-binds the kept port at once, whatever TIME_WAIT holds

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: HttpServer) -> None:
        self.owner = owner
        super().__init__(addr, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        ctx = self.owner.ssl_context
        if ctx is not None:
            # the handshake happens on the handler's thread (first read), never on the accepting one
            conn = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.owner.error_log is None:
            super().handle_error(request, client_address)
            return
        # Clients that reset connections are routine for a stand-in under fault tests: no traceback.
        self.owner.error_log.debug("connection error from %s", client_address, exc_info=True)


class HttpServer:
    """One listening socket and the thread that serves it.

    `port` 0 picks a free port on the first start(); later starts bind that same port, so clients that
    were told the URL reach the stand-in again after a stop. `generation` grows on every stop: a handler
    that serves a long stream (a watch, a followed log) or a keep-alive connection compares it with the
    value it started under to notice that the server it belonged to is gone.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str, host: str = LOOPBACK, port: int = 0,
                 error_log: logging.Logger | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context  # None: plain HTTP; else HTTPS with this server context
        self.name = name
        self.host = host
        self.port = port
        self.error_log = error_log  # None: socketserver's default (a traceback on stderr)
        self.generation = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> None:
        """Bind and serve (idempotent). Raises OSError when the kept port cannot be bound."""
        with self._lock:
            if self._httpd is not None:
                return
            httpd = _Server((self.host, self.port), self.handler, self)
            self.port = httpd.server_address[1]
            self._httpd = httpd
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
                                            name=self.name, daemon=True)
            self._thread.start()

    def stop(self, *, drop_connections: bool = False) -> None:
        """Stop listening (idempotent). Open keep-alive connections keep being served unless
        `drop_connections`, which shuts them down so their clients see a dead server."""
        with self._lock:
            httpd, self._httpd = self._httpd, None
            thread, self._thread = self._thread, None
            self.generation += 1
            conns = list(self._conns) if drop_connections else []
            if drop_connections:
                self._conns.clear()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def track(self, conn: socket.socket, add: bool) -> None:
        """Called by the handler for every connection it opens and closes (so stop() can cut them)."""
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)


class Handler(BaseHTTPRequestHandler):
    """Request plumbing the stand-ins share; speaks HTTP/1.0 (one request per connection).

    Subclasses set `request_log` to get the one-line-per-request log at debug level (None: no log, which
    the tests and the demo terminal want by default) and `log_prefix` to say which stand-in answered.
    """

    server: _Server
    request_log: logging.Logger | None = None
    log_prefix = ""

    def setup(self) -> None:
        super().setup()
        self.server.owner.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.request_log is not None:
            self.request_log.debug(self.log_prefix.replace("%", "%%") + format, *args)

    def read_body(self) -> bytes:
        """The request body as its Content-Length announces it (empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_body(self, status: int, body: bytes, content_type: str,
                  headers: Iterable[tuple[str, str]] = ()) -> None:
        """Status line, Content-Type, Content-Length, `headers` in order, then the body (not for HEAD)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


class KeepAliveHandler(Handler):
    """HTTP/1.1 with keep-alive, as the real servers' clients (kubectl, requests' pools) expect."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, a keep-alive client's delayed ACK would
    # hold the second write back for ~40 ms on every answer.
    disable_nagle_algorithm = True
