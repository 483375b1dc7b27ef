"""The one small seam between the store and a storage engine (SQLite in sqlite.py, PostgreSQL in postgres.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

Row = dict[str, Any]


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


def cut(text: str, limit: int = 256) -> str:
    """An engine's error message on one line, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
