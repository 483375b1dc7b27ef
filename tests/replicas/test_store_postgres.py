"""What only the PostgreSQL store has: placeholder translation, a connection pool that survives the server
dropping its connections, migrations that run once when replicas start together, and driver errors that
never escape as the driver's own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from postgres_support import postgres_base_url, postgres_schema
from replica_world import pending_request

from bot.clients import deadlines
from bot.core.errors import BackendUnavailable
from bot.deploys.store import SCHEMA_VERSION, PostgresDatabase, State, Store, open_database, pyformat, schema_version


@pytest.fixture(name="pg_store")
def _pg_store(pg_url: str) -> Iterator[Store]:
    store = Store.open(pg_url)
    yield store
    store.close()


def test_placeholders_become_pyformat_outside_quotes() -> None:
    """`?` becomes %s and a literal % is doubled, but text inside quotes is left as it is."""
    assert pyformat("SELECT * FROM t WHERE a = ? AND b LIKE 'x?%' AND \"we?ird\" = ?") == (
        "SELECT * FROM t WHERE a = %s AND b LIKE 'x?%' AND \"we?ird\" = %s")
    assert pyformat("SELECT 5 % 2, 'it''s ?'") == "SELECT 5 %% 2, 'it''s ?'"


def test_replicas_starting_together_migrate_once() -> None:
    """Four processes' stores opening one empty schema at once: every one opens, the schema is built once."""
    with postgres_schema() as url:
        opened: list[Store] = []
        failures: list[BaseException] = []
        barrier = threading.Barrier(4)

        def open_store() -> None:
            barrier.wait()
            try:
                opened.append(Store.open(url))
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert schema_version(opened[0].database) == SCHEMA_VERSION
        for store in opened:
            store.close()


def test_connections_the_server_dropped_are_replaced(pg_store: Store) -> None:
    """After PostgreSQL ends every pooled session (a restart, a failover), the next call works on new ones."""
    request_id = pending_request(pg_store)
    with (pg_store.database.transaction(write=False), pg_store.database.transaction(write=False),
          pg_store.database.transaction(write=False)):
        pass  # three idle connections in the pool now
    import psycopg  # noqa: PLC0415 - present whenever pg_store is (else the test was skipped)

    with psycopg.connect(postgres_base_url(), autocommit=True) as admin:
        ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                              "'svcbot' AND datname = current_database()").fetchall()
    assert len(ended) >= 3
    assert pg_store.request(request_id).state is State.PENDING
    assert pg_store.transition(request_id, State.APPROVED, actor="U0CAROL")


def test_a_full_pool_waits_then_says_busy(pg_url: str) -> None:
    """With every pooled connection in a transaction, another caller waits its turn, then gets BackendUnavailable."""
    database = open_database(pg_url)
    assert isinstance(database, PostgresDatabase)
    small = PostgresDatabase(database.url, pool_size=1, wait=0.2)
    database.close()
    with small.transaction(write=False), pytest.raises(BackendUnavailable, match="busy"), small.transaction():
        pass
    with small.transaction(write=False) as tx:
        assert tx.query("SELECT 1 AS one") == [{"one": 1}]
    small.close()


def test_waits_end_by_the_command_deadline(pg_url: str) -> None:
    """Inside a command (issue 17): the wait for a pooled connection and each statement end by the command's
    deadline, not after the pool's wait or the 30 s statement_timeout; outside, the statement_timeout is whole."""
    database = open_database(pg_url)
    assert isinstance(database, PostgresDatabase)
    small = PostgresDatabase(database.url, pool_size=1, wait=30.0)
    database.close()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="failed"), \
            deadlines.command_deadline(time.monotonic() + 0.5), small.transaction(write=False) as tx:
        tx.query("SELECT pg_sleep(10) AS slept")
    assert time.monotonic() - started < 3.0
    started = time.monotonic()
    with small.transaction(write=False), pytest.raises(BackendUnavailable, match="busy"), \
            deadlines.command_deadline(time.monotonic() + 0.5), small.transaction():
        pass
    assert time.monotonic() - started < 3.0
    with small.transaction(write=False) as tx:
        assert tx.query("SHOW statement_timeout") == [{"statement_timeout": "30s"}]
    small.close()


def test_driver_errors_come_out_as_the_projects_errors(pg_store: Store) -> None:
    """Bad SQL inside a transaction is BackendUnavailable (no psycopg exception escapes), and the
    connection goes back to the pool usable."""
    with pytest.raises(BackendUnavailable, match="failed"), pg_store.database.transaction() as tx:
        tx.query("SELECT no_such_column FROM requests")
    assert pg_store.requests() == []


def test_a_read_sees_one_snapshot(pg_store: Store) -> None:
    """A reading transaction does not see a request committed after it began (REPEATABLE READ)."""
    with pg_store.database.transaction(write=False) as tx:
        before = tx.query("SELECT COUNT(*) AS n FROM requests")[0]["n"]
        pending_request(pg_store)
        assert tx.query("SELECT COUNT(*) AS n FROM requests")[0]["n"] == before
    assert len(pg_store.requests()) == before + 1
