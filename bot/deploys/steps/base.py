"""What every step kind shares: the context a step runs in, its output tail, and how it fails.

A step kind is a module with `execute(args, ctx) -> str` (a one-line summary of what it did) and
`describe(args, ctx) -> str` (its line in a `make -n`-style dry run). `args` is the step's catalog spec
with every variable already substituted and validated (a JSON mapping, as stored in the plan).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.errors import BackendError, BackendUnavailable, DeadlineExceeded

if TYPE_CHECKING:
    from bot.clients.kube import DeployKube
    from bot.insight.metrics import Source

TAIL_LINES = 40  # lines of a step's output kept for the failure message and the store
TAIL_CHARS = 4000


class StepFailed(Exception):
    """The step did not do what it should; `message` says what, for the person who ran the deploy."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StepCancelled(Exception):
    """The run was cancelled while the step waited; the step undid what it owned (a Job is deleted)."""


class OutputTail:
    """The last lines a step printed (thread-safe: a subprocess reader and the step both write)."""

    def __init__(self, lines: int = TAIL_LINES) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        line = line.rstrip("\r\n")
        with self._lock:
            self._lines.append(line[:500])

    def extend(self, text: str) -> None:
        for line in text.splitlines():
            self.add(line)

    def text(self) -> str:
        with self._lock:
            text = "\n".join(self._lines)
        return text[-TAIL_CHARS:]


@dataclass
class RunFacts:
    """What the run learned while running, shared by its steps (set_image records, rollback reads)."""

    from_image: str = ""
    from_revision: int | None = None  # the deployment's revision before this run changed it
    to_image: str = ""
    to_revision: int | None = None
    changed: bool = False  # this run changed the deployment's pod template
    patched_generation: int | None = None  # metadata.generation our last patch produced
    changed_at: float | None = None  # unix seconds set_image changed the image (verify's baseline ends there)


@dataclass(frozen=True)
class Workload:
    """The deployment a run is about."""

    service: str
    env: str
    cluster: str
    namespace: str
    deployment: str
    container: str
    readiness_path: str = "/readyz"
    port: int = 8080


class Cancelled(Protocol):
    def __call__(self) -> bool: ...


@dataclass
class StepContext:
    run_id: str
    seq: int
    workload: Workload
    workspace: Path  # relative `dir`/`cwd` of make and run steps start here (the catalog's folder)
    kube_for: Callable[[str], DeployKube]  # cluster -> client; steps without a cluster never call it
    cancelled: Cancelled
    facts: RunFacts
    poll: float = 1.0  # seconds between status reads while waiting
    output: OutputTail = field(default_factory=OutputTail)
    # A progress line while the step waits (why it retries, what the new pods are doing); the engine passes it to
    # the run's progress sink. Steps keep the pace down themselves (every few seconds at most).
    note: Callable[[str], None] = field(default=lambda _text: None)
    # The Prometheus source of a workload (verify steps); None when the engine has none.
    metrics_for: Callable[[Workload], Source] | None = None

    def kube(self) -> DeployKube:
        return self.kube_for(self.workload.cluster)

    def sleep(self, seconds: float, deadline: float | None = None) -> None:
        """Wait up to `seconds` (never past `deadline`), waking early when the run is cancelled."""
        end = time.monotonic() + seconds
        if deadline is not None:
            end = min(end, deadline)
        while True:
            if self.cancelled():
                raise StepCancelled
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))


# Errors that can pass: the API server answered 5xx or 429, the connection broke or timed out, the cluster's
# circuit breaker is open for a while (BackendUnavailable), a single call ran out of time (DeadlineExceeded).
TRANSIENT: tuple[type[BackendError], ...] = (BackendUnavailable, DeadlineExceeded)


class Retrying:
    """How a waiting step lives through errors that can pass: it keeps trying until its own deadline, says in
    the progress why (each new reason at once, the same reason again at most every `every` seconds), and waits
    at least as long as the error asks (an open circuit breaker says when it lets a call through again)."""

    def __init__(self, ctx: StepContext, deadline: float, every: float = 5.0) -> None:
        self.ctx = ctx
        self.deadline = deadline
        self.every = every
        self.retries = 0
        self._said = ""
        self._said_at = 0.0

    def failed(self, exc: BackendError, what: str) -> None:
        """After a transient error: note it and pause; StepFailed once the step's deadline has passed."""
        now = time.monotonic()
        if now >= self.deadline:
            raise StepFailed(f"{what}: {exc.message} (kept retrying until the step's timeout, {self.retries} "
                             "retries)")
        self.retries += 1
        if exc.message != self._said or now - self._said_at >= self.every:
            self._said, self._said_at = exc.message, now
            self.ctx.note(f"retrying ({what}): {exc.message}")
        self.ctx.output.add(f"retry {self.retries}: {exc.message}")
        retry_after = getattr(exc, "retry_after", None)
        pause = max(self.ctx.poll, float(retry_after) if isinstance(retry_after, int | float) else 0.0)
        self.ctx.sleep(pause, self.deadline)


Args = Mapping[str, Any]
Execute = Callable[[Args, StepContext], str]
Describe = Callable[[Args, Workload], str]


@dataclass(frozen=True)
class StepKind:
    name: str
    execute: Execute
    describe: Describe
    needs_cluster: bool = False


def seconds(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def duration_text(value: float) -> str:
    """600 -> '10m', 90 -> '1m30s', 2.5 -> '2.5s'."""
    if value >= 60 and value % 60 == 0:
        minutes = int(value // 60)
        return f"{minutes // 60}h" if minutes % 60 == 0 and minutes >= 60 else f"{minutes}m"
    if value >= 60:
        return f"{int(value // 60)}m{int(value % 60)}s"
    return f"{value:g}s"
