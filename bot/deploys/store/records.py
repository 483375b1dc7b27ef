"""What the store keeps, as Python values: request and step states, the records read back, ids, limits."""

from __future__ import annotations

import enum
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_STALE_AFTER = 30.0  # seconds without a heartbeat before a run counts as dead
OUTPUT_TAIL_LIMIT = 4000  # characters of a step's output kept


class State(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"
    INTERRUPTED = "INTERRUPTED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


# Which states each state may be left for; `transition` refuses anything else.
NEXT: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.APPROVED, State.REJECTED, State.EXPIRED, State.CANCELLED}),
    State.APPROVED: frozenset({State.RUNNING, State.CANCELLED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.INTERRUPTED,
                              State.CANCELLED}),
}
FINAL = frozenset(State) - frozenset(NEXT)
# The run did not succeed: `svcbot run` exits 3 (CANCELLED too: someone else may have stopped the run it waited for).
BAD_ENDINGS = frozenset({State.FAILED, State.ROLLED_BACK, State.INTERRUPTED, State.CANCELLED})


class StepState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"
    INTERRUPTED = "INTERRUPTED"


# --- records ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Owner:
    """The process running a run: shown to people (host, pid) and compared by `id` (unique per process)."""

    host: str
    pid: int
    id: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(host=socket.gethostname(), pid=os.getpid(), id=secrets.token_hex(8))

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}"


@dataclass(frozen=True)
class NewRequest:
    """What a deploy or rollback request is, as created by the command that received it."""

    kind: str  # "deploy" | "rollback"
    service: str
    env: str
    version: str  # the requested version; for a rollback, the revision it goes to ("" = previous)
    requester: str
    plan: Mapping[str, Any]  # the exact plan shown, as JSON
    state: State = State.APPROVED  # PENDING when approval is required
    approval: Mapping[str, Any] | None = None  # approvers, quorum, self_approval (issue 8)
    expires_at: float | None = None
    os_user: str = ""
    source: str = "slack"
    channel: str = ""
    id: str = ""  # generated when empty


@dataclass(frozen=True)
class RequestRecord:
    id: str
    kind: str
    service: str
    env: str
    version: str
    requester: str
    os_user: str
    source: str
    channel: str
    thread_ts: str
    state: State
    plan: Mapping[str, Any]
    approval: Mapping[str, Any] | None
    expires_at: float | None
    reason: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class RunRecord:
    request_id: str
    owner: Owner
    heartbeat_at: float
    started_at: float
    finished_at: float | None
    from_image: str
    to_image: str
    from_revision: int | None
    to_revision: int | None
    cancel_requested_by: str
    failure: str
    rollback: str
    restored_revision: int | None = None  # the revision on_failure: rollback went back to

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else max(0.0, self.finished_at - self.started_at)


@dataclass(frozen=True)
class StepRecord:
    request_id: str
    seq: int
    target: str
    kind: str
    description: str
    state: StepState
    started_at: float | None
    finished_at: float | None
    output_tail: str
    error: str

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


@dataclass(frozen=True)
class StepSpec:
    """A step as the store records it when a run starts."""

    target: str
    kind: str
    description: str


@dataclass(frozen=True)
class Vote:
    request_id: str
    approver: str
    vote: str  # "approve" | "reject"
    reason: str
    at: float


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: float
    request_id: str | None
    actor: str
    event: str
    from_state: str | None
    to_state: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class OutboxItem:
    """Something a request's Slack thread is owed (store.py's outbox): a progress line, or the outcome."""

    id: int
    request_id: str
    kind: str  # LINE | OUTCOME (store.py)
    text: str
    writer: str  # the owner id of the process that wrote it (it sends its own at once)
    created_at: float


@dataclass(frozen=True)
class Snapshot:
    """A request with its run and steps, read together: what progress messages and replies show."""

    request: RequestRecord
    run: RunRecord | None
    steps: tuple[StepRecord, ...]

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def state(self) -> State:
        return self.request.state


# --- ids ------------------------------------------------------------------------------------------------

ID_PATTERN = re.compile(r"^[a-z0-9]{4,32}$")  # what a request id looks like (new ones: eight hex characters)


def new_id() -> str:
    """Eight lowercase hex characters: short enough to type in `/svc cancel <id>`."""
    return secrets.token_hex(4)
