"""Deploy progress in Slack, delivered from the store: lines in the request message's thread, and the message
updated with the outcome.

A run's Slack sink writes what the thread is owed into the store's outbox (`Store.outbox_add`): one row per
progress line (a step starting or ending, a note while a step waits). The run's end writes the outcome row
itself, in the same transaction as the end (bot/deploys/store/store.py), so no crash can leave the store
saying SUCCEEDED and Slack saying "running".

One reporter thread per process sends what is owed, oldest first per request: the lines that piled up as one
message in the thread (at most MAX_LINES_PER_MESSAGE), and the outcome as the final line there plus a
chat.update of the request message from what the store says then. Each channel gets at most one message a
second through the poster's one rate limit (bot/slack/webapi.py `ChannelPace`). A row is marked sent after
Slack took it, so everything is sent at least once: a process that dies leaves its rows for the next one.

Who sends what: a process sends the rows it wrote at once; rows written by another process (one that died, or
`svcbot run` in a terminal, which has no reporter) are sent by the replica that leads the background work once
they are `orphans_after` old (the run's staleness time), so a live replica's rows are not sent twice.

Repeats: a message Slack took, whose rows the process could not mark sent before it died, is sent again by
the next process. The window is one store write long (between Slack answering and the UPDATE that marks the
rows), or longer if the store is unreachable then; a replica whose sending lags more than `orphans_after`
behind (Slack rate-limiting it that long) may also see the leader send its rows. The outcome's chat.update
repeated is harmless (it writes the same message); its final thread line and the lines batched with it may
show twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from bot.core.crashpoints import crash_point
from bot.core.errors import BotError, NotFound
from bot.deploys.progress import ProgressSink, final_line, note_line, start_line, step_line
from bot.deploys.store import LINE, OUTCOME, OutboxItem, Snapshot, StepRecord, StepState, Store
from bot.render import slack as slack_render
from bot.render.slack import escape
from bot.render.views import to_document
from bot.replies.deploy import run_reply
from bot.slack.webapi import SlackPoster

log = structlog.get_logger("svcbot.progress")

POLL = 0.5  # seconds between looks at the outbox when nothing wakes the reporter
THREAD_WAIT = 30.0  # how long rows wait for the request message to be posted before they are given up
MAX_LINES_PER_MESSAGE = 20
ORPHANS_AFTER = 30.0  # seconds before another process's unsent rows count as abandoned (the run's staleness)


class SlackRunReporter:
    """The process's outbox sender; `sink(snapshot)` is the engine's progress sink for runs started in Slack."""

    def __init__(self, poster: SlackPoster, store: Callable[[], Store], *, poll: float = POLL,
                 orphans_after: Callable[[], float] = lambda: ORPHANS_AFTER,
                 leading: Callable[[], bool] = lambda: True) -> None:
        self.poster = poster
        self._store = store
        self.poll = poll
        # Set by serving: the run settings' staleness, and whether this replica leads the background work.
        self.orphans_after = orphans_after
        self.leading = leading
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_by = 0.0
        self._thread = threading.Thread(target=self._loop, name="slack-progress", daemon=True)
        self._thread.start()

    def sink(self, snapshot: Snapshot) -> ProgressSink:
        return _RunSink(self)

    def owe(self, request_id: str, line: str) -> None:
        """A progress line for the request's thread, written to the outbox (called on the run's thread)."""
        self._store().outbox_add(request_id, LINE, line)
        self._wake.set()

    def wake(self) -> None:
        """Look at the outbox now (a run ended, a thread became known)."""
        self._wake.set()

    def stop(self, grace: float = 5.0) -> None:
        """Send what this process owes (within `grace`), then stop; the rest stays owed in the store."""
        self._stop_by = time.monotonic() + grace
        self._stopping.set()
        self._wake.set()
        self._thread.join(grace + 1.0)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.poll)
            self._wake.clear()
            owed = 0
            try:
                owed = self.deliver()
            except BotError as exc:
                log.warning("progress.outbox_unreadable", reason=exc.message)
            except Exception:  # a reporting failure never stops reporting
                log.exception("progress.deliver_failed")
            if self._stopping.is_set() and (not owed or time.monotonic() >= self._stop_by):
                return
            if owed and not self._wake.is_set():
                time.sleep(min(self.poll, 0.1))  # what waits for a channel's turn goes soon

    def deliver(self) -> int:
        """One pass over the outbox: send what is due; how many requests this process still owes something."""
        store = self._store()
        groups: dict[str, list[OutboxItem]] = {}
        for item in store.outbox_unsent():
            groups.setdefault(item.request_id, []).append(item)
        me = store.owner.id
        now = time.time()
        leading: bool | None = None
        owed = 0
        for request_id, items in groups.items():
            if items[0].writer != me:
                if now - items[0].created_at < self.orphans_after():
                    continue
                if leading is None:
                    leading = self.leading()
                if not leading:
                    continue
            owed += 0 if self._deliver(store, request_id, items, now) else 1
        return owed

    def _deliver(self, store: Store, request_id: str, items: list[OutboxItem], now: float) -> bool:
        """Send the oldest of one request's rows; True when nothing of it is left owed."""
        try:
            request = store.request(request_id)
        except NotFound:
            store.outbox_sent([item.id for item in items])
            return True
        if not request.thread_ts:
            if now - items[0].created_at > THREAD_WAIT:
                log.warning("progress.no_thread", request_id=request_id, dropped=len(items))
                store.outbox_sent([item.id for item in items])
                return True
            return False
        if self.poster.pace.ready_in(request.channel) > 0:
            return False
        batch: list[OutboxItem] = []
        outcome: OutboxItem | None = None
        for item in items:
            if item.kind == OUTCOME:
                outcome = item
                break
            if len(batch) == MAX_LINES_PER_MESSAGE:
                break
            batch.append(item)
        texts = [item.text for item in batch]
        snapshot = store.snapshot(request_id) if outcome is not None else None
        if snapshot is not None:
            texts.append(escape(final_line(snapshot)))
        try:
            if texts:
                self.poster.post_text(request.channel, "\n".join(texts), thread_ts=request.thread_ts)
                crash_point("after:slack.thread_posted")
            if snapshot is not None:
                approvers = tuple(vote.approver for vote in store.votes(request_id) if vote.vote == "approve")
                reply = run_reply(snapshot, waited=True, approved_by=approvers)
                self.poster.update(request.channel, request.thread_ts, slack_render.render(to_document(reply)))
                crash_point("after:slack.outcome_updated")
        except BotError as exc:
            log.warning("progress.post_failed", request_id=request_id, reason=exc.message)
            return False
        sent = [item.id for item in batch] + ([outcome.id] if outcome is not None else [])
        store.outbox_sent(sent)
        return len(sent) == len(items)


class _RunSink:
    """The engine's sink for a run started in Slack: every line goes to the outbox, the end is written by the
    store with the end itself (so `finished` only wakes the sender)."""

    def __init__(self, reporter: SlackRunReporter) -> None:
        self.reporter = reporter

    # Lines carry backend text (errors, job output): escaped so they can never mention anyone.
    def started(self, run: Snapshot) -> None:
        self.reporter.owe(run.id, escape(start_line(run)))

    def step(self, run: Snapshot, step: StepRecord, state: StepState) -> None:
        line = escape(step_line(run, step, state))
        if state is StepState.FAILED and step.output_tail.strip():
            tail = "\n".join(step.output_tail.splitlines()[-10:])
            line += f"\n```{escape(tail)}```"
        self.reporter.owe(run.id, line)

    def note(self, run: Snapshot, step: StepRecord, text: str) -> None:
        """Why a step retries, what the new pods are doing ('1 of 3 updated, not ready: ...')."""
        self.reporter.owe(run.id, escape(note_line(run, step, text)))

    def finished(self, run: Snapshot) -> None:
        self.reporter.wake()
