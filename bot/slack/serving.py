"""Serving: the bot's HTTP side (the Slack events endpoint behind waitress, or Socket Mode), the health server
(/healthz, /readyz, /metrics), background work, and shutdown.

`start` builds a running bot from a catalog; `serve` runs one until SIGTERM or SIGINT, then stops gracefully:
not ready first, no new commands, running commands and deploy runs get the shutdown grace, runs still going
are marked INTERRUPTED, then everything closes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import structlog
from prometheus_client import make_wsgi_app
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from bot.core import acks, metrics
from bot.core.errors import UserError
from bot.deploys import approvals, background
from bot.deploys.background import BackgroundWork
from bot.runtime import Runtime, build_runtime
from bot.slack.app import SvcBot
from bot.slack.webapi import SlackPoster, api_url, make_web_client

log = structlog.get_logger("svcbot.app")

BACKGROUND_INTERVAL = 5.0  # seconds between background ticks (leadership, run recovery)
EXPIRY_SWEEP_INTERVAL = 30.0  # seconds between sweeps marking expired approval requests EXPIRED


@dataclass
class Health:
    """What /readyz reports: the catalog loaded and the Slack side up."""

    catalog_loaded: bool = False
    slack_up: Callable[[], bool] = field(default=lambda: False)
    stopping: bool = False

    def ready(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "shutting down"
        if not self.catalog_loaded:
            return False, "catalog not loaded"
        if not self.slack_up():
            return False, "slack connection down"
        return True, "ready"


# --- HTTP plumbing ----------------------------------------------------------------------------------------

WSGIApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


def events_wsgi(bolt_app: App, path: str = "/slack/events") -> WSGIApp:
    handler = SlackRequestHandler(bolt_app)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == path:
            with acks.acking():
                return handler(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


def health_wsgi(health: Health) -> WSGIApp:
    metrics_app = make_wsgi_app()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            ready, reason = health.ready()
            start_response("200 OK" if ready else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{reason}\n".encode()]
        if path == "/metrics":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class HttpServer:
    """A waitress server in a background thread."""

    def __init__(self, app: WSGIApp, host: str, port: int, threads: int = 16) -> None:
        self._server = create_server(app, host=host, port=port, threads=threads, ident="svcbot",
                                     clear_untrusted_proxy_headers=True)
        self.port = int(self._server.effective_port)
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=f"http-{self.port}", daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            self._server.run()
        except (OSError, ValueError):
            # Closing the listening socket under waitress's select() fails the loop with EBADF; that is
            # how it stops (as webtest's StopableWSGIServer does), not an error, once stop() was asked.
            if not self._stopping:
                raise

    def stop(self) -> None:
        self._stopping = True
        if not self._thread.is_alive():
            self._server.close()
            return
        # Closed from inside its loop (through waitress's trigger), which then finds nothing left to serve
        # and ends: closed from here, the loop would sleep out its select() timeout first (up to 1 s).
        try:
            self._server.trigger.pull_trigger(self._server.close)
        except OSError:
            self._server.close()
        self._thread.join(5)


# --- serve ------------------------------------------------------------------------------------------------

PING_INTERVAL = 3.0  # seconds between Socket Mode pings: a cut connection is noticed within a few of them


def socket_alive(client: Any) -> bool:
    """Connected, and the last ping was answered recently: a cut TCP connection still looks 'connected'
    to the socket until the client's own monitor gives up, which can take a minute."""
    if not client.is_connected():
        return False
    session = getattr(client, "current_session", None)
    last = getattr(session, "last_ping_pong_time", None)
    return last is None or time.time() - float(last) < 3 * PING_INTERVAL


def watch_acks(client: Any) -> None:
    """Count Socket Mode envelopes from arrival (the receiving thread) to ack (after Bolt's listener, which
    sends it, returns) so command work steps aside meanwhile (bot/core/acks.py)."""

    def arrived(message: str) -> None:
        if '"envelope_id"' in message:
            acks.begin()

    def acked(_client: Any, _request: Any) -> None:
        acks.end()

    client.on_message_listeners.append(arrived)
    client.socket_mode_request_listeners.append(acked)


@dataclass
class Running:
    """A started bot: what tests and `serve` stop."""

    bot: SvcBot
    health: Health
    health_server: HttpServer
    events_server: HttpServer | None = None
    socket_handler: SocketModeHandler | None = None
    background: BackgroundWork | None = None

    def stop(self, grace: float = 10.0) -> None:
        """Graceful shutdown: not ready first (so no new traffic is routed here), no new commands, running
        commands finish within `grace`, deploy runs still going are marked INTERRUPTED (their requesters
        are told in the run's thread), then everything closes."""
        self.health.stopping = True
        if self.events_server is not None:
            self.events_server.stop()
        if self.socket_handler is not None:
            self.socket_handler.close()  # type: ignore[no-untyped-call]
        started = time.monotonic()
        self.bot.pool.shutdown(grace)
        left = max(0.0, grace - (time.monotonic() - started))
        if self.background is not None:
            # After the commands, within what is left of the grace: a tick stuck on a stalled cluster held
            # the whole shutdown for its own 5 s join before the commands' grace even began.
            self.background.stop(timeout=min(5.0, max(0.5, left)))
        left = max(0.0, grace - (time.monotonic() - started))
        self.bot.runtime.deploys.close_store(left, interrupt=True)
        self.bot.reporter.stop(grace=5.0)  # after the runs, so their last lines are posted
        self.health_server.stop()
        self.bot.runtime.close()
        metrics.SLACK_CONNECTED.set_function(lambda: 0.0)


def start(catalog: Path | str, *, host: str = "127.0.0.1", port: int = 3000, health_port: int = 8080,
          environ: Mapping[str, str] | None = None, runtime: Runtime | None = None) -> Running:
    """Start the bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on `port` at /slack/events.

    `runtime` lets tests bring their own dispatcher; normally it is built from the catalog.
    """
    env = dict(os.environ if environ is None else environ)
    client = make_web_client(env.get("SLACK_BOT_TOKEN"), api_url(env))
    poster_holder: list[SlackPoster] = []

    def resolve_user_group(group: str) -> frozenset[str]:
        return poster_holder[0].usergroup_members(group) if poster_holder else frozenset()

    if runtime is None:
        runtime = build_runtime(catalog, resolve_user_group=resolve_user_group)
    app_token = env.get("SLACK_APP_TOKEN")
    signing_secret = env.get("SLACK_SIGNING_SECRET")
    if not app_token and not signing_secret:
        raise UserError("HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)")
    # Importing the Kubernetes client and reading the kubeconfig took the first command after a restart
    # about 0.6 s (bench/startup_bench.py). Done before the listeners start, so readiness (and the Socket
    # Mode connection, which is when Slack starts sending) means no command pays for it. No request is sent.
    runtime.backends.prepare_kube()
    bot = SvcBot(runtime, client, signing_secret, socket_mode=bool(app_token))
    poster_holder.append(bot.poster)
    health = Health(catalog_loaded=True)
    running = Running(bot=bot, health=health, health_server=HttpServer(health_wsgi(health), host, health_port))
    if app_token:
        handler = SocketModeHandler(bot.app, app_token=app_token, web_client=client, ping_interval=PING_INTERVAL)
        running.socket_handler = handler
        health.slack_up = lambda: socket_alive(handler.client)
        watch_acks(handler.client)
        handler.connect()  # type: ignore[no-untyped-call]
    else:
        running.events_server = HttpServer(events_wsgi(bot.app), host, port).start()
        health.slack_up = lambda: True
    running.health_server.start()
    # Approval expiry, interrupted-run recovery and lock housekeeping, on whichever replica leads
    # (bot/deploys/background.py). A click after the deadline is refused with or without the sweep; the sweep is
    # what takes the buttons off messages nobody clicks.
    running.background = background.for_deploys(
        runtime.deploys, sweep=approvals.expire_due,
        on_expired=lambda request: bot.approval_messages.refresh(request.id),
        interval=min(BACKGROUND_INTERVAL, EXPIRY_SWEEP_INTERVAL), expiry_every=EXPIRY_SWEEP_INTERVAL,
    ).start()
    metrics.SLACK_CONNECTED.set_function(lambda: 1.0 if health.slack_up() else 0.0)
    log.info("svcbot.started", mode="socket" if app_token else "http",
             port=running.events_server.port if running.events_server else None,
             health_port=running.health_server.port)
    return running


SHUTDOWN_GRACE = 20.0  # seconds running commands and runs get after SIGTERM; SVCBOT_SHUTDOWN_GRACE overrides


def shutdown_grace(environ: Mapping[str, str]) -> float:
    text = environ.get("SVCBOT_SHUTDOWN_GRACE", "")
    try:
        return max(0.0, float(text)) if text else SHUTDOWN_GRACE
    except ValueError:
        raise UserError(f"SVCBOT_SHUTDOWN_GRACE must be a number of seconds, not {text!r}") from None


def serve(catalog: Path, *, host: str, port: int, health_port: int) -> int:
    grace = shutdown_grace(os.environ)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before start: a SIGTERM right at ready still stops cleanly
        signal.signal(sig, lambda *_: stop.set())
    running = start(catalog, host=host, port=port, health_port=health_port)
    stop.wait()
    log.info("svcbot.stopping", grace_s=grace)
    running.stop(grace)
    log.info("svcbot.stopped")
    # Calls abandoned when the grace period ended (a stalled cluster) still hold thread-pool threads, which
    # the interpreter would join at exit, past the grace: measured 18 s with a 2 s grace. Everything that
    # matters is closed (store, Slack, servers) and runs are marked; flush the streams and leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

