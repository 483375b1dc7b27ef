"""Serving: the bot's HTTP side (the Slack events endpoint behind waitress, or Socket Mode), the health server
(/healthz, /readyz, /metrics), background work, and shutdown.

`start` builds a running bot from a catalog; `serve` runs one until SIGTERM or SIGINT, then stops gracefully:
not ready first, no new commands, running commands and deploy runs get the shutdown grace, runs still going
are marked INTERRUPTED, then everything closes.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
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
from slack_sdk.signature import SignatureVerifier
from waitress.server import create_server

from bot.core import acks, metrics
from bot.core.catalog import missing_profile_dirs
from bot.core.errors import CatalogError, UserError
from bot.deploys import approvals, background
from bot.deploys.background import BackgroundWork
from bot.deploys.engine import RunSettings
from bot.runtime import Runtime, build_runtime
from bot.slack.app import SvcBot
from bot.slack.incidents import Watching, start_watching
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


# The front door's limits (docs/operations.md "Limits"). Everything before the signature check is cheap: a
# body over MAX_BODY gets 413 from waitress before it is read (its Content-Length is enough), and no JSON
# is parsed before the signature matches.
MAX_BODY = 1024 * 1024  # bytes; the largest block_actions payload (a 50-block approval message) is ~0.3 MB
SIGNATURE_MAX_AGE = 300  # seconds: Slack's rule, as Bolt and slack_sdk apply it


@dataclass(frozen=True)
class Refusal:
    status: str
    reason: str


def check_request(body: bytes, environ: WSGIEnvironment, verifier: SignatureVerifier | None,
                  clock: Callable[[], float] = time.time) -> tuple[Refusal | None, dict[str, Any] | None]:
    """Signature first, then the shape Bolt and the listeners rely on: (a refusal, or None and the parsed
    body). Malformed requests are 400 with the reason; unsigned ones 401; nothing here raises."""
    timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""))
    signature = str(environ.get("HTTP_X_SLACK_SIGNATURE", ""))
    if verifier is not None:
        if not timestamp or not signature:
            return Refusal("401 Unauthorized", "missing X-Slack-Request-Timestamp or X-Slack-Signature"), None
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return Refusal("400 Bad Request", "X-Slack-Request-Timestamp must be a number of seconds"), None
        if abs(clock() - int(timestamp)) > SIGNATURE_MAX_AGE:
            return Refusal("401 Unauthorized", "stale or future X-Slack-Request-Timestamp"), None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal("400 Bad Request", "the body is not UTF-8"), None
    if verifier is not None and not verifier.is_valid(text, timestamp, signature):
        return Refusal("401 Unauthorized", "invalid signature"), None
    problem, parsed = parse_slack_body(text, str(environ.get("CONTENT_TYPE", "")))
    if problem:
        return Refusal("400 Bad Request", problem), None
    return None, parsed


def parse_slack_body(text: str, content_type: str) -> tuple[str, dict[str, Any]]:
    """The body as Bolt will read it (JSON, a form, or a form with a JSON `payload`), checked for the shape
    the listeners need: (a problem, or "" and the body)."""
    if content_type.startswith("application/json") or text.startswith("{"):
        problem, body = _json_object(text, "the body")
        if not problem and not isinstance(body.get("type"), str):
            problem = "the body has no type"
        return problem, body
    form = {key: values[0] for key, values in urllib.parse.parse_qs(text, keep_blank_values=True).items()}
    if "payload" in text and "payload" in form:
        problem, payload = _json_object(form["payload"], "payload")
        if problem:
            return problem, {}
        return _interaction_problem(payload), payload
    if "command" not in form:
        return "neither a slash command nor an interaction payload", {}
    if not form["command"].startswith("/"):
        return "command must start with /", {}
    return "", form


def _json_object(text: str, what: str) -> tuple[str, dict[str, Any]]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return f"{what} is not JSON", {}
    if not isinstance(value, dict):
        return f"{what} is not a JSON object", {}
    return "", value


def _interaction_problem(payload: dict[str, Any]) -> str:
    kind = payload.get("type")
    if not isinstance(kind, str):
        return "payload has no type"
    if kind != "block_actions":
        return ""
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        return "block_actions payload has no actions"
    if not all(isinstance(action, dict) and isinstance(action.get("action_id"), str) for action in actions):
        return "every action needs an action_id"
    for key in ("user", "channel", "container", "team"):
        if key in payload and not isinstance(payload[key], dict | type(None)):
            return f"payload's {key} is not an object"
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return "payload has no user id"
    return ""


def _refuse(start_response: StartResponse, refusal: Refusal) -> Iterable[bytes]:
    log.warning("slack.request_refused", status=refusal.status, reason=refusal.reason)
    start_response(refusal.status, [("Content-Type", "text/plain; charset=utf-8")])
    return [f"{refusal.reason}\n".encode()]


def events_wsgi(bolt_app: App, path: str = "/slack/events", *, signing_secret: str | None = None,
                first_sight: Callable[[dict[str, Any], str], bool] | None = None) -> WSGIApp:
    """The events endpoint: size, signature and shape checked before Bolt sees the request; a signed
    request that `first_sight` (body, signature) says was seen before is refused as a replay (409)."""
    handler = SlackRequestHandler(bolt_app)
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != path:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        with acks.acking():
            if environ.get("REQUEST_METHOD") != "POST":
                start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "POST")])
                return [b"POST only\n"]
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return _refuse(start_response, Refusal("400 Bad Request", "Content-Length is not a number"))
            if length > MAX_BODY:
                return _refuse(start_response, Refusal("413 Request Entity Too Large",
                                                       f"bodies over {MAX_BODY} bytes are refused"))
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            refusal, parsed = check_request(body, environ, verifier)
            if refusal is not None:
                return _refuse(start_response, refusal)
            assert parsed is not None
            signature = str(environ.get("HTTP_X_SLACK_SIGNATURE", ""))
            if first_sight is not None and signature and not first_sight(parsed, signature):
                return _refuse(start_response, Refusal(
                    "409 Conflict", "this signed request was already received; a replay is not run again"))
            environ["wsgi.input"] = io.BytesIO(body)
            return handler(environ, start_response)

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

    def __init__(self, app: WSGIApp, host: str, port: int, threads: int = 16,
                 max_body: int = MAX_BODY) -> None:
        # waitress answers 413 to a Content-Length over max_body before reading the body (and stops reading
        # a chunked one there): an unsigned 100 MB body costs nothing.
        self._server = create_server(app, host=host, port=port, threads=threads, ident="svcbot",
                                     clear_untrusted_proxy_headers=True, max_request_body_size=max_body)
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
    watching: Watching | None = None  # /svc watch: streams and incident messages, on the leader

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
        if self.watching is not None:
            self.watching.stop(timeout=2.0)
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
        # `svcbot check` only warns (CI may not have the profiles); a bot without them cannot diff.
        if missing := missing_profile_dirs(runtime.catalog):
            runtime.close()
            raise CatalogError(missing)
    if runtime.deploys.run_settings is None:
        # Heartbeat, staleness and Lease durations (SVCBOT_RUN_*); before the store opens, which reads them.
        runtime.deploys.run_settings = RunSettings.from_environ(env)
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
        running.events_server = HttpServer(events_wsgi(bot.app, signing_secret=signing_secret,
                                                        first_sight=bot.first_sight), host, port).start()
        health.slack_up = lambda: True
    running.health_server.start()
    # Approval expiry, interrupted-run recovery and lock housekeeping, on whichever replica leads
    # (bot/deploys/background.py). A click after the deadline is refused with or without the sweep; the sweep is
    # what takes the buttons off messages nobody clicks.
    work = background.for_deploys(
        runtime.deploys, sweep=approvals.expire_due,
        on_expired=lambda request: bot.approval_messages.refresh(request.id),
        interval=background_interval(env), expiry_every=EXPIRY_SWEEP_INTERVAL,
    )
    running.background = work
    # What a replica that died still owed Slack (the outbox) is sent by the leader, once it is as old as a
    # stale run; the leader's own rows and every replica's own go at once.
    settings = runtime.deploys.run_settings
    bot.reporter.orphans_after = lambda: settings.stale_after if settings is not None else 30.0
    bot.reporter.leading = lambda: work.leading
    work.start()
    running.watching = start_watching(bot, lambda: work.leading)
    metrics.SLACK_CONNECTED.set_function(lambda: 1.0 if health.slack_up() else 0.0)
    log.info("svcbot.started", mode="socket" if app_token else "http",
             port=running.events_server.port if running.events_server else None,
             health_port=running.health_server.port)
    return running


SHUTDOWN_GRACE = 20.0  # seconds running commands and runs get after SIGTERM; SVCBOT_SHUTDOWN_GRACE overrides


def background_interval(environ: Mapping[str, str]) -> float:
    """Seconds between background ticks: BACKGROUND_INTERVAL, or SVCBOT_BACKGROUND_INTERVAL (tests)."""
    text = environ.get("SVCBOT_BACKGROUND_INTERVAL", "")
    try:
        value = float(text) if text else min(BACKGROUND_INTERVAL, EXPIRY_SWEEP_INTERVAL)
    except ValueError:
        raise UserError(f"SVCBOT_BACKGROUND_INTERVAL must be a number of seconds, not {text!r}") from None
    return max(0.05, value)


def shutdown_grace(environ: Mapping[str, str]) -> float:
    text = environ.get("SVCBOT_SHUTDOWN_GRACE", "")
    try:
        return max(0.0, float(text)) if text else SHUTDOWN_GRACE
    except ValueError:
        raise UserError(f"SVCBOT_SHUTDOWN_GRACE must be a number of seconds, not {text!r}") from None


SIGNAL_POLL = 0.5  # seconds between the main thread's looks at a stop signal


def serve(catalog: Path, *, host: str, port: int, health_port: int) -> int:
    grace = shutdown_grace(os.environ)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before start: a SIGTERM right at ready still stops cleanly
        signal.signal(sig, lambda *_: stop.set())
    running = start(catalog, host=host, port=port, health_port=health_port)
    # Wake now and then: a signal the kernel hands to another of the process's threads only sets a flag, and
    # Python runs the handler when the main thread next runs; an endless wait could sleep through SIGTERM.
    while not stop.wait(SIGNAL_POLL):
        pass
    log.info("svcbot.stopping", grace_s=grace)
    running.stop(grace)
    log.info("svcbot.stopped")
    # Calls abandoned when the grace period ended (a stalled cluster) still hold thread-pool threads, which
    # the interpreter would join at exit, past the grace: measured 18 s with a 2 s grace. Everything that
    # matters is closed (store, Slack, servers) and runs are marked; flush the streams and leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

