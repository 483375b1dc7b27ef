"""Calls that do not take the deadline as an argument end by the running command's deadline too (issue 17):
Slack user-group lookups (asked by the policy inside a command) and the store's waits (SQLite's lock and
another process's write lock). So a Slack command runs on its worker thread with no hand-off to another
thread (issue 22): nothing it calls can hold its answer past the deadline."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from front_door_servers import DripServer

from bot.clients import deadlines
from bot.core.errors import BackendUnavailable, DeadlineExceeded
from bot.deploys.store.sqlite import SqliteDatabase
from bot.slack.webapi import SlackPoster, make_web_client

DEADLINE = 0.5  # seconds left to the command
MARGIN = 1.0


def test_usergroup_lookup_ends_by_the_command_deadline(drip: DripServer) -> None:
    """Outside a command the lookup may take its 20 s; inside one, it ends by the command's deadline and
    Slack that cannot say means nobody."""
    poster = SlackPoster(make_web_client("xoxb-test", drip.url + "/api/"), call_deadline=20.0)
    started = time.monotonic()
    with deadlines.command_deadline(time.monotonic() + DEADLINE):
        members = poster.usergroup_members("S0SRE")
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert members == frozenset()


def test_sqlite_write_lock_wait_ends_by_the_command_deadline(tmp_path: Path) -> None:
    """Another process holds the write lock: a command's transaction gives up at its deadline, not after the
    10 s busy timeout, and the busy timeout is whole again for the next transaction."""
    database = SqliteDatabase(tmp_path / "store.db", busy_timeout=10.0)
    with database.transaction() as tx:
        tx.execute("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(str(tmp_path / "store.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="locked"), \
                deadlines.command_deadline(time.monotonic() + DEADLINE), database.transaction() as tx:
            tx.execute("INSERT INTO t VALUES (1)")
        assert time.monotonic() - started < DEADLINE + MARGIN
    finally:
        other.execute("ROLLBACK")
        other.close()
    with database.transaction() as tx:  # nothing left behind: the lock is free and the table unchanged
        assert tx.query("SELECT COUNT(*) AS n FROM t") == [{"n": 0}]
        assert tx.query("PRAGMA busy_timeout") == [{"timeout": 10000}]
    database.close()


def test_sqlite_lock_held_in_this_process_ends_by_the_command_deadline(tmp_path: Path) -> None:
    """A transaction of this process holds the store (another thread): a command waits for it only until its
    deadline; with no time left it does not start at all."""
    database = SqliteDatabase(tmp_path / "store.db")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with database.transaction():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(10)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="busy"), \
                deadlines.command_deadline(time.monotonic() + DEADLINE), database.transaction():
            pass
        assert time.monotonic() - started < DEADLINE + MARGIN
        with pytest.raises(DeadlineExceeded), deadlines.command_deadline(time.monotonic() - 1), \
                database.transaction():
            pass
    finally:
        release.set()
        holder.join(10)
    database.close()
