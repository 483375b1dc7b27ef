"""The `Store`: requests, runs, steps, votes and audit events, and every state transition between them.

Every transition is one conditional UPDATE (`WHERE state IN (...) RETURNING id`) plus its audit event in one
transaction, so it succeeds exactly once however many threads, processes or replicas try (the package's
docstring has the state machine and how each engine locks).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from bot.core.crashpoints import crash_point
from bot.core.errors import Conflict, NotFound
from bot.deploys.store.database import Database, Row, Transaction
from bot.deploys.store.location import open_database
from bot.deploys.store.migrations import migrate
from bot.deploys.store.records import (
    DEFAULT_STALE_AFTER,
    FINAL,
    ID_PATTERN,
    NEXT,
    OUTPUT_TAIL_LIMIT,
    AuditEvent,
    NewRequest,
    OutboxItem,
    Owner,
    RequestRecord,
    RunRecord,
    Snapshot,
    State,
    StepRecord,
    StepSpec,
    StepState,
    Vote,
    new_id,
)

log = structlog.get_logger("svcbot.store")

LINE = "line"  # outbox: a progress line for the request's thread
OUTCOME = "outcome"  # outbox: the run ended; its message is updated with the outcome (and the thread told)
OUTBOX_KEPT = 86400.0  # seconds a delivered outbox row is kept (for looking into what was sent)


class AlreadyPending(Conflict):
    """`create_request(exclusive=True)` found a request for the same service and environment awaiting approval."""

    def __init__(self, request: RequestRecord) -> None:
        super().__init__(f"{request.service} in {request.env} already has a request awaiting approval: {request.id}")
        self.request = request


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) and value else None


def _tail(text: str, limit: int = OUTPUT_TAIL_LIMIT) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


class Store:
    """Requests, runs, steps, votes and audit events; thread-safe; one per process (Backends.store())."""

    def __init__(self, database: Database, *, owner: Owner | None = None,
                 stale_after: float = DEFAULT_STALE_AFTER, recover: bool = True) -> None:
        self.database = database
        self.owner = owner or Owner.this_process()
        self.stale_after = stale_after
        migrate(database)
        # Runs whose process died, marked INTERRUPTED on open; the engine tells their requesters.
        self.interrupted_on_open: list[Snapshot] = self.interrupt_stale() if recover else []

    @classmethod
    def open(cls, location: str | None = None, **options: Any) -> Store:
        return cls(open_database(location), **options)

    def close(self) -> None:
        self.database.close()

    # --- requests -------------------------------------------------------------------------------------

    def create_request(self, new: NewRequest, *, exclusive: bool = False, now: float | None = None) -> RequestRecord:
        """Store a request in its first state (PENDING, or APPROVED when no approval is needed).

        `exclusive`: refused with AlreadyPending while another request for the same service and environment
        awaits approval (PENDING and unexpired), checked and inserted in one transaction, so two requests
        made at once cannot both wait.
        """
        if new.state not in (State.PENDING, State.APPROVED):
            raise ValueError(f"a request starts PENDING or APPROVED, not {new.state}")
        now = time.time() if now is None else now
        request_id = new.id or new_id()
        with self.database.transaction() as tx:
            if exclusive:
                self.database.serialize(tx, f"svcbot.request:{new.service}:{new.env}")
                waiting = tx.query("SELECT * FROM requests WHERE service = ? AND env = ? AND state = ? "
                                   "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at LIMIT 1",
                                   (new.service, new.env, State.PENDING.value, now))
                if waiting:
                    raise AlreadyPending(_request(waiting[0]))
            tx.execute(
                "INSERT INTO requests (id, kind, service, env, version, requester, os_user, source, channel, "
                "thread_ts, state, plan, approval, expires_at, reason, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, '', ?, ?)",
                (request_id, new.kind, new.service, new.env, new.version, new.requester, new.os_user,
                 new.source, new.channel, new.state.value, _json(new.plan), _json(new.approval),
                 new.expires_at, now, now))
            detail = {"kind": new.kind, "service": new.service, "env": new.env, "version": new.version,
                      "source": new.source}
            if new.os_user:
                detail["os_user"] = new.os_user
            if new.state is State.APPROVED:
                detail["approval"] = "not required"
            self._audit(tx, now, request_id, new.requester, "request.created", to_state=new.state, detail=detail)
        crash_point("after:request.created")
        return self.request(request_id)

    def transition(self, request_id: str, to: State, *, actor: str, expected: Iterable[State] | None = None,
                   reason: str = "", detail: Mapping[str, Any] | None = None, unexpired: bool = False,
                   now: float | None = None) -> bool:
        """Move a request to `to` if it is in one of `expected` (default: every state that may lead there).

        One conditional UPDATE plus its audit event in one transaction: True for exactly one caller.
        `unexpired=True` also requires `expires_at` to be unset or in the future, checked in the UPDATE.
        RUNNING -> an end state also closes the run (finished_at); use `finish_run` for its facts.
        """
        now = time.time() if now is None else now
        sources = _sources(to, expected)
        with self.database.transaction() as tx:
            moved = self._transition(tx, request_id, sources, to, actor=actor, reason=reason, detail=detail,
                                     unexpired=unexpired, now=now)
        if moved:
            crash_point(f"after:request.{to.value.lower()}")
        return moved

    def _transition(self, tx: Transaction, request_id: str, sources: Sequence[State], to: State, *, actor: str,
                    reason: str, detail: Mapping[str, Any] | None, unexpired: bool, now: float,
                    extra_condition: str = "", extra_params: Sequence[object] = ()) -> bool:
        marks = ", ".join("?" for _ in sources)
        sql = ("UPDATE requests SET state = ?, reason = ?, updated_at = ? "  # noqa: S608 - only ? marks added
               f"WHERE id = ? AND state IN ({marks})")
        params: list[object] = [to.value, reason, now, request_id, *(state.value for state in sources)]
        if unexpired:
            sql += " AND (expires_at IS NULL OR expires_at > ?)"
            params.append(now)
        if extra_condition:
            sql += f" AND {extra_condition}"
            params.extend(extra_params)
        # The state it leaves, read in the same transaction with the row locked (SQLite: the whole database
        # is), so nobody else can move it meanwhile; the UPDATE re-checks the state anyway.
        before = tx.query("SELECT state FROM requests WHERE id = ?" + self.database.row_lock,  # noqa: S608
                          (request_id,))
        if len(tx.query(sql + " RETURNING id", params)) != 1:
            return False
        if to in FINAL:
            tx.execute("UPDATE runs SET finished_at = ? WHERE request_id = ? AND finished_at IS NULL",
                       (now, request_id))
        if to in FINAL and before and before[0]["state"] == State.RUNNING.value:
            # The run ended: its Slack message is owed the outcome, written with the end itself so that no
            # crash can leave the store right and Slack saying "running" (the outbox, below).
            tx.execute("INSERT INTO outbox (request_id, kind, text, writer, created_at, sent_at) "
                       "SELECT id, ?, '', ?, ?, NULL FROM requests WHERE id = ? AND source = 'slack'",
                       (OUTCOME, self.owner.id, now, request_id))
        audit_detail = dict(detail or {})
        if reason:
            audit_detail["reason"] = reason
        self._audit(tx, now, request_id, actor, f"request.{to.value.lower()}",
                    from_state=before[0]["state"] if before else None, to_state=to, detail=audit_detail)
        return True

    def set_thread(self, request_id: str, channel: str, thread_ts: str) -> None:
        """Where the request's message lives in Slack (the wiring sets it after chat.postMessage)."""
        with self.database.transaction() as tx:
            tx.execute("UPDATE requests SET channel = ?, thread_ts = ? WHERE id = ?",
                       (channel, thread_ts, request_id))
        crash_point("after:thread.set")

    def request(self, request_id: str) -> RequestRecord:
        rows = self._query("SELECT * FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise NotFound(f"no request {request_id!r}" + ("" if ID_PATTERN.match(request_id) else
                                                                " (ids look like 3f9a1c2e)"))
        return _request(rows[0])

    def requests(self, *, service: str | None = None, env: str | None = None,
                 states: Iterable[State] | None = None, limit: int = 50) -> list[RequestRecord]:
        """Newest first."""
        sql = "SELECT * FROM requests WHERE 1 = 1"
        params: list[object] = []
        if service is not None:
            sql += " AND service = ?"
            params.append(service)
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        if states is not None:
            wanted = [state.value for state in states]
            sql += f" AND state IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        sql += " ORDER BY created_at DESC, id LIMIT ?"
        params.append(limit)
        return [_request(row) for row in self._query(sql, params)]

    # --- runs -----------------------------------------------------------------------------------------

    def claim_run(self, request_id: str, steps: Sequence[StepSpec], *, actor: str, to_image: str = "",
                  from_image: str = "", now: float | None = None) -> bool:
        """APPROVED -> RUNNING, owned by this process, with its steps PENDING: True for exactly one caller."""
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            if not self._transition(tx, request_id, (State.APPROVED,), State.RUNNING, actor=actor, reason="",
                                    detail={"owner": str(self.owner)}, unexpired=False, now=now):
                return False
            tx.execute(
                "INSERT INTO runs (request_id, owner_host, owner_pid, owner_id, heartbeat_at, started_at, "
                "finished_at, from_image, to_image, from_revision, to_revision, restored_revision, "
                "cancel_requested_by, failure, rollback) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL, NULL, "
                "'', '', '')",
                (request_id, self.owner.host, self.owner.pid, self.owner.id, now, now, from_image, to_image))
            self._insert_steps(tx, request_id, 0, steps)
        crash_point("after:request.running")
        return True

    def _insert_steps(self, tx: Transaction, request_id: str, first_seq: int, steps: Sequence[StepSpec]) -> None:
        for offset, step in enumerate(steps):
            tx.execute(
                "INSERT INTO steps (request_id, seq, target, kind, description, state, started_at, finished_at, "
                "output_tail, error) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, '', '')",
                (request_id, first_seq + offset, step.target, step.kind, step.description, StepState.PENDING.value))

    def append_steps(self, request_id: str, steps: Sequence[StepSpec]) -> list[int]:
        """Add steps at the end of a run (the rollback after a failure); their sequence numbers."""
        with self.database.transaction() as tx:
            rows = tx.query("SELECT COUNT(*) AS n FROM steps WHERE request_id = ?", (request_id,))
            first = int(rows[0]["n"])
            self._insert_steps(tx, request_id, first, steps)
        return list(range(first, first + len(steps)))

    def heartbeat(self, request_id: str, *, now: float | None = None) -> str | None:
        """Record that this process still runs the run; who asked to cancel it, if anyone ("" if nobody).

        None when this process no longer owns a running run of that id (someone marked it INTERRUPTED).
        """
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            changed = tx.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE request_id = ? AND owner_id = ? AND finished_at IS NULL",
                (now, request_id, self.owner.id))
            if changed != 1:
                return None
            rows = tx.query("SELECT cancel_requested_by FROM runs WHERE request_id = ?", (request_id,))
        return str(rows[0]["cancel_requested_by"]) if rows else None

    def request_cancel(self, request_id: str, actor: str, *, now: float | None = None) -> bool:
        """Ask the owner of a RUNNING run to stop it (it does between steps); True if the run was RUNNING."""
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            changed = tx.execute(
                "UPDATE runs SET cancel_requested_by = ? "
                "WHERE request_id = ? AND cancel_requested_by = '' AND finished_at IS NULL "
                "AND request_id IN (SELECT id FROM requests WHERE id = ? AND state = ?)",
                (actor, request_id, request_id, State.RUNNING.value))
            if changed == 1:
                self._audit(tx, now, request_id, actor, "run.cancel_requested", from_state=State.RUNNING)
        return changed == 1

    def set_run_facts(self, request_id: str, *, from_image: str | None = None, to_image: str | None = None,
                      from_revision: int | None = None, to_revision: int | None = None,
                      restored_revision: int | None = None, failure: str | None = None,
                      rollback: str | None = None) -> None:
        """What the run found and did: images and revisions before/after, what failed, what was restored."""
        values = {"from_image": from_image, "to_image": to_image, "from_revision": from_revision,
                  "to_revision": to_revision, "restored_revision": restored_revision, "failure": failure,
                  "rollback": rollback}
        changes = {key: value for key, value in values.items() if value is not None}
        if not changes:
            return
        assignments = ", ".join(f"{key} = ?" for key in changes)
        with self.database.transaction() as tx:
            tx.execute(f"UPDATE runs SET {assignments} WHERE request_id = ?",  # noqa: S608 - fixed column names
                       (*changes.values(), request_id))

    def finish_run(self, request_id: str, to: State, *, reason: str = "", detail: Mapping[str, Any] | None = None,
                   now: float | None = None) -> bool:
        """RUNNING -> an end state, only while this process owns the run. False if it no longer does."""
        if to not in NEXT[State.RUNNING]:
            raise ValueError(f"a run cannot end {to}")
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            ended = self._transition(
                tx, request_id, (State.RUNNING,), to, actor="svcbot", reason=reason, detail=detail,
                unexpired=False, now=now,
                extra_condition="id IN (SELECT request_id FROM runs WHERE request_id = ? AND owner_id = ?)",
                extra_params=(request_id, self.owner.id))
        if ended:
            crash_point(f"after:request.{to.value.lower()}")
        return ended

    def run(self, request_id: str) -> RunRecord | None:
        rows = self._query("SELECT * FROM runs WHERE request_id = ?", (request_id,))
        return _run(rows[0]) if rows else None

    def runs_of(self, request_ids: Sequence[str]) -> dict[str, RunRecord]:
        if not request_ids:
            return {}
        marks = ", ".join("?" for _ in request_ids)
        rows = self._query(f"SELECT * FROM runs WHERE request_id IN ({marks})", request_ids)  # noqa: S608
        return {row["request_id"]: _run(row) for row in rows}

    def active_run(self, service: str, env: str) -> RequestRecord | None:
        """The RUNNING request for this service and environment, if any."""
        rows = self._query("SELECT * FROM requests WHERE service = ? AND env = ? AND state = ? "
                           "ORDER BY created_at DESC LIMIT 1", (service, env, State.RUNNING.value))
        return _request(rows[0]) if rows else None

    def interrupt_stale(self, *, now: float | None = None) -> list[Snapshot]:
        """Mark RUNNING runs whose heartbeat is older than `stale_after` INTERRUPTED; never this process's own.

        The staleness test is inside each UPDATE, so a run that heartbeats meanwhile is left alone.
        """
        now = time.time() if now is None else now
        cutoff = now - self.stale_after
        candidates = self._query(
            "SELECT r.id AS id, u.owner_host AS host, u.owner_pid AS pid, u.heartbeat_at AS heartbeat_at "
            "FROM requests r JOIN runs u ON u.request_id = r.id "
            "WHERE r.state = ? AND u.heartbeat_at < ? AND u.owner_id <> ?",
            (State.RUNNING.value, cutoff, self.owner.id))
        interrupted: list[Snapshot] = []
        for row in candidates:
            silent = now - float(row["heartbeat_at"])
            reason = (f"the bot process running it ({row['host']}/{row['pid']}) stopped: "
                      f"no heartbeat for {silent:.0f}s")
            with self.database.transaction() as tx:
                if not self._transition(
                        tx, row["id"], (State.RUNNING,), State.INTERRUPTED, actor="svcbot", reason=reason,
                        detail={"noticed_by": str(self.owner)}, unexpired=False, now=now,
                        extra_condition="id IN (SELECT request_id FROM runs WHERE request_id = ? AND "
                                        "heartbeat_at < ? AND owner_id <> ?)",
                        extra_params=(row["id"], cutoff, self.owner.id)):
                    continue
                tx.execute("UPDATE steps SET state = ?, finished_at = ? WHERE request_id = ? AND state = ?",
                           (StepState.INTERRUPTED.value, now, row["id"], StepState.RUNNING.value))
                tx.execute("UPDATE steps SET state = ? WHERE request_id = ? AND state = ?",
                           (StepState.SKIPPED.value, row["id"], StepState.PENDING.value))
                tx.execute("UPDATE runs SET failure = ? WHERE request_id = ?", (reason, row["id"]))
            log.warning("run.interrupted", request_id=row["id"], reason=reason)
            interrupted.append(self.snapshot(row["id"]))
        return interrupted

    # --- approval expiry --------------------------------------------------------------------------------

    def expire_overdue(self, *, now: float | None = None, actor: str = "svcbot") -> list[RequestRecord]:
        """Mark PENDING requests whose approval window has passed EXPIRED; the ones this call expired.

        The deadline is checked inside each UPDATE, so an approval that lands first wins, and two sweepers
        (two replicas, or a sweep racing a click) expire each request once between them.
        """
        now = time.time() if now is None else now
        overdue = self._query("SELECT id FROM requests WHERE state = ? AND expires_at IS NOT NULL "
                              "AND expires_at <= ? ORDER BY expires_at, id", (State.PENDING.value, now))
        expired: list[str] = []
        for row in overdue:
            with self.database.transaction() as tx:
                if self._transition(tx, row["id"], (State.PENDING,), State.EXPIRED, actor=actor,
                                    reason="nobody approved it before it expired", detail=None,
                                    unexpired=False, now=now,
                                    extra_condition="expires_at IS NOT NULL AND expires_at <= ?",
                                    extra_params=(now,)):
                    expired.append(row["id"])
        return [self.request(request_id) for request_id in expired]

    # --- steps ----------------------------------------------------------------------------------------

    def step_started(self, request_id: str, seq: int, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            tx.execute("UPDATE steps SET state = ?, started_at = ? WHERE request_id = ? AND seq = ?",
                       (StepState.RUNNING.value, now, request_id, seq))
        crash_point(f"after:step.started:{seq}")

    def step_finished(self, request_id: str, seq: int, state: StepState, *, output: str = "", error: str = "",
                      now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            tx.execute(
                "UPDATE steps SET state = ?, finished_at = ?, output_tail = ?, error = ? "
                "WHERE request_id = ? AND seq = ?",
                (state.value, now, _tail(output), _tail(error, 1000), request_id, seq))
        crash_point(f"after:step.finished:{seq}")

    def skip_steps(self, request_id: str, seqs: Iterable[int], state: StepState = StepState.SKIPPED) -> None:
        with self.database.transaction() as tx:
            for seq in seqs:
                tx.execute("UPDATE steps SET state = ? WHERE request_id = ? AND seq = ? AND state = ?",
                           (state.value, request_id, seq, StepState.PENDING.value))

    def steps(self, request_id: str) -> list[StepRecord]:
        rows = self._query("SELECT * FROM steps WHERE request_id = ? ORDER BY seq", (request_id,))
        return [_step(row) for row in rows]

    def snapshot(self, request_id: str) -> Snapshot:
        return Snapshot(request=self.request(request_id), run=self.run(request_id),
                        steps=tuple(self.steps(request_id)))

    # --- votes (issue 8) ------------------------------------------------------------------------------

    def add_vote(self, request_id: str, approver: str, vote: str, reason: str = "", *,
                 now: float | None = None) -> bool:
        """Record one approver's vote; False if they already voted (one vote per approver, by constraint)."""
        if vote not in ("approve", "reject"):
            raise ValueError(f"a vote is approve or reject, not {vote!r}")
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            added = tx.execute(
                "INSERT INTO votes (request_id, approver, vote, reason, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (request_id, approver) DO NOTHING", (request_id, approver, vote, reason, now))
            if added == 1:
                self._audit(tx, now, request_id, approver, f"vote.{vote}", detail={"reason": reason} if reason else {})
        if added == 1:
            crash_point(f"after:vote.{vote}")
        return added == 1

    def votes(self, request_id: str) -> list[Vote]:
        rows = self._query("SELECT * FROM votes WHERE request_id = ? ORDER BY at, approver", (request_id,))
        return [Vote(request_id=row["request_id"], approver=row["approver"], vote=row["vote"],
                     reason=row["reason"], at=float(row["at"])) for row in rows]

    # --- audit ----------------------------------------------------------------------------------------

    def record(self, actor: str, event: str, *, request_id: str | None = None,
               detail: Mapping[str, Any] | None = None, now: float | None = None) -> None:
        """An audit event that is not a state transition (a refused deploy, a lock taken over...)."""
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            self._audit(tx, now, request_id, actor, event, detail=detail)
        crash_point(f"after:{event}")

    # --- the outbox: what Slack is still owed ------------------------------------------------------------

    def outbox_add(self, request_id: str, kind: str, text: str = "", *, now: float | None = None) -> None:
        """Owe a request's Slack thread a progress line (`LINE`) or its message the outcome (`OUTCOME`)."""
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            tx.execute("INSERT INTO outbox (request_id, kind, text, writer, created_at, sent_at) "
                       "VALUES (?, ?, ?, ?, ?, NULL)", (request_id, kind, text, self.owner.id, now))

    def outbox_unsent(self, limit: int = 500) -> list[OutboxItem]:
        """What is still owed, oldest first (by request, then in the order it was written)."""
        rows = self._query("SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit,))
        return [OutboxItem(id=int(row["id"]), request_id=row["request_id"], kind=row["kind"], text=row["text"],
                           writer=row["writer"], created_at=float(row["created_at"])) for row in rows]

    def outbox_sent(self, ids: Sequence[int], *, now: float | None = None) -> None:
        """Mark items delivered (or given up on); rows delivered a day ago are pruned."""
        if not ids:
            return
        now = time.time() if now is None else now
        marks = ", ".join("?" for _ in ids)
        with self.database.transaction() as tx:
            tx.execute(f"UPDATE outbox SET sent_at = ? WHERE id IN ({marks})",  # noqa: S608 - only ? marks
                       (now, *ids))
            tx.execute("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?", (now - OUTBOX_KEPT,))
        crash_point("after:outbox.sent")

    def audit(self, request_id: str | None = None, limit: int = 200) -> list[AuditEvent]:
        if request_id is None:
            rows = self._query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
            rows.reverse()
        else:
            rows = self._query("SELECT * FROM audit WHERE request_id = ? ORDER BY id LIMIT ?", (request_id, limit))
        return [AuditEvent(id=int(row["id"]), at=float(row["at"]), request_id=row["request_id"], actor=row["actor"],
                           event=row["event"], from_state=row["from_state"], to_state=row["to_state"],
                           detail=_loads(row["detail"]) or {}) for row in rows]

    @staticmethod
    def _audit(tx: Transaction, now: float, request_id: str | None, actor: str, event: str, *,
               from_state: str | None = None, to_state: str | None = None,
               detail: Mapping[str, Any] | None = None) -> None:
        detail = detail or {}
        tx.execute("INSERT INTO audit (at, request_id, actor, event, from_state, to_state, detail) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (now, request_id, actor, event, from_state, to_state, _json(detail) or "{}"))
        log.info("audit." + event, request_id=request_id, actor=actor, from_state=from_state, to_state=to_state,
                 **{key: value for key, value in detail.items()
                    if isinstance(value, str | int | float) and key not in ("event", "actor", "request_id")})

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with self.database.transaction(write=False) as tx:
            return tx.query(sql, params)


def _sources(to: State, expected: Iterable[State] | None) -> tuple[State, ...]:
    allowed = tuple(state for state, targets in NEXT.items() if to in targets)
    if expected is None:
        return allowed
    wanted = tuple(expected)
    illegal = [state for state in wanted if state not in allowed]
    if illegal:
        raise ValueError(f"no transition {illegal[0]} -> {to}")
    return wanted


def _request(row: Row) -> RequestRecord:
    return RequestRecord(
        id=row["id"], kind=row["kind"], service=row["service"], env=row["env"], version=row["version"],
        requester=row["requester"], os_user=row["os_user"], source=row["source"], channel=row["channel"],
        thread_ts=row["thread_ts"], state=State(row["state"]), plan=_loads(row["plan"]) or {},
        approval=_loads(row["approval"]), expires_at=row["expires_at"], reason=row["reason"],
        created_at=float(row["created_at"]), updated_at=float(row["updated_at"]))


def _run(row: Row) -> RunRecord:
    return RunRecord(
        request_id=row["request_id"], owner=Owner(row["owner_host"], int(row["owner_pid"]), row["owner_id"]),
        heartbeat_at=float(row["heartbeat_at"]), started_at=float(row["started_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        from_image=row["from_image"], to_image=row["to_image"], from_revision=row["from_revision"],
        to_revision=row["to_revision"], cancel_requested_by=row["cancel_requested_by"], failure=row["failure"],
        rollback=row["rollback"], restored_revision=row["restored_revision"])


def _step(row: Row) -> StepRecord:
    return StepRecord(
        request_id=row["request_id"], seq=int(row["seq"]), target=row["target"], kind=row["kind"],
        description=row["description"], state=StepState(row["state"]), started_at=row["started_at"],
        finished_at=row["finished_at"], output_tail=row["output_tail"], error=row["error"])
