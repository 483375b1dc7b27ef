"""The schema: versioned migrations that build the same tables on SQLite and PostgreSQL, applied on open."""

from __future__ import annotations

import structlog

from bot.core.errors import BackendUnavailable
from bot.deploys.store.database import Database

log = structlog.get_logger("svcbot.store")

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
    # 2: signed Slack requests already seen (replays.py): a replay inside Slack's 5-minute window is refused
    (
        """CREATE TABLE seen_requests (
            signature TEXT PRIMARY KEY,
            seen_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX seen_requests_by_time ON seen_requests (seen_at)",
    ),
    # 3: what a request's Slack thread is still owed (outbox.py): progress lines, and its message updated with
    # the outcome, written with what they report and sent by whichever process is alive
    (
        """CREATE TABLE outbox (
            id {autoid},
            request_id TEXT NOT NULL REFERENCES requests (id),
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            writer TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            sent_at DOUBLE PRECISION
        )""",
        "CREATE INDEX outbox_unsent ON outbox (sent_at, request_id, id)",
    ),
    # 4: /svc watch (bot/watch/): channels' subscriptions, incidents (one open per service, environment and
    # kind: the partial unique index), each incident's message per channel and what it still owes Slack
    # (incident_posts: posted? shown version? thread lines sent?), and the lines of its thread
    (
        """CREATE TABLE watches (
            channel TEXT NOT NULL,
            service TEXT NOT NULL,
            env TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, service, env)
        )""",
        """CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            env TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            facts TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            opened_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            resolved_at DOUBLE PRECISION,
            silenced_until DOUBLE PRECISION,
            silenced_by TEXT NOT NULL,
            reopened INTEGER NOT NULL,
            version INTEGER NOT NULL
        )""",
        "CREATE UNIQUE INDEX incidents_open ON incidents (service, env, kind) WHERE state = 'open'",
        "CREATE INDEX incidents_by_key ON incidents (service, env, kind, opened_at)",
        """CREATE TABLE incident_posts (
            incident_id TEXT NOT NULL REFERENCES incidents (id),
            channel TEXT NOT NULL,
            ts TEXT NOT NULL,
            shown_version INTEGER NOT NULL,
            last_line INTEGER NOT NULL,
            shown_at DOUBLE PRECISION,
            PRIMARY KEY (incident_id, channel)
        )""",
        """CREATE TABLE incident_lines (
            id {autoid},
            incident_id TEXT NOT NULL REFERENCES incidents (id),
            text TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX incident_lines_by_incident ON incident_lines (incident_id, id)",
    ),
    # 5: /svc watch: trouble seen and not announced yet (it waits `watch.group_wait`), so that a new leader
    # goes on waiting from when it was first seen instead of starting the wait again
    (
        """CREATE TABLE incident_pending (
            service TEXT NOT NULL,
            env TEXT NOT NULL,
            kind TEXT NOT NULL,
            first_seen DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (service, env, kind)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
MIGRATION_LOCK = "svcbot.store.migrate"
# Tables in the order a copy fills them (each row's foreign keys point at rows copied before it).
TABLES = ("requests", "runs", "steps", "votes", "audit", "outbox", "watches", "incidents", "incident_posts",
          "incident_lines", "incident_pending")


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
