"""How a run reports: the `ProgressSink` protocol, the words of its lines, and the terminal's and the log's sinks.

The Slack wiring has its own sink (bot/slack/progress.py) that posts the same lines to the request's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import structlog

from bot.deploys.steps.base import duration_text
from bot.deploys.store import Snapshot, StepRecord, StepState

log = structlog.get_logger("svcbot.pipeline")

# --- progress -------------------------------------------------------------------------------------------

class ProgressSink(Protocol):
    """Where a run reports: the terminal prints lines; the Slack wiring posts the request message and then
    lines in its thread. Called on the run's thread; an exception here is logged and never fails a run."""

    def started(self, run: Snapshot) -> None: ...

    def step(self, run: Snapshot, step: StepRecord, state: StepState) -> None: ...

    def finished(self, run: Snapshot) -> None: ...


@runtime_checkable
class NoteSink(Protocol):
    """A sink that also takes notes while a step waits (why it retries, what the new pods are doing). Optional:
    the engine passes notes only to sinks that have `note`."""

    def note(self, run: Snapshot, step: StepRecord, text: str) -> None: ...


def note_line(run: Snapshot, step: StepRecord, text: str) -> str:
    """'  … [4/5] deploy: 1 of 3 updated, 0 ready; not ready: Readiness probe failed: HTTP 503, 6 times in 40 s'."""
    return f"  … [{step.seq + 1}/{len(run.steps)}] {step.target}: {text}"


def _version_of(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else image


def rollback_target(image: str, revision: str) -> str:
    """A rollback's target as people read it: '1.4.2 (revision 3)'; older requests stored no image."""
    if image and revision:
        return f"{_version_of(image)} (revision {revision})"
    return f"revision {revision}" if revision else "the previous revision"


def change_text(run: Snapshot) -> str:
    """'1.4.1 -> 1.4.2', from what the run recorded (or what it was asked for)."""
    plan = run.request.plan
    from_image = (run.run.from_image if run.run else "") or str(plan.get("from_image") or "")
    before = _version_of(from_image) if from_image else "?"
    if plan.get("action") == "rollback":
        image = str(plan.get("image") or "") or (run.run.to_image if run.run else "")
        after = rollback_target(image, str(plan.get("version") or ""))
    elif run.run and run.run.to_image:
        after = _version_of(run.run.to_image)
    else:
        after = str(plan.get("version") or "?")
    return f"{before} -> {after}"


def start_line(run: Snapshot) -> str:
    request = run.request
    return (f"{request.kind} {request.id}: {request.service} in {request.env}, "
            f"{'version ' + request.version if request.kind == 'deploy' else change_text(run)} "
            f"({len(run.steps)} steps) by {request.requester}")


def step_line(run: Snapshot, step: StepRecord, state: StepState) -> str:
    """One progress line: '[2/5] deploy: kubectl set image ... ✓ (0.4s)'."""
    total = len(run.steps)
    head = f"[{step.seq + 1}/{total}] {step.target}: {step.description}"
    took = f" ({duration_text(round(step.duration, 1))})" if step.duration is not None else ""
    if state is StepState.RUNNING:
        return f"▶ {head}"
    if state is StepState.SUCCEEDED:
        return f"✓ {head}{took}"
    if state is StepState.FAILED:
        return f"✗ {head}{took}: {step.error}"
    return f"· {head}: {state.value.lower()}"


def final_line(run: Snapshot) -> str:
    """The last message: outcome, version change, duration, and what failed or was restored."""
    request = run.request
    took = run.run.duration if run.run is not None else None
    duration = f" in {duration_text(round(took, 1))}" if took is not None else ""
    head = f"{request.kind} {request.id} {request.state.value}{duration}: {request.service} {request.env} "
    head += change_text(run)
    return f"{head}. {request.reason}" if request.reason else head


class TerminalSink:
    """Prints progress lines as they happen (svcbot run / shell)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit

    def started(self, run: Snapshot) -> None:
        self.emit(start_line(run))

    def step(self, run: Snapshot, step: StepRecord, state: StepState) -> None:
        # A failed step is marked here; what failed, and the step's output, are said once, by the answer
        # that follows the run (the terminal waits for it).
        line = step_line(run, step, state)
        self.emit(line.removesuffix(f": {step.error}") + " (see below)" if state is StepState.FAILED else line)

    def note(self, run: Snapshot, step: StepRecord, text: str) -> None:
        self.emit(note_line(run, step, text))

    def finished(self, run: Snapshot) -> None:
        """Nothing: the answer printed right after the run is its outcome."""


class LogSink:
    """The default when nobody listens: structured log lines."""

    def started(self, run: Snapshot) -> None:
        log.info("run.started", request_id=run.id, line=start_line(run))

    def step(self, run: Snapshot, step: StepRecord, state: StepState) -> None:
        log.info("run.step", request_id=run.id, seq=step.seq, state=state.value, line=step_line(run, step, state))

    def note(self, run: Snapshot, step: StepRecord, text: str) -> None:
        log.info("run.note", request_id=run.id, seq=step.seq, line=note_line(run, step, text))

    def finished(self, run: Snapshot) -> None:
        log.info("run.finished", request_id=run.id, state=run.state.value, line=final_line(run))


