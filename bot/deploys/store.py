"""Persistence of deploy requests, runs, steps, votes and audit events.

Two engines behind one small seam (`Database`), chosen by SVCBOT_DB:
- SQLite in WAL mode at a file path or `sqlite:///path` (default: $XDG_DATA_HOME/svcbot/svcbot.db, i.e.
  ~/.local/share/svcbot/svcbot.db): one process writes at a time; one replica.
- PostgreSQL at a `postgresql://user:password@host:5432/db` URL (psycopg 3): several replicas share it.

The SQL is portable (PostgreSQL and SQLite both accept it: `?` placeholders are rewritten by the
PostgreSQL adapter, `ON CONFLICT DO NOTHING`, `UPDATE ... RETURNING`, `DOUBLE PRECISION` epoch seconds, no
engine-only functions); the same versioned migrations build the same schema on both, on open.

State machine (DESIGN.md): PENDING -> APPROVED -> RUNNING -> SUCCEEDED | FAILED | ROLLED_BACK |
INTERRUPTED | CANCELLED; PENDING -> REJECTED | EXPIRED | CANCELLED (and APPROVED -> CANCELLED, for an
approved request that never started). Every transition is one conditional UPDATE (`WHERE state IN
(...) RETURNING id`) plus its audit event in one transaction: it succeeds exactly once however many
threads, processes or replicas try. On SQLite a writing transaction holds the database's write lock; on
PostgreSQL the request's row is locked first (`FOR NO KEY UPDATE`), so the state it left is read exactly
and a concurrent transition waits, then finds the state moved on and changes nothing.

Runs: a RUNNING request has a `runs` row naming its owner (host, pid and a per-process id) and a
heartbeat. `interrupt_stale` marks runs whose heartbeat is stale INTERRUPTED (the check is inside the
UPDATE, so a heartbeat that lands in between wins); a live run is never touched. A process does it when
it opens the store, and the replica doing background work does it periodically (bot/deploys/background.py).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import json
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from bot.core.errors import BackendUnavailable, Conflict, NotFound, UsageError

if TYPE_CHECKING:
    import psycopg

log = structlog.get_logger("svcbot.store")

Row = dict[str, Any]
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
# The run ended badly: `svcbot run` exits 3.
BAD_ENDINGS = frozenset({State.FAILED, State.ROLLED_BACK, State.INTERRUPTED})


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


# --- the database seam ----------------------------------------------------------------------------------

class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one query (or a statement with RETURNING); its rows as dicts keyed by column name."""


class Database(Protocol):
    """The one small interface a storage engine implements (SQLite and PostgreSQL here).

    SQL uses `?` placeholders; `{autoid}` in DDL stands for the engine's auto-increment primary key;
    `row_lock` is appended to a SELECT that reads rows the transaction is about to change.
    """

    dialect: str
    autoid: str
    row_lock: str

    def transaction(self, *, write: bool = True) -> contextlib.AbstractContextManager[Transaction]:
        """One transaction; a writing one never loses an update to a concurrent one (SQLite: it takes the
        write lock at once; PostgreSQL: row locks), a reading one sees one consistent snapshot and never
        blocks writers. Engine errors come out as Conflict (a constraint refused the change) or
        BackendUnavailable."""

    def serialize(self, tx: Transaction, name: str) -> None:
        """Inside a writing transaction: wait until no other writer holds `name` (released at its end)."""

    def describe(self) -> str:
        """Where the store is, for messages and logs (never a password)."""

    def close(self) -> None: ...


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._connection.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        cursor = self._connection.execute(sql, tuple(params))
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class SqliteDatabase:
    """One connection per process, serialised by a lock; WAL so readers in other processes never block."""

    dialect = "sqlite"
    autoid = "INTEGER PRIMARY KEY AUTOINCREMENT"
    row_lock = ""  # a writing transaction already holds the whole database's write lock

    def __init__(self, path: Path, busy_timeout: float = 10.0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None,
                                               check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"cannot open the store at {path}: {exc}") from exc
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"the store at {self.path} is unavailable: {exc}") from exc
            try:
                yield _SqliteTransaction(self._connection)
            except BaseException as exc:
                self._connection.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise Conflict(f"the store refused the change: {_cut(str(exc))}") from exc
                if isinstance(exc, sqlite3.Error):
                    raise BackendUnavailable(f"the store at {self.path} failed: {_cut(str(exc))}") from exc
                raise
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"the store at {self.path} could not commit: {exc}") from exc

    def serialize(self, tx: Transaction, name: str) -> None:
        """Nothing to do: a writing transaction holds the database's write lock already."""

    def describe(self) -> str:
        return f"SQLite at {self.path}"

    def close(self) -> None:
        with self._lock:
            self._connection.close()


# PostgreSQL ------------------------------------------------------------------------------------------------

# A quoted literal or identifier (kept as it is), a `?` placeholder, or a `%` (psycopg's own marker).
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%")
# libpq settings added to every connection unless the URL sets them: a bounded wait to connect, TCP
# keepalives so a dead peer is noticed in well under a minute, and a name in pg_stat_activity.
_CONNECT_DEFAULTS = {"connect_timeout": "5", "keepalives": "1", "keepalives_idle": "10",
                     "keepalives_interval": "5", "keepalives_count": "3", "application_name": "svcbot"}


@functools.lru_cache(maxsize=512)
def pyformat(sql: str) -> str:
    """`?` placeholders -> psycopg's `%s` (and a literal `%` -> `%%`), leaving quoted text alone."""

    def replace(match: re.Match[str]) -> str:
        piece = match.group()
        return "%s" if piece == "?" else "%%" if piece == "%" else piece

    return _SQL_TOKEN.sub(replace, sql)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from a name (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _cut(text: str, limit: int = 256) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _psycopg() -> Any:
    try:
        import psycopg  # noqa: PLC0415 - only a PostgreSQL store needs the driver
    except ImportError as exc:
        raise BackendUnavailable("SVCBOT_DB names PostgreSQL, but the driver is not installed: "
                                 "pip install 'psycopg[binary]>=3.2,<4'") from exc
    return psycopg


class _PostgresTransaction:
    def __init__(self, connection: psycopg.Connection[Row]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._connection.execute(pyformat(sql), tuple(params)).rowcount

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._connection.execute(pyformat(sql), tuple(params)).fetchall()


class PostgresDatabase:
    """A small pool of psycopg connections (autocommit, explicit BEGIN/COMMIT), shared by the process's threads.

    Writing transactions run at READ COMMITTED: every transition is a conditional UPDATE on a row locked
    first, which PostgreSQL re-checks against the latest committed row, so it succeeds exactly once across
    replicas. Reading transactions are REPEATABLE READ, READ ONLY: one snapshot, never blocking writers.
    """

    dialect = "postgresql"
    autoid = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    row_lock = " FOR NO KEY UPDATE"  # the lock an UPDATE of non-key columns takes, taken before reading

    def __init__(self, url: str, *, pool_size: int = 4, wait: float = 30.0,
                 statement_timeout: float = 30.0) -> None:
        self._psycopg = _psycopg()
        self.url = url
        self.pool_size = pool_size
        self._wait = wait
        self._statement_timeout_ms = int(statement_timeout * 1000)
        self._where = self._describe(url)
        self._idle: list[psycopg.Connection[Row]] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()
        self._closed = False
        # Connect now, so a wrong URL, password or database fails where the store is opened.
        self._checkin(self._checkout())

    def _describe(self, url: str) -> str:
        try:
            parts = self._psycopg.conninfo.conninfo_to_dict(url)
        except self._psycopg.Error as exc:
            raise UsageError("SVCBOT_DB: not a valid PostgreSQL URL (postgresql://user:password@host:5432/db)") \
                from exc
        host = parts.get("host") or "localhost"
        port = parts.get("port") or "5432"
        return f"PostgreSQL at {host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"

    def describe(self) -> str:
        return self._where

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[Row]:
        """A new connection of this store's own (the pool's, or a dedicated one such as the leader's)."""
        driver = self._psycopg
        given = driver.conninfo.conninfo_to_dict(self.url)
        extra = {key: value for key, value in _CONNECT_DEFAULTS.items() if key not in given}
        try:
            connection: psycopg.Connection[Row] = driver.connect(
                self.url, autocommit=autocommit, row_factory=driver.rows.dict_row, **extra)
            connection.execute(f"SET statement_timeout = {self._statement_timeout_ms}")
            if not autocommit:
                connection.commit()
        except driver.Error as exc:
            raise BackendUnavailable(f"cannot connect to the store ({self._where}): {_cut(str(exc))}") from exc
        return connection

    def _checkout(self) -> psycopg.Connection[Row]:
        if not self._slots.acquire(timeout=self._wait):
            raise BackendUnavailable(f"the store ({self._where}) is busy: all {self.pool_size} connections "
                                     f"in use for {self._wait:.0f}s")
        with self._lock:
            if self._closed:
                self._slots.release()
                raise BackendUnavailable(f"the store ({self._where}) is closed")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            try:
                connection = self.connect()
            except BaseException:
                self._slots.release()
                raise
        return connection

    def _checkin(self, connection: psycopg.Connection[Row], *, broken: bool = False) -> None:
        """Back to the pool, or closed when it failed, is mid-transaction or the pool is closed."""
        idle = self._psycopg.pq.TransactionStatus.IDLE
        with self._lock:
            keep = not (broken or self._closed or connection.closed or connection.broken
                        or connection.info.transaction_status != idle)
            if keep:
                self._idle.append(connection)
        if not keep:
            with contextlib.suppress(Exception):
                connection.close()
        self._slots.release()

    def _begin(self, write: bool) -> psycopg.Connection[Row]:
        begin = "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        for attempt in (1, 2):
            connection = self._checkout()
            try:
                connection.execute(begin)
            except self._psycopg.Error as exc:
                self._checkin(connection, broken=True)
                # A pooled connection the server dropped (a restart, a failover): the other idle ones went
                # with it, so drop them all and try once more on a new connection.
                if attempt == 1 and isinstance(exc, self._psycopg.OperationalError):
                    self._drop_idle()
                    continue
                raise BackendUnavailable(f"the store ({self._where}) is unavailable: {_cut(str(exc))}") from exc
            return connection
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        driver = self._psycopg
        connection = self._begin(write)
        try:
            yield _PostgresTransaction(connection)
        except BaseException as exc:
            broken = False
            try:
                connection.execute("ROLLBACK")
            except driver.Error:
                broken = True
            self._checkin(connection, broken=broken)
            if isinstance(exc, driver.errors.IntegrityError):
                raise Conflict(f"the store refused the change: {_cut(str(exc))}") from exc
            if isinstance(exc, driver.Error):
                raise BackendUnavailable(f"the store ({self._where}) failed: {_cut(str(exc))}") from exc
            raise
        try:
            connection.execute("COMMIT")
        except driver.Error as exc:
            self._checkin(connection, broken=True)
            raise BackendUnavailable(f"the store ({self._where}) could not commit: {_cut(str(exc))}") from exc
        self._checkin(connection)

    def serialize(self, tx: Transaction, name: str) -> None:
        """A transaction-level advisory lock: released by COMMIT or ROLLBACK, never left behind."""
        tx.query("SELECT pg_advisory_xact_lock(?) AS locked", (advisory_key(name),))

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_idle()


# --- schema ---------------------------------------------------------------------------------------------

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: requests, runs, steps, votes, audit
    (
        """CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            service TEXT NOT NULL,
            env TEXT NOT NULL,
            version TEXT NOT NULL,
            requester TEXT NOT NULL,
            os_user TEXT NOT NULL,
            source TEXT NOT NULL,
            channel TEXT NOT NULL,
            thread_ts TEXT NOT NULL,
            state TEXT NOT NULL,
            plan TEXT NOT NULL,
            approval TEXT,
            expires_at DOUBLE PRECISION,
            reason TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX requests_by_service ON requests (service, env, created_at)",
        "CREATE INDEX requests_by_state ON requests (state)",
        """CREATE TABLE runs (
            request_id TEXT PRIMARY KEY REFERENCES requests (id),
            owner_host TEXT NOT NULL,
            owner_pid INTEGER NOT NULL,
            owner_id TEXT NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION,
            from_image TEXT NOT NULL,
            to_image TEXT NOT NULL,
            from_revision INTEGER,
            to_revision INTEGER,
            restored_revision INTEGER,
            cancel_requested_by TEXT NOT NULL,
            failure TEXT NOT NULL,
            rollback TEXT NOT NULL
        )""",
        """CREATE TABLE steps (
            request_id TEXT NOT NULL REFERENCES requests (id),
            seq INTEGER NOT NULL,
            target TEXT NOT NULL,
            kind TEXT NOT NULL,
            description TEXT NOT NULL,
            state TEXT NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            output_tail TEXT NOT NULL,
            error TEXT NOT NULL,
            PRIMARY KEY (request_id, seq)
        )""",
        """CREATE TABLE votes (
            request_id TEXT NOT NULL REFERENCES requests (id),
            approver TEXT NOT NULL,
            vote TEXT NOT NULL,
            reason TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (request_id, approver)
        )""",
        """CREATE TABLE audit (
            id {autoid},
            at DOUBLE PRECISION NOT NULL,
            request_id TEXT,
            actor TEXT NOT NULL,
            event TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT,
            detail TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_request ON audit (request_id, id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
MIGRATION_LOCK = "svcbot.store.migrate"
# Tables in the order a copy fills them (each row's foreign keys point at rows copied before it).
TABLES = ("requests", "runs", "steps", "votes", "audit")


def schema_version(database: Database) -> int:
    """The schema version a database is at (0: no svcbot store in it yet), without migrating it."""
    with database.transaction(write=False) as tx:
        try:
            rows = tx.query("SELECT version FROM schema_version")
        except Exception:  # noqa: BLE001 - "no such table" is each engine's own error type
            return 0
    return int(rows[0]["version"]) if rows else 0


def migrate(database: Database) -> int:
    """Apply the migrations this database lacks, each in its own transaction; the resulting version."""
    # Replicas starting together take turns (PostgreSQL: an advisory lock), so each migration runs once.
    with database.transaction() as tx:
        database.serialize(tx, MIGRATION_LOCK)
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = tx.query("SELECT version FROM schema_version")
        if not rows:
            tx.execute("INSERT INTO schema_version (version) VALUES (0)")
    while True:
        with database.transaction() as tx:
            database.serialize(tx, MIGRATION_LOCK)
            current = int(tx.query("SELECT version FROM schema_version")[0]["version"])
            if current > SCHEMA_VERSION:
                raise BackendUnavailable(
                    f"the store has schema version {current}, newer than this svcbot knows ({SCHEMA_VERSION}): "
                    "upgrade svcbot")
            if current == SCHEMA_VERSION:
                return current
            for statement in MIGRATIONS[current]:
                tx.execute(statement.replace("{autoid}", database.autoid))
            tx.execute("UPDATE schema_version SET version = ?", (current + 1,))
            log.info("store.migrated", version=current + 1)


# --- locating the database ------------------------------------------------------------------------------

def default_path() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "svcbot" / "svcbot.db"


def open_database(location: str | None = None) -> Database:
    """SVCBOT_DB: a file path or sqlite:///path (default under the user's data directory), or a
    postgresql:// URL (postgres:// too)."""
    location = location or os.environ.get("SVCBOT_DB") or ""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(location)
    if location.startswith("sqlite:///"):
        location = "/" + location.removeprefix("sqlite://").lstrip("/")  # sqlite:////abs and sqlite:///abs alike
    elif "://" in location:
        raise UsageError(f"SVCBOT_DB: unsupported store URL scheme in {location.split('://')[0]!r}")
    return SqliteDatabase(Path(location).expanduser() if location else default_path())


_ID = re.compile(r"^[a-z0-9]{4,32}$")


def new_id() -> str:
    """Eight lowercase hex characters: short enough to type in `/svc cancel <id>`."""
    return secrets.token_hex(4)


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) and value else None


def _tail(text: str, limit: int = OUTPUT_TAIL_LIMIT) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


# --- the store ------------------------------------------------------------------------------------------

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

    def create_request(self, new: NewRequest, *, now: float | None = None) -> RequestRecord:
        """Store a request in its first state (PENDING, or APPROVED when no approval is needed)."""
        if new.state not in (State.PENDING, State.APPROVED):
            raise ValueError(f"a request starts PENDING or APPROVED, not {new.state}")
        now = time.time() if now is None else now
        request_id = new.id or new_id()
        with self.database.transaction() as tx:
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
            return self._transition(tx, request_id, sources, to, actor=actor, reason=reason, detail=detail,
                                    unexpired=unexpired, now=now)

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

    def request(self, request_id: str) -> RequestRecord:
        rows = self._query("SELECT * FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise NotFound(f"no request {request_id!r}" + ("" if _ID.match(request_id) else
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
            return self._transition(
                tx, request_id, (State.RUNNING,), to, actor="svcbot", reason=reason, detail=detail,
                unexpired=False, now=now,
                extra_condition="id IN (SELECT request_id FROM runs WHERE request_id = ? AND owner_id = ?)",
                extra_params=(request_id, self.owner.id))

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

    def step_finished(self, request_id: str, seq: int, state: StepState, *, output: str = "", error: str = "",
                      now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.database.transaction() as tx:
            tx.execute(
                "UPDATE steps SET state = ?, finished_at = ?, output_tail = ?, error = ? "
                "WHERE request_id = ? AND seq = ?",
                (state.value, now, _tail(output), _tail(error, 1000), request_id, seq))

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
