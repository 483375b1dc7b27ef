"""The Slack wiring: a Bolt App whose /svc listener acks at once and hands work to svcbot's worker pool.

Pipeline of one slash command: Bolt verifies the signature (HTTP mode) -> `on_svc` parses the text (usage
errors are answered in the ack itself) and enqueues -> a worker runs the dispatcher (policy, deadline) ->
the reply is rendered to Block Kit and delivered (response_url, chat.postMessage, files).

HTTP mode runs behind waitress (Bolt's built-in server is for development only); the health server
(/healthz, /readyz, /metrics) runs on its own port in both modes.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import structlog
from prometheus_client import make_wsgi_app
from slack_bolt import Ack, App, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress.server import create_server

from bot import metrics
from bot.dispatch import new_request_id
from bot.errors import BackendUnavailable, BotError, UserError
from bot.render import slack as slack_render
from bot.render.views import to_document
from bot.reply import Reply, error_message
from bot.runtime import Runtime, build_runtime
from bot.slackapi import Destination, SlackPoster, api_url, make_web_client
from bot.slackprogress import SlackRunReporter
from bot.workers import QueueFull, WorkerPool

log = structlog.get_logger("svcbot.app")

# Button action ids -> the words they stand for; the value carries only a request id.
ACTIONS = {"svc_approve": "approve", "svc_reject": "reject", "svc_cancel": "cancel"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


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


class SvcBot:
    """The Bolt app plus svcbot's pool and poster; one per process."""

    def __init__(self, runtime: Runtime, client: WebClient, signing_secret: str | None,
                 socket_mode: bool = False) -> None:
        self.runtime = runtime
        self.poster = SlackPoster(client)
        settings = runtime.catalog.settings
        self.pool = WorkerPool(settings.workers, settings.queue_limit)
        self.app = App(
            client=client,
            signing_secret=signing_secret or "",
            token_verification_enabled=False,  # Slack being down must not stop the bot from starting
            request_verification_enabled=not socket_mode,
            raise_error_for_unhandled_request=False,
        )
        self.app.command("/svc")(self.on_svc)
        for action_id in ACTIONS:
            self.app.action(action_id)(self.on_button)
        self.app.error(self.on_error)
        self.reporter = SlackRunReporter(self.poster, runtime.backends.store)
        try:
            # Runs started from Slack report to their request's thread; this also tells the requesters of
            # runs found INTERRUPTED when the store was opened.
            runtime.backends.runs().set_sink_factory(self.reporter.sink)
        except BotError as exc:
            log.error("store.unavailable", reason=exc.message)

    # --- listeners ----------------------------------------------------------------------------------

    def on_svc(self, ack: Ack, body: dict[str, Any]) -> None:
        text = str(body.get("text", ""))
        user = str(body.get("user_id", ""))
        to = Destination(channel=str(body.get("channel_id", "")), user=user,
                         response_url=body.get("response_url"))
        try:
            self.runtime.dispatcher.parse(text)
        except UserError:
            # Usage errors and unknown names need no backend: answer in the ack itself (and log it once).
            ack(**self._ack_payload(self.runtime.dispatcher.execute(text, user, channel=to.channel)))
            return
        request_id = new_request_id()
        try:
            ahead = self.pool.submit(lambda: self._answer(text, user, to, request_id))
        except QueueFull:
            ack(text=":hourglass: svcbot is busy with too many commands; please try again in a minute.")
            return
        if ahead:
            ack(text=f":hourglass: queued: {ahead} command(s) ahead of yours.")
        else:
            ack()

    def on_button(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        action = (body.get("actions") or [{}])[0]
        verb = ACTIONS.get(str(action.get("action_id", "")), "")
        request = str(action.get("value", ""))
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        to = Destination(channel=channel, user=user, response_url=body.get("response_url"))
        if not _REQUEST_ID.match(request):
            log.warning("button.bad_value", action=verb)
            return
        request_id = new_request_id()
        try:
            self.pool.submit(lambda: self._answer(f"{verb} {request}", user, to, request_id, ephemeral=True))
        except QueueFull:
            self._deliver_safely(error_message("svcbot is busy; press the button again in a minute"), to)

    def on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse:
        log.error("bolt.listener_error", error_type=type(error).__name__)
        return BoltResponse(status=500, body="")

    # --- work ---------------------------------------------------------------------------------------

    def _answer(self, text: str, user: str, to: Destination, request_id: str, ephemeral: bool = False) -> None:
        reply = self.runtime.dispatcher.execute(text, user, channel=to.channel, request_id=request_id)
        if ephemeral and reply.public:
            reply = _as_private(reply)
        self._deliver_safely(reply, to)

    def _deliver_safely(self, reply: Reply, to: Destination) -> None:
        message = slack_render.render(to_document(reply))
        try:
            ts = self.poster.deliver(message, to)
        except BackendUnavailable as exc:
            log.error("slack.delivery_failed", reason=exc.message)
            return
        request_id = message.extra.get("request_id")
        if ts and request_id:
            self.runtime.backends.store().set_thread(request_id, to.channel, ts)

    @staticmethod
    def _ack_payload(reply: Reply) -> dict[str, Any]:
        message = slack_render.render(to_document(reply))
        return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}

    def shutdown(self, grace: float = 10.0) -> bool:
        finished = self.pool.shutdown(grace)
        self.reporter.stop(grace=min(grace, 5.0))
        return finished


def _as_private(reply: Reply) -> Reply:
    return dataclasses.replace(reply, public=False)


# --- HTTP plumbing ----------------------------------------------------------------------------------------

WSGIApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


def events_wsgi(bolt_app: App, path: str = "/slack/events") -> WSGIApp:
    handler = SlackRequestHandler(bolt_app)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == path:
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
        self._thread = threading.Thread(target=self._server.run, name=f"http-{self.port}", daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.close()
        self._thread.join(5)


# --- serve ------------------------------------------------------------------------------------------------

@dataclass
class Running:
    """A started bot: what tests and `serve` stop."""

    bot: SvcBot
    health: Health
    health_server: HttpServer
    events_server: HttpServer | None = None
    socket_handler: SocketModeHandler | None = None

    def stop(self, grace: float = 10.0) -> None:
        self.health.stopping = True
        if self.events_server is not None:
            self.events_server.stop()
        if self.socket_handler is not None:
            self.socket_handler.close()  # type: ignore[no-untyped-call]
        self.bot.shutdown(grace)
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
    bot = SvcBot(runtime, client, signing_secret, socket_mode=bool(app_token))
    poster_holder.append(bot.poster)
    health = Health(catalog_loaded=True)
    running = Running(bot=bot, health=health, health_server=HttpServer(health_wsgi(health), host, health_port))
    if app_token:
        handler = SocketModeHandler(bot.app, app_token=app_token, web_client=client)
        running.socket_handler = handler
        health.slack_up = handler.client.is_connected
        handler.connect()  # type: ignore[no-untyped-call]
    else:
        running.events_server = HttpServer(events_wsgi(bot.app), host, port).start()
        health.slack_up = lambda: True
    running.health_server.start()
    metrics.SLACK_CONNECTED.set_function(lambda: 1.0 if health.slack_up() else 0.0)
    log.info("svcbot.started", mode="socket" if app_token else "http",
             port=running.events_server.port if running.events_server else None,
             health_port=running.health_server.port)
    return running


def serve(catalog: Path, *, host: str, port: int, health_port: int) -> int:
    running = start(catalog, host=host, port=port, health_port=health_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("svcbot.stopping")
    running.stop()
    return 0

