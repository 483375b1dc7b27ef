"""`svcbot db`: the store's schema and moving a store from one engine to another.

    svcbot db upgrade [--db URL]          apply the migrations this svcbot knows (default: SVCBOT_DB)
    svcbot db copy --from SRC --to DST    copy every request, run, step, vote and audit event into an
                                          empty store, e.g. --from sqlite:////data/svcbot.db
                                          --to postgresql://svcbot@db:5432/svcbot

A store is named like SVCBOT_DB: a SQLite path or sqlite:///path, or a postgresql:// URL. Messages name
the store by engine, host and database, never with its password.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.core.errors import BotError, UsageError
from bot.deploys.store import SCHEMA_VERSION, TABLES, Database, Transaction, migrate, open_database, schema_version

BATCH = 200  # rows per INSERT statement when copying
# The order rows are read in, so a copy keeps ids and sequence numbers in the same order.
_ORDER = {"requests": "created_at, id", "runs": "request_id", "steps": "request_id, seq",
          "votes": "request_id, approver", "audit": "id", "outbox": "id", "watches": "channel, service, env",
          "incidents": "opened_at, id", "incident_posts": "incident_id, channel", "incident_lines": "id",
          "incident_pending": "service, env, kind"}


def add_parser(sub: Any) -> None:
    """The `db` subcommand, on the top-level parser's subparsers."""
    db = sub.add_parser("db", help="the store: apply migrations (upgrade), move it to another engine (copy)")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply the store's migrations (svcbot also does on start)")
    upgrade.add_argument("--db", help="the store: a SQLite path, sqlite:///path or postgresql://... "
                                      "(default: $SVCBOT_DB)")
    copy = actions.add_parser("copy", help="copy a store into an empty one, e.g. SQLite -> PostgreSQL")
    copy.add_argument("--from", dest="source", required=True, help="the store to read (left unchanged)")
    copy.add_argument("--to", dest="target", required=True, help="an empty store to fill (migrated first)")


def main(args: argparse.Namespace) -> int:
    """Exit 0 done, 1 a usage problem (a non-empty target, an old source), 2 a store that is unavailable."""
    try:
        if args.db_command == "upgrade":
            print(upgrade(args.db))
        else:
            print(copy(args.source, args.target))
    except UsageError:
        raise  # the CLI prints it and exits 1
    except BotError as exc:
        print(f"svcbot: {exc.message}", file=sys.stderr)
        return 2
    return 0


def upgrade(location: str | None) -> str:
    database = open_database(location)
    try:
        before = schema_version(database)
        after = migrate(database)
    finally:
        database.close()
    if before == after:
        return f"{database.describe()}: schema version {after}, up to date"
    return f"{database.describe()}: schema version {before} -> {after}"


def copy(source_location: str, target_location: str) -> str:
    """Copy one store into another, in one read snapshot and one write transaction (all or nothing)."""
    source = open_database(source_location)
    try:
        target = open_database(target_location)
        try:
            counts = copy_database(source, target)
        finally:
            target.close()
    finally:
        source.close()
    copied = ", ".join(f"{count} {table}" for table, count in counts.items())
    return f"copied {copied} from {source.describe()} to {target.describe()}"


def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Every table's rows from `source` into the empty `target`; the number of rows per table."""
    version = schema_version(source)
    if version < SCHEMA_VERSION:
        raise UsageError(f"{source.describe()} is at schema version {version}, this svcbot writes {SCHEMA_VERSION}: "
                         "run `svcbot db upgrade --db <the source>` first (or copy with the svcbot that wrote it)")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{source.describe()} is at schema version {version}, newer than this svcbot knows "
                         f"({SCHEMA_VERSION}): copy with a newer svcbot")
    migrate(target)
    with target.transaction(write=False) as tx:
        present = {table: int(tx.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])  # noqa: S608 - fixed names
                   for table in TABLES}
    if any(present.values()):
        held = ", ".join(f"{count} {table}" for table, count in present.items() if count)
        raise UsageError(f"{target.describe()} already holds {held}: copy only into an empty store")
    with source.transaction(write=False) as tx:
        rows = {table: tx.query(f"SELECT * FROM {table} ORDER BY {_ORDER[table]}")  # noqa: S608 - fixed names
                for table in TABLES}
    with target.transaction() as tx:
        for table in TABLES:
            _insert(tx, table, rows[table])
        if target.dialect == "postgresql":
            # Audit and outbox ids were copied as they were: move their identities on past them.
            for table in ("audit", "outbox", "incident_lines"):
                tx.query(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                         f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false) AS next")
    with target.transaction(write=False) as tx:
        copied = {table: int(tx.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])  # noqa: S608 - fixed names
                  for table in TABLES}
    expected = {table: len(found) for table, found in rows.items()}
    if copied != expected:
        raise UsageError(f"the copy does not add up: read {expected}, the target holds {copied}")
    return copied


def _insert(tx: Transaction, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    row_marks = "(" + ", ".join("?" for _ in columns) + ")"
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608 - names from our own schema
               + ", ".join(row_marks for _ in batch))
        tx.execute(sql, [row[column] for row in batch for column in columns])
