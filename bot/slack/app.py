"""The Slack side of a command: a Bolt App whose /svc listener acks at once and hands work to svcbot's worker
pool, the approval buttons' listener, and delivery of the answers.

Pipeline of one slash command: Bolt verifies the signature (HTTP mode) -> `on_svc` parses the text (usage
errors are answered in the ack itself) and enqueues -> a worker runs the dispatcher (policy, deadline) ->
the reply is rendered to Block Kit and delivered (response_url, chat.postMessage, files) as its Document's
`Delivery` says. Serving (HTTP, Socket Mode, health, shutdown) is bot/slack/serving.py.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltResponse
from slack_sdk import WebClient

from bot.core import acks
from bot.core.errors import BackendUnavailable, BotError, UserError
from bot.core.tone import Tone
from bot.core.workers import QueueFull, WorkerPool
from bot.deploys.store import replays as store_replays
from bot.dispatch.dispatcher import new_request_id
from bot.render import slack as slack_render
from bot.render.slack import SlackMessage
from bot.render.views import to_document
from bot.render.watch_view import INCIDENT_ACTIONS
from bot.replies.approvals import ApprovalMessageReply
from bot.replies.base import Message, Outcome, Reply, error_message
from bot.replies.deploy import DeployPendingReply
from bot.runtime import Runtime
from bot.slack.approval_message import ApprovalMessages
from bot.slack.incidents import IncidentButtons
from bot.slack.progress import SlackRunReporter
from bot.slack.webapi import Destination, SlackPoster

log = structlog.get_logger("svcbot.app")

# Button action ids -> the words they stand for; the value carries only a request id.
ACTIONS = {"svc_approve": "approve", "svc_reject": "reject", "svc_cancel": "cancel"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


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
        self.incident_buttons = IncidentButtons(self)  # /svc watch's incident messages (bot/slack/incidents.py)
        for action_id in INCIDENT_ACTIONS:
            self.app.action(action_id)(self.incident_buttons.on_click)
        self.app.error(self.on_error)
        self.reporter = SlackRunReporter(self.poster, runtime.deploys.store)
        self.approval_messages = ApprovalMessages(runtime.deploys, self.poster)
        try:
            # Runs started from Slack report to their request's thread; this also tells the requesters of
            # runs found INTERRUPTED when the store was opened.
            runtime.deploys.engine().set_sink_factory(self.reporter.sink)
        except BotError as exc:
            log.error("store.unavailable", reason=exc.message)

    # --- the front door (HTTP mode) -------------------------------------------------------------------

    def first_sight(self, body: dict[str, Any], signature: str) -> bool:
        """False when this signed request can change something and its signature was seen before (a replay
        of the same bytes, on any replica sharing the store). Requests that only read are not remembered:
        a write per ack would cost every status in a burst, and a replayed status changes nothing."""
        if not self._can_change(body):
            return True
        try:
            return store_replays.first_sight(self.runtime.deploys.store().database, signature)
        except BotError as exc:
            # A mutating command needs the store too, so it cannot run while the store is down either.
            log.warning("replays.unchecked", reason=exc.message)
            return True

    def _can_change(self, body: dict[str, Any]) -> bool:
        if body.get("type") == "block_actions":
            return True
        if "command" not in body:
            return False
        try:  # parsed as the listener will parse it (quotes, smart quotes, case), so no spelling slips by
            return self.runtime.dispatcher.parse(str(body.get("text", ""))).command.mutates
        except UserError:
            return False  # it will not run

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
        if message.delivery.refreshes:
            self.approval_messages.refresh(message.delivery.refreshes)
        elif reply.outcome is Outcome.USER_ERROR:
            # A refusal changes nothing, but the message may be stale: decided in the terminal, or expired
            # by this very click's check with no sweep yet. Bring it up to date once per state.
            self.approval_messages.refresh(request, stale_only=True)

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
            reply = self.approval_messages.first(reply)
        message = slack_render.render(to_document(reply))
        delivery = message.delivery
        target = to
        if delivery.channel and delivery.channel != to.channel:
            # The approvals channel: the message is posted there, the requester gets a pointer here.
            target = Destination(channel=delivery.channel, user=to.user)
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
        request_id = delivery.request_id
        if ts and request_id:
            self.runtime.deploys.store().set_thread(request_id, target.channel, ts)
            if isinstance(reply, ApprovalMessageReply):
                self.approval_messages.posted(reply, target.channel, ts)
            if target is not to:
                self._point_to_approvals(request_id, to, target.channel)
        if delivery.refreshes:
            self.approval_messages.refresh(delivery.refreshes)

    def _point_to_approvals(self, request_id: str, to: Destination, channel: str) -> None:
        """Tell the requester, where they asked, that their request waits in the approvals channel."""
        pointer = Message(title=f"approval requested: request {request_id} is waiting in the approvals channel "
                                f"({channel})", lines=(f"/svc cancel {request_id} withdraws it",),
                          tone=Tone.WARN, public=True)
        try:
            self.poster.deliver(slack_render.render(to_document(pointer)), to)
        except BackendUnavailable as exc:
            log.warning("slack.delivery_failed", reason=exc.message)

    @staticmethod
    def _ack_payload(reply: Reply) -> dict[str, Any]:
        message = slack_render.render(to_document(reply))
        return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}


def _as_private(reply: Reply) -> Reply:
    return dataclasses.replace(reply, public=False)
