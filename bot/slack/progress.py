"""Deploy progress in Slack: lines in the request message's thread, and the message updated at the end.

Runs report on their own threads, often before the request message is even posted (its ts is what the
thread hangs on). So a sink only queues lines; one reporter thread per process posts them once the
request's thread is known (`store.set_thread`), batching what piled up into one message and keeping to
Slack's pace of about one message per second per channel. When a run ends, the final line goes to the
thread and the request message is updated in place with the outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from bot.core.errors import BackendError, NotFound
from bot.deploys.progress import ProgressSink, final_line, start_line, step_line
from bot.deploys.store import Snapshot, StepRecord, StepState, Store
from bot.render import slack as slack_render
from bot.render.slack import escape
from bot.render.views import to_document
from bot.replies.deploy import run_reply
from bot.slack.webapi import SlackPoster

log = structlog.get_logger("svcbot.progress")

CHANNEL_INTERVAL = 1.0  # seconds between two messages in one channel
THREAD_WAIT = 30.0  # how long lines wait for the request message to be posted before they are dropped
MAX_LINES_PER_MESSAGE = 20


@dataclass
class _Pending:
    lines: list[str] = field(default_factory=list)
    final: Snapshot | None = None
    since: float = field(default_factory=time.monotonic)


class SlackRunReporter:
    def __init__(self, poster: SlackPoster, store: Callable[[], Store], interval: float = CHANNEL_INTERVAL) -> None:
        self.poster = poster
        self._store = store
        self.interval = interval
        self._pending: dict[str, _Pending] = {}
        self._last_post: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="slack-progress", daemon=True)
        self._thread.start()

    def sink(self, snapshot: Snapshot) -> ProgressSink:
        return _RunSink(self)

    def queue(self, request_id: str, line: str | None, final: Snapshot | None = None) -> None:
        with self._cond:
            pending = self._pending.setdefault(request_id, _Pending())
            if line is not None:
                pending.lines.append(line)
            if final is not None:
                pending.final = final
            self._cond.notify()

    def stop(self, grace: float = 5.0) -> None:
        """Post what is queued (within `grace`), then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(grace)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping and not self._pending:
                    return
                self._cond.wait(timeout=0.2)
                ready = list(self._pending)
            for request_id in ready:
                try:
                    self._flush(request_id)
                except Exception:  # a reporting failure never stops reporting for other runs
                    log.exception("progress.flush_failed", request_id=request_id)
                    with self._cond:
                        self._pending.pop(request_id, None)

    def _flush(self, request_id: str) -> None:
        try:
            request = self._store().request(request_id)
        except NotFound:
            with self._cond:
                self._pending.pop(request_id, None)
            return
        with self._cond:
            pending = self._pending[request_id]
            if not request.thread_ts:
                if time.monotonic() - pending.since > THREAD_WAIT:
                    log.warning("progress.no_thread", request_id=request_id, dropped=len(pending.lines))
                    self._pending.pop(request_id, None)
                return
            wait = self._last_post.get(request.channel, 0.0) + self.interval - time.monotonic()
            if wait > 0:
                return
            lines = pending.lines[:MAX_LINES_PER_MESSAGE]
            del pending.lines[:MAX_LINES_PER_MESSAGE]
            final = None
            if not pending.lines:  # all sent: the request leaves the queue until its next event
                final = pending.final
                self._pending.pop(request_id, None)
            self._last_post[request.channel] = time.monotonic()
        try:
            if lines:
                self.poster.post_text(request.channel, "\n".join(lines), thread_ts=request.thread_ts)
            if final is not None:
                approvers = tuple(vote.approver for vote in self._store().votes(request_id) if vote.vote == "approve")
                reply = run_reply(final, waited=True, approved_by=approvers)
                message = slack_render.render(to_document(reply))
                self.poster.update(request.channel, request.thread_ts, message)
        except BackendError as exc:
            log.warning("progress.post_failed", request_id=request_id, reason=exc.message)


class _RunSink:
    def __init__(self, reporter: SlackRunReporter) -> None:
        self.reporter = reporter

    # Lines carry backend text (errors, job output): escaped so they can never mention anyone.
    def started(self, run: Snapshot) -> None:
        self.reporter.queue(run.id, escape(start_line(run)))

    def step(self, run: Snapshot, step: StepRecord, state: StepState) -> None:
        line = escape(step_line(run, step, state))
        if state is StepState.FAILED and step.output_tail.strip():
            tail = "\n".join(step.output_tail.splitlines()[-10:])
            line += f"\n```{escape(tail)}```"
        self.reporter.queue(run.id, line)

    def finished(self, run: Snapshot) -> None:
        self.reporter.queue(run.id, escape(final_line(run)), final=run)
