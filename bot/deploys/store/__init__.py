"""Persistence of deploy requests, runs, steps, votes and audit events.

Two engines behind one small seam (`Database`, database.py), chosen by SVCBOT_DB (location.py):
- SQLite in WAL mode at a file path or `sqlite:///path` (default: $XDG_DATA_HOME/svcbot/svcbot.db, i.e.
  ~/.local/share/svcbot/svcbot.db): one process writes at a time; one replica (sqlite.py).
- PostgreSQL at a `postgresql://user:password@host:5432/db` URL (psycopg 3, a psycopg_pool connection pool):
  several replicas share it (postgres.py).

The SQL is portable (PostgreSQL and SQLite both accept it: `?` placeholders are rewritten by the
PostgreSQL adapter, `ON CONFLICT DO NOTHING`, `UPDATE ... RETURNING`, `DOUBLE PRECISION` epoch seconds, no
engine-only functions); the same versioned migrations (migrations.py) build the same schema on both, on open.

State machine (DESIGN.md; records.py): PENDING -> APPROVED -> RUNNING -> SUCCEEDED | FAILED | ROLLED_BACK |
INTERRUPTED | CANCELLED; PENDING -> REJECTED | EXPIRED | CANCELLED (and APPROVED -> CANCELLED, for an
approved request that never started). Every transition (store.py) is one conditional UPDATE (`WHERE state IN
(...) RETURNING id`) plus its audit event in one transaction: it succeeds exactly once however many
threads, processes or replicas try. On SQLite a writing transaction holds the database's write lock; on
PostgreSQL the request's row is locked first (`FOR NO KEY UPDATE`), so the state it left is read exactly
and a concurrent transition waits, then finds the state moved on and changes nothing.

Runs: a RUNNING request has a `runs` row naming its owner (host, pid and a per-process id) and a
heartbeat. `interrupt_stale` marks runs whose heartbeat is stale INTERRUPTED (the check is inside the
UPDATE, so a heartbeat that lands in between wins); a live run is never touched. A process does it when
it opens the store, and the replica doing background work does it periodically (bot/deploys/background.py).
"""

from bot.deploys.store.database import Database, Transaction
from bot.deploys.store.location import default_path, open_database
from bot.deploys.store.migrations import SCHEMA_VERSION, TABLES, migrate, schema_version
from bot.deploys.store.postgres import PostgresDatabase, advisory_key, pyformat
from bot.deploys.store.records import (
    BAD_ENDINGS,
    FINAL,
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
from bot.deploys.store.replays import REPLAY_WINDOW, first_sight, forget_expired
from bot.deploys.store.store import LINE, OUTCOME, Store

__all__ = [
    "BAD_ENDINGS",
    "FINAL",
    "LINE",
    "OUTCOME",
    "REPLAY_WINDOW",
    "SCHEMA_VERSION",
    "TABLES",
    "Database",
    "NewRequest",
    "OutboxItem",
    "Owner",
    "PostgresDatabase",
    "RequestRecord",
    "RunRecord",
    "Snapshot",
    "State",
    "StepRecord",
    "StepSpec",
    "StepState",
    "Store",
    "Transaction",
    "Vote",
    "advisory_key",
    "default_path",
    "first_sight",
    "forget_expired",
    "migrate",
    "new_id",
    "open_database",
    "pyformat",
    "schema_version",
]
