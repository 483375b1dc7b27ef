"""A local Socket Mode endpoint: the WebSocket side of Slack that apps.connections.open hands out.

Like Slack, it sends ``{"type": "hello", ...}`` on connect, pushes envelopes to a connected app, and
expects an ack frame ``{"envelope_id": ..., "payload": ...}`` for each. Tests push envelopes, wait for
acks, and drop connections to exercise reconnects.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

logger = logging.getLogger("sandbox.slack.socket_mode")

DISCONNECT_MODES = ("close", "disconnect", "drop")


@dataclass(frozen=True)
class Envelope:
    """An envelope the sandbox pushed to a connection."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    connection_id: int
    sent_at: float  # time.monotonic()


@dataclass(frozen=True)
class Ack:
    """An ack frame received from the app."""

    envelope_id: str
    payload: dict[str, Any] | None  # what the app answered with (ack(text=...)), None for a bare ack
    connection_id: int
    at: float  # time.monotonic()
    latency: float | None  # seconds from sending the envelope to receiving its ack (None if unknown)


@dataclass
class _Conn:
    id: int
    ws: ServerConnection
    opened_at: float
    frames: list[str] = field(default_factory=list)


class SocketModeEndpoint:
    """The WebSocket server plus the record of envelopes, acks and connections."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, app_id: str = "A0SVCBOT") -> None:
        self.host = host
        self._port = port
        self.app_id = app_id
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._tickets: set[str] = set()
        self._live: dict[int, _Conn] = {}
        self._opened = 0
        self._rejected = 0
        self._envelopes: dict[str, Envelope] = {}
        self._acks: list[Ack] = []
        self._frames: list[tuple[int, str]] = []
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._server = serve(
            self._handle,
            self.host,
            self._port,
            process_request=self._check_ticket,
            close_timeout=2,
            ping_interval=None,  # the app pings us (slack_sdk's client does, every 5 s)
        )
        self._port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="slack-sandbox-socket-mode", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"ws://{self.host}:{self._port}/link/"

    def issue_url(self) -> str:
        """A fresh connection URL (what apps.connections.open returns), with a one-off ticket."""
        ticket = secrets.token_hex(16)
        with self._cond:
            self._tickets.add(ticket)
        return f"{self.base_url}?ticket={ticket}&app_id={self.app_id}"

    def reset(self) -> None:
        with self._cond:
            self._envelopes.clear()
            self._acks.clear()
            self._frames.clear()

    # -- the WebSocket side ------------------------------------------------------------------------

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        tickets = parse_qs(parts.query).get("ticket", [])
        with self._cond:
            known = parts.path.rstrip("/") == "/link" and bool(tickets) and tickets[0] in self._tickets
            if not known:
                self._rejected += 1
        if not known:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or missing ticket\n")
        return None

    def _handle(self, ws: ServerConnection) -> None:
        conn = _Conn(id=next(self._ids), ws=ws, opened_at=time.monotonic())
        with self._cond:
            self._live[conn.id] = conn
            self._opened += 1
            count = len(self._live)
            self._cond.notify_all()
        try:
            ws.send(
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": count,
                        "debug_info": {
                            "host": "sandbox-applink",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    }
                )
            )
            # Poll so the thread ends when the sandbox stops or the interpreter exits (websockets'
            # handler threads are not daemons).
            while not self._stopping.is_set() and threading.main_thread().is_alive():
                try:
                    raw = ws.recv(timeout=0.25)
                except TimeoutError:
                    continue
                self._on_frame(conn, raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
        except ConnectionClosed:
            logger.debug("socket mode connection %s closed by the client", conn.id)
        except Exception:  # a sandbox bug must not kill the server thread silently
            logger.exception("socket mode connection %s failed", conn.id)
        finally:
            with self._cond:
                self._live.pop(conn.id, None)
                self._cond.notify_all()

    def _on_frame(self, conn: _Conn, raw: str) -> None:
        now = time.monotonic()
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        with self._cond:
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                sent = self._envelopes.get(message["envelope_id"])
                payload = message.get("payload")
                self._acks.append(
                    Ack(
                        envelope_id=message["envelope_id"],
                        payload=payload if isinstance(payload, dict) else None,
                        connection_id=conn.id,
                        at=now,
                        latency=(now - sent.sent_at) if sent is not None else None,
                    )
                )
            else:
                self._frames.append((conn.id, raw))
            self._cond.notify_all()

    # -- pushing envelopes -------------------------------------------------------------------------

    def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> int:
        """Block until at least ``count`` connections are open; returns the open count."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._live) >= count, timeout=timeout):
                raise TimeoutError(
                    f"expected {count} Socket Mode connection(s), have {len(self._live)} after {timeout}s"
                )
            return len(self._live)

    def connection_count(self) -> int:
        with self._cond:
            return len(self._live)

    def connections_opened(self) -> int:
        with self._cond:
            return self._opened

    def connections_rejected(self) -> int:
        with self._cond:
            return self._rejected

    def send(self, env: dict[str, Any], *, connection_id: int | None = None, wait: float = 5.0) -> str:
        """Push an envelope to the newest open connection (or ``connection_id``); returns its envelope_id.

        Waits up to ``wait`` seconds for a connection. Slack delivers to any one connection; the newest is
        the one a reconnecting client listens on, which keeps tests deterministic.
        """
        deadline = time.monotonic() + wait
        while True:
            with self._cond:
                ok = self._cond.wait_for(
                    lambda: (connection_id in self._live) if connection_id is not None else bool(self._live),
                    timeout=max(0.0, deadline - time.monotonic()),
                )
                if not ok:
                    raise TimeoutError(f"no Socket Mode connection to deliver to after {wait}s")
                conn = self._live[connection_id] if connection_id is not None else self._live[max(self._live)]
                record = Envelope(
                    envelope_id=env["envelope_id"],
                    type=env["type"],
                    payload=env["payload"],
                    connection_id=conn.id,
                    sent_at=time.monotonic(),
                )
                self._envelopes[record.envelope_id] = record
            try:
                conn.ws.send(json.dumps(env))
            except ConnectionClosed:
                with self._cond:
                    self._live.pop(conn.id, None)
                    self._envelopes.pop(record.envelope_id, None)
                if connection_id is not None or time.monotonic() >= deadline:
                    raise
                continue
            return record.envelope_id

    def send_raw(self, text: str, *, connection_id: int | None = None) -> None:
        """Send any text frame (e.g. a malformed one) to the newest or a given connection."""
        with self._cond:
            if not self._live:
                raise RuntimeError("no Socket Mode connection")
            conn = self._live[connection_id] if connection_id is not None else self._live[max(self._live)]
        conn.ws.send(text)

    def disconnect_all(self, mode: str = "close", *, grace: float = 1.0) -> int:
        """End every open connection; returns how many.

        ``close``: a WebSocket close frame (code 1001). ``disconnect``: Slack's refresh, a
        ``{"type": "disconnect", "reason": "refresh_requested"}`` message, then a close after ``grace``
        seconds. ``drop``: the TCP connection is cut with no close frame, like a network failure.
        """
        if mode not in DISCONNECT_MODES:
            raise ValueError(f"mode must be one of {DISCONNECT_MODES}, not {mode!r}")
        with self._cond:
            conns = list(self._live.values())
            self._live.clear()  # counts drop at once; the handler threads finish on their own
            self._cond.notify_all()
        disconnect = json.dumps(
            {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "sandbox-applink"}}
        )
        for conn in conns:
            ws = conn.ws
            if mode == "close":
                _quietly(functools.partial(ws.close, 1001, "sandbox disconnect"))
            elif mode == "drop":
                _quietly(functools.partial(ws.socket.shutdown, socket.SHUT_RDWR))
            else:
                _quietly(functools.partial(ws.send, disconnect))
                timer = threading.Timer(grace, _quietly, args=(functools.partial(ws.close, 1001, "refresh"),))
                timer.daemon = True
                timer.start()
        return len(conns)

    def close_client(self, client: Any) -> None:
        """Close a slack_sdk ``SocketModeClient`` (e.g. ``SocketModeHandler.client``) without waiting.

        The client's close() otherwise waits up to its 3 s receive timeout and 1 s queue poll; here
        reconnects are turned off, the sandbox hangs up first and the queue is woken, so it returns at once.
        """
        client.auto_reconnect_enabled = False
        client.default_auto_reconnect_enabled = False
        self.disconnect_all("close")
        client.closed = True
        client.message_queue.put(None)  # wakes its message processor, which polls the queue every second
        client.close()

    # -- what happened -----------------------------------------------------------------------------

    def envelopes(self) -> list[Envelope]:
        with self._cond:
            return list(self._envelopes.values())

    def acks(self) -> list[Ack]:
        with self._cond:
            return list(self._acks)

    def frames(self) -> list[tuple[int, str]]:
        """Text frames from the app that were not acks, as (connection_id, text)."""
        with self._cond:
            return list(self._frames)

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Block until the app acks ``envelope_id``; raises TimeoutError otherwise."""

        def find() -> Ack | None:
            return next((a for a in self._acks if a.envelope_id == envelope_id), None)

        with self._cond:
            if not self._cond.wait_for(lambda: find() is not None, timeout=timeout):
                got = [a.envelope_id for a in self._acks]
                raise TimeoutError(f"no ack for envelope {envelope_id} after {timeout}s (acks: {got})")
            ack = find()
            assert ack is not None
            return ack


def _quietly(fn: Callable[[], Any]) -> None:
    with contextlib.suppress(OSError, ConnectionClosed, RuntimeError):
        fn()
