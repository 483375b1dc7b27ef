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
from slack_bolt import Ack, App, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress.server import create_server

from bot.core import acks, metrics
from bot.core.errors import BackendUnavailable, BotError, UserError
from bot.core.workers import QueueFull, WorkerPool
from bot.deploys import approvals, background
from bot.deploys.background import BackgroundWork
from bot.deploys.store import State
from bot.dispatch.dispatcher import new_request_id
from bot.render import slack as slack_render
from bot.render.slack import SlackMessage
from bot.render.views import to_document
from bot.replies.approvals import ApprovalMessageReply
from bot.replies.base import Message, Outcome, Reply, Tone, error_message
from bot.replies.deploy import DeployPendingReply
from bot.runtime import Runtime, build_runtime
from bot.slack.progress import SlackRunReporter
from bot.slack.webapi import Destination, SlackPoster, api_url, make_web_client
from commands.deploy import run_reply

log = structlog.get_logger("svcbot.app")

# Button action ids -> the words they stand for; the value carries only a request id.
ACTIONS = {"svc_approve": "approve", "svc_reject": "reject", "svc_cancel": "cancel"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
BACKGROUND_INTERVAL = 5.0  # seconds between background ticks (leadership, run recovery)
EXPIRY_SWEEP_INTERVAL = 30.0  # seconds between sweeps marking expired approval requests EXPIRED
REFRESH_ATTEMPTS = 3  # chat.update rounds while the request keeps changing under us
SHOWN_REMEMBERED = 1000  # approval messages whose last shown state this process remembers


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
            # Run the /svc listener before answering: it only parses and enqueues, so the ack goes out at
            # once instead of waiting for Bolt's executor to poll for it (measured: HTTP ack p99 1.5 s ->
            # 0.2 s with 50 concurrent clients, bench/ack_bench.py).
            process_before_response=True,
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
        self._shown: dict[str, tuple[str, int]] = {}  # request id -> (state, votes) its message last showed
        self._shown_lock = threading.Lock()
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
        """Approve / Reject (/ Cancel) clicks. Only the button's value (a request id) and the clicking user are
        used: the verb runs on that request as that user, through the dispatcher, and the store decides.
        Whatever else the payload says (message text, blocks, other fields) is never read."""
        ack()
        action = (body.get("actions") or [{}])[0]
        verb = ACTIONS.get(str(action.get("action_id", "")), "")
        request = str(action.get("value", ""))
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        to = Destination(channel=channel, user=user, response_url=body.get("response_url"))
        if not verb or not _REQUEST_ID.match(request):
            log.warning("button.bad_value", action=verb)
            return
        request_id = new_request_id()
        try:
            self.pool.submit(lambda: self._decide(verb, request, to, request_id))
        except QueueFull:
            self._tell(slack_render.render(to_document(
                error_message("svcbot is busy; press the button again in a minute"))), to)

    def on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse:
        log.error("bolt.listener_error", error_type=type(error).__name__)
        return BoltResponse(status=500, body="")

    # --- work ---------------------------------------------------------------------------------------

    def _answer(self, text: str, user: str, to: Destination, request_id: str, ephemeral: bool = False) -> None:
        reply = self.runtime.dispatcher.execute(text, user, channel=to.channel, request_id=request_id)
        if ephemeral and reply.public:
            reply = _as_private(reply)
        acks.yield_to_acks()
        self._deliver_safely(reply, to)

    def _decide(self, verb: str, request: str, to: Destination, request_id: str) -> None:
        """Run a click's verb; answer the clicker privately; a decision updates the request's message."""
        reply = self.runtime.dispatcher.execute(f"{verb} {request}", to.user, channel=to.channel,
                                                request_id=request_id)
        message = slack_render.render(to_document(_as_private(reply)))
        self._tell(message, to)
        if message.extra.get("refresh"):
            self._refresh(message)
        elif reply.outcome is Outcome.USER_ERROR:
            # A refusal changes nothing, but the message may be stale: decided in the terminal, or expired
            # by this very click's check with no sweep yet. Bring it up to date once per state.
            self.refresh_request_message(request, stale_only=True)

    def _tell(self, message: SlackMessage, to: Destination) -> None:
        """An ephemeral answer to the clicking user: through the click's response_url, else (none, used up
        or expired) chat.postEphemeral in the message's channel."""
        if to.response_url is not None:
            try:
                self.poster.respond(to.response_url, message)
                return
            except BackendUnavailable as exc:
                log.warning("slack.response_url_failed", reason=exc.message)
        try:
            self.poster.post_ephemeral(to.channel, to.user, message)
        except BackendUnavailable as exc:
            log.error("slack.delivery_failed", reason=exc.message)

    def _deliver_safely(self, reply: Reply, to: Destination) -> None:
        if isinstance(reply, DeployPendingReply):
            reply = self._approval_message(reply)
        message = slack_render.render(to_document(reply))
        target = to
        if message.extra.get("channel") and message.extra["channel"] != to.channel:
            # The approvals channel: the message is posted there, the requester gets a pointer here.
            target = Destination(channel=message.extra["channel"], user=to.user)
        try:
            ts = self.poster.deliver(message, target)
        except BackendUnavailable as exc:
            if target is to:
                log.error("slack.delivery_failed", reason=exc.message)
                return
            log.warning("approvals.channel_unavailable", channel=target.channel, reason=exc.message)
            target = to
            try:
                ts = self.poster.deliver(message, to)
            except BackendUnavailable as exc2:
                log.error("slack.delivery_failed", reason=exc2.message)
                return
        request_id = message.extra.get("request_id")
        if ts and request_id:
            store = self.runtime.backends.store()
            store.set_thread(request_id, target.channel, ts)
            if isinstance(reply, ApprovalMessageReply):
                approvals.record_posted(store, store.request(request_id), target.channel, ts,
                                        current_image=reply.current_image, config=reply.config)
                self._remember_shown(request_id, (reply.state, len(reply.votes)))
            if target is not to:
                self._point_to_approvals(request_id, to, target.channel)
        self._refresh(message)

    def _approval_message(self, reply: DeployPendingReply) -> Reply:
        """A new PENDING request's approval message, from the store (what later updates show too), with
        the config summary, for the catalog's approvals channel when it names one."""
        catalog = self.runtime.catalog
        try:
            config = (approvals.config_summary(catalog, reply.service, reply.env, deadline=time.monotonic() + 5.0)
                      if reply.action == "deploy" else None)
            return approvals.message_reply(self.runtime.backends.store(), reply.request_id,
                                           current_image=reply.current_image, config=config,
                                           channel=catalog.settings.approvals_channel or "")
        except BotError as exc:
            log.warning("approval.message_fallback", request_id=reply.request_id, reason=exc.message)
            return reply

    def _point_to_approvals(self, request_id: str, to: Destination, channel: str) -> None:
        """Tell the requester, where they asked, that their request waits in the approvals channel."""
        pointer = Message(title=f"approval requested: request {request_id} is waiting in the approvals channel "
                                f"({channel})", lines=(f"/svc cancel {request_id} withdraws it",),
                          tone=Tone.WARN, public=True)
        try:
            self.poster.deliver(slack_render.render(to_document(pointer)), to)
        except BackendUnavailable as exc:
            log.warning("slack.delivery_failed", reason=exc.message)

    def _refresh(self, message: SlackMessage) -> None:
        request_id = message.extra.get("refresh")
        if request_id:
            self.refresh_request_message(request_id)

    def refresh_request_message(self, request_id: str, *, stale_only: bool = False) -> None:
        """Update a request's approval message in place (chat.update) to what the store says now: the votes,
        or the buttons replaced by who decided, when and why. Once its run has ended the progress reporter
        shows the outcome there, and this leaves it alone. Replicas may refresh at once: each one reads
        again after writing and writes again if the request moved on meanwhile, so the last write shows
        the last state (the run's outcome, if it ended under us). `stale_only`: only a request that has left
        PENDING, in a state this process has not shown yet."""
        try:
            store = self.runtime.backends.store()
            written: tuple[str, int] | None = None
            for _round in range(REFRESH_ATTEMPTS):
                request = store.request(request_id)
                state = (request.state.value, len(store.votes(request_id)))
                if state == written or not request.thread_ts or request.approval is None:
                    return
                if stale_only and written is None and (
                        request.state is State.PENDING or self._shown.get(request_id) == state):
                    return
                if approvals.run_has_ended(store, request):
                    if written is None:
                        return  # the reporter's outcome is there, not ours to touch
                    reply: Reply = run_reply(store.snapshot(request_id), waited=True)  # we wrote over it: restore
                else:
                    reply = approvals.message_reply(store, request_id)
                self.poster.update(request.channel, request.thread_ts, slack_render.render(to_document(reply)))
                written = state
                self._remember_shown(request_id, state)
        except BotError as exc:
            log.warning("approval.message_not_updated", request_id=request_id, reason=exc.message)

    def _remember_shown(self, request_id: str, state: tuple[str, int]) -> None:
        with self._shown_lock:
            self._shown[request_id] = state
            while len(self._shown) > SHOWN_REMEMBERED:
                self._shown.pop(next(iter(self._shown)))

    @staticmethod
    def _ack_payload(reply: Reply) -> dict[str, Any]:
        message = slack_render.render(to_document(reply))
        return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}


def _as_private(reply: Reply) -> Reply:
    return dataclasses.replace(reply, public=False)


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
        self.bot.runtime.backends.close_store(left, interrupt=True)
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
    running.background = background.for_backends(
        runtime.backends, sweep=approvals.expire_due,
        on_expired=lambda request: bot.refresh_request_message(request.id),
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

