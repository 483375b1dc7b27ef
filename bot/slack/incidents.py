"""Incidents in Slack, delivered from the store (bot/watch/book.py): one top-level message per incident and
channel, its changes as lines in its thread, its message updated in place, and its resolution.

What is owed is what a post does not show yet (its message unposted, an older version shown, thread lines not
sent), so this is an outbox like deploy progress's (bot/slack/progress.py) and goes through the same poster
(`SlackPoster`, bot/slack/webapi.py): one message a second per channel (`ChannelPace`), Retry-After honoured.
An incident's message is updated at most once every `watch.update_every` (5 s by default), except when it
resolves or re-opens. Only the replica leading the background work sends, so each message is posted once;
a leader that dies after Slack answered and before the store noted it may post that message again (the window
is one store write, as for progress lines).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from bot.core.errors import BotError
from bot.core.tone import Tone
from bot.core.workers import QueueFull
from bot.deploys.store import Store
from bot.dispatch.dispatcher import new_request_id
from bot.render import slack as slack_render
from bot.render.slack import escape
from bot.render.views import to_document
from bot.render.watch_view import (
    INCIDENT_ACTIONS,
    LOGS_ACTION,
    ROLLBACK_ACTION,
    SILENCE_HOUR_ACTION,
    STATUS_ACTION,
)
from bot.replies.base import Message, Reply, error_message
from bot.replies.watch import incident_reply
from bot.slack.webapi import Destination, NotAMember, SlackPoster
from bot.watch.book import ALL, UNTIL_RESOLVED, Book, Incident, Line, Post
from bot.watch.logs import error_lines
from bot.watch.watcher import Watcher

if TYPE_CHECKING:
    from bot.slack.app import SvcBot

log = structlog.get_logger("svcbot.incidents")
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

POLL = 0.5
MAX_LINES_PER_MESSAGE = 20


class IncidentSender:
    def __init__(self, poster: SlackPoster, store: Callable[[], Store], *, update_every: float = 5.0,
                 leading: Callable[[], bool] = lambda: True, poll: float = POLL) -> None:
        self.poster = poster
        self._store = store
        self.update_every = update_every
        self.leading = leading
        self.poll = poll
        self.sent = 0  # Slack calls made (posts, thread lines, updates)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="slack-incidents", daemon=True)

    def start(self) -> IncidentSender:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            try:
                if self.leading():
                    self.deliver()
            except BotError as exc:
                log.warning("incidents.outbox_unreadable", reason=exc.message)
            except Exception:
                log.exception("incidents.deliver_failed")

    def deliver(self) -> int:
        """One pass: send what is due; how many posts still owe something."""
        book = Book(self._store())
        owed = 0
        now = time.time()
        for post, incident, lines in book.owed():
            try:
                if not self._deliver(book, post, incident, lines, now):
                    owed += 1
            except BotError as exc:
                log.warning("incidents.post_failed", incident=incident.id, channel=post.channel, reason=exc.message)
                owed += 1
            except NotAMember as exc:
                # Removed from the channel (or it was archived): this message is given up, not retried for ever.
                log.warning("incidents.channel_lost", incident=incident.id, channel=post.channel, reason=str(exc))
                book.abandon(incident.id, post.channel)
        return owed

    def _deliver(self, book: Book, post: Post, incident: Incident, lines: list[Line], now: float) -> bool:
        if self.poster.pace.ready_in(post.channel) > 0:
            return False
        message = slack_render.render(to_document(incident_reply(incident, now)))
        if not post.ts:
            ts = self.poster.post(post.channel, message)
            book.posted(incident.id, post.channel, ts)
            book.shown(incident.id, post.channel, version=incident.version,
                       last_line=lines[-1].id if lines and not incident.reopened else None, now=now)
            self.sent += 1
            log.info("incidents.posted", incident=incident.id, channel=post.channel, kind=incident.kind)
            return not (lines and incident.reopened)
        if lines:
            batch = lines[:MAX_LINES_PER_MESSAGE]
            self.poster.post_text(post.channel, "\n".join(escape(line.text) for line in batch), thread_ts=post.ts)
            book.shown(incident.id, post.channel, last_line=batch[-1].id)
            self.sent += 1
            if len(batch) < len(lines):
                return False
        if post.shown_version < incident.version:
            urgent = bool(lines)  # a resolution or a re-open: its line went to the thread; show it at once
            if not urgent and post.shown_at is not None and now - post.shown_at < self.update_every:
                return False
            self.poster.update(post.channel, post.ts, message)
            book.shown(incident.id, post.channel, version=incident.version, now=now)
            self.sent += 1
        return True


class Watching:
    """The watcher and its Slack sender in one process (started by serving; both act only while leading)."""

    def __init__(self, watcher: Watcher, sender: IncidentSender) -> None:
        self.watcher = watcher
        self.sender = sender

    def stop(self, timeout: float = 5.0) -> None:
        self.watcher.stop(timeout)
        self.sender.stop(timeout)


def start_watching(bot: SvcBot, leading: Callable[[], bool]) -> Watching:
    """Watch streams and incident delivery for this process; `/svc watch` checks membership through the poster."""
    runtime, poster = bot.runtime, bot.poster
    runtime.dispatcher.channel_member = poster.channel_member
    catalog = runtime.catalog
    sender = IncidentSender(poster, runtime.deploys.store, update_every=catalog.watch.update_every, leading=leading)
    lines = error_lines(catalog, runtime.backends.loki) if catalog.loki is not None else None
    watcher = Watcher(catalog, runtime.deploys.store, runtime.backends.kube, leading=leading,
                      on_written=sender.wake, error_lines=lines)
    bot.incident_buttons.wake = sender.wake
    sender.start()
    watcher.start()
    return Watching(watcher, sender)


# --- the incident message's buttons ---------------------------------------------------------------------

SILENCE_HOUR = 3600.0


class IncidentButtons:
    """Clicks on an incident message. The button's value is an incident id and nothing else is read; the
    service and environment come from the store. Logs and Status answer the clicker privately, as the commands
    would; Rollback runs `/svc rollback <service> <env>` as the clicker, through the same policy and approvals
    (a protected environment posts its approval request); Silence needs the right to `watch` that environment."""

    def __init__(self, bot: SvcBot) -> None:
        self.bot = bot
        self.wake: Callable[[], None] = lambda: None  # the incident sender's (set when watching starts)

    def on_click(self, ack: Any, body: dict[str, Any]) -> None:
        ack()
        action = (body.get("actions") or [{}])[0]
        action_id = str(action.get("action_id", ""))
        incident_id = str(action.get("value", ""))
        user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        to = Destination(channel=channel, user=user, response_url=body.get("response_url"))
        if action_id not in INCIDENT_ACTIONS or not _INCIDENT_ID.match(incident_id):
            log.warning("button.bad_value", action=action_id)
            return
        request_id = new_request_id()
        try:
            self.bot.pool.submit(lambda: self._act(action_id, incident_id, to, request_id))
        except QueueFull:
            self.bot._tell(slack_render.render(to_document(
                error_message("svcbot is busy; press the button again in a minute"))), to)

    def _act(self, action_id: str, incident_id: str, to: Destination, request_id: str) -> None:
        book = Book(self.bot.runtime.deploys.store())
        incident = book.incident(incident_id)
        if incident is None:
            self._say(error_message(f"incident {incident_id} is not known here"), to)
            return
        where = f"{incident.service} {incident.env}"
        if incident.service == ALL:  # a storm or a cluster: one environment, or a cluster, not one service
            if action_id == STATUS_ACTION:
                self.bot._answer(f"status all {incident.env}", to.user, to, request_id, ephemeral=True)
            elif action_id in (LOGS_ACTION, ROLLBACK_ACTION):
                self._say(error_message("this incident is about many services: use /svc logs or /svc rollback "
                                        "on one of them"), to)
            else:
                self._silence(book, incident, action_id, to)
            return
        if action_id == LOGS_ACTION:
            self.bot._answer(f"logs {where} --level error --since 30m", to.user, to, request_id,
                             ephemeral=True)
        elif action_id == STATUS_ACTION:
            self.bot._answer(f"status {where}", to.user, to, request_id, ephemeral=True)
        elif action_id == ROLLBACK_ACTION:
            self.bot._answer(f"rollback {where}", to.user, to, request_id)
        else:
            self._silence(book, incident, action_id, to)

    def _silence(self, book: Book, incident: Incident, action_id: str, to: Destination) -> None:
        catalog = self.bot.runtime.catalog
        envs = ((incident.env,) if incident.env in catalog.environments
                else tuple(name for name, env in catalog.environments.items() if env.cluster == incident.env))
        decision = self.bot.runtime.dispatcher.policy.check("watch", envs, to.user)
        if not decision.allowed:
            self._say(error_message(f"only who may watch {incident.env} may silence its incidents: {decision.reason}"),
                      to)
            return
        now = time.time()
        until = now + SILENCE_HOUR if action_id == SILENCE_HOUR_ACTION else UNTIL_RESOLVED
        book.silence(incident.id, until, to.user, now=now)
        book.store.record(to.user, "incident.silenced", detail={"incident": incident.id, "until": until,
                                                                 "service": incident.service, "env": incident.env})
        log.info("incidents.silenced", incident=incident.id, user=to.user, until=until)
        what = "for an hour" if action_id == SILENCE_HOUR_ACTION else "until it resolves"
        self._say(Message(title=f"incident {incident.id} silenced {what}: no more lines in its thread until then "
                                "(its message still shows where it stands, and its resolution is still said)",
                          tone=Tone.OK), to)
        self.wake()

    def _say(self, reply: Reply, to: Destination) -> None:
        self.bot._tell(slack_render.render(to_document(reply)), to)
