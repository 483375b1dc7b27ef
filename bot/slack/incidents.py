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

import threading
import time
from collections.abc import Callable

import structlog

from bot.core.errors import BotError
from bot.deploys.store import Store
from bot.render import slack as slack_render
from bot.render.slack import escape
from bot.render.views import to_document
from bot.replies.watch import incident_reply
from bot.runtime import Runtime
from bot.slack.webapi import SlackPoster
from bot.watch.book import Book, Incident, Line, Post
from bot.watch.logs import error_lines
from bot.watch.watcher import Watcher

log = structlog.get_logger("svcbot.incidents")

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


def start_watching(runtime: Runtime, poster: SlackPoster, leading: Callable[[], bool]) -> Watching:
    """Watch streams and incident delivery for this process; `/svc watch` checks membership through `poster`."""
    runtime.dispatcher.channel_member = poster.channel_member
    catalog = runtime.catalog
    sender = IncidentSender(poster, runtime.deploys.store, update_every=catalog.watch.update_every, leading=leading)
    lines = error_lines(catalog, runtime.backends.loki) if catalog.loki is not None else None
    watcher = Watcher(catalog, runtime.deploys.store, runtime.backends.kube, leading=leading,
                      on_written=sender.wake, error_lines=lines)
    sender.start()
    watcher.start()
    return Watching(watcher, sender)
