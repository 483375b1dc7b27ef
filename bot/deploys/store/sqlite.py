"""SQLite behind the `Database` seam: one connection per process, serialised by a lock, in WAL mode."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from bot.clients import deadlines
from bot.core.errors import BackendUnavailable, Conflict, DeadlineExceeded
from bot.deploys.store.database import Row, Transaction, cut


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
        self.busy_timeout = busy_timeout
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
        # Inside a command, the waits (this process's lock, another process's write lock) end by the
        # command's deadline, not after the whole busy timeout (bot/clients/deadlines.py `remaining`).
        if not self._lock.acquire(timeout=self._wait("lock") if deadlines.command_deadline_set() else -1):
            raise BackendUnavailable(f"the store at {self.path} is busy: another command held it until this "
                                     "one's deadline")
        try:
            self._begin(write)
            try:
                yield _SqliteTransaction(self._connection)
            except BaseException as exc:
                self._connection.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise Conflict(f"the store refused the change: {cut(str(exc))}") from exc
                if isinstance(exc, sqlite3.Error):
                    raise BackendUnavailable(f"the store at {self.path} failed: {cut(str(exc))}") from exc
                raise
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"the store at {self.path} could not commit: {exc}") from exc
        finally:
            self._lock.release()

    def _wait(self, what: str) -> float:
        wait = deadlines.remaining(self.busy_timeout)
        if wait <= 0:
            raise DeadlineExceeded(f"no time left to wait for the store's {what}")
        return wait

    def _begin(self, write: bool) -> None:
        """BEGIN, waiting for another process's write lock at most the busy timeout or until the deadline."""
        wait = self._wait("write lock")
        shortened = wait < self.busy_timeout
        try:
            if shortened:
                self._connection.execute(f"PRAGMA busy_timeout = {max(1, int(wait * 1000))}")
            self._connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"the store at {self.path} is unavailable: {exc}") from exc
        finally:
            if shortened:
                self._connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

    def serialize(self, tx: Transaction, name: str) -> None:
        """Nothing to do: a writing transaction holds the database's write lock already."""

    def describe(self) -> str:
        return f"SQLite at {self.path}"

    def close(self) -> None:
        with self._lock:
            self._connection.close()
