"""The store: schema and migrations, transitions that succeed once, votes, heartbeats and recovery, and the
PostgreSQL store's connections (a pool of at most `pool_size`, plus the leader's own).

Every test that takes `store_url` runs twice: on SQLite and on PostgreSQL (SVCBOT_TEST_DATABASE_URL, one
fresh schema per test; without it those runs are skipped with the reason, and fail under CI=true).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_fakes import FAST
from postgres_support import postgres_base_url, postgres_schema

from bot.core.errors import BackendUnavailable, Conflict, NotFound
from bot.deploys.store import (
    SCHEMA_VERSION,
    NewRequest,
    Owner,
    PostgresDatabase,
    State,
    StepSpec,
    StepState,
    Store,
    default_path,
    open_database,
)


@pytest.fixture(name="store_url", params=["sqlite", "postgresql"])
def _store_url(request: pytest.FixtureRequest, db_path: Path) -> Iterator[str]:
    """Where the test's store lives: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(db_path)
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(name="store")
def _store(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url, stale_after=FAST.stale_after)
    yield store
    store.close()


def _request(store: Store, state: State = State.APPROVED, **extra: object) -> str:
    new = NewRequest(kind="deploy", service="payment", env="staging", version="1.4.2", requester="U0ALICE",
                     plan={"action": "deploy", "steps": []}, state=state, **extra)  # type: ignore[arg-type]
    return store.create_request(new).id


STEPS = [StepSpec("deploy", "set_image", "set image"), StepSpec("deploy", "wait_rollout", "wait")]


class TestSchema:
    def test_migrations_create_every_table_in_wal_mode(self, db_path: Path) -> None:
        """A new SQLite store is at the latest schema version, in WAL mode, with the five tables."""
        Store.open(str(db_path)).close()
        connection = sqlite3.connect(db_path)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"requests", "runs", "steps", "votes", "audit", "schema_version"} <= tables
        assert connection.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        connection.close()

    def test_reopening_keeps_data_and_does_not_migrate_twice(self, store_url: str, store: Store) -> None:
        """A second open of the same store sees the first one's requests."""
        request_id = _request(store)
        other = Store.open(store_url)
        assert other.request(request_id).state is State.APPROVED
        other.close()

    def test_default_location_is_under_the_data_directory(self, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
        """Without SVCBOT_DB the store lives under $XDG_DATA_HOME/svcbot."""
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        assert default_path() == tmp_path / "data" / "svcbot" / "svcbot.db"

    def test_sqlite_url_and_unreachable_postgres(self, tmp_path: Path) -> None:
        """sqlite:/// URLs work; a PostgreSQL nobody listens for is BackendUnavailable naming where, no password."""
        database = open_database(f"sqlite:///{tmp_path}/x.db")
        database.close()
        assert (tmp_path / "x.db").exists()
        with pytest.raises(BackendUnavailable, match="PostgreSQL") as raised:
            open_database("postgresql://svcbot:hunter2@127.0.0.1:1/svcbot?connect_timeout=2")
        assert "hunter2" not in raised.value.message


class TestTransitions:
    def test_transition_succeeds_once_among_many_threads(self, store: Store) -> None:
        """Twenty threads approving one PENDING request: exactly one wins, and one audit event says so."""
        request_id = _request(store, State.PENDING)
        results: list[bool] = []
        barrier = threading.Barrier(20)

        def approve(index: int) -> None:
            barrier.wait()
            results.append(store.transition(request_id, State.APPROVED, actor=f"U{index:04d}"))

        threads = [threading.Thread(target=approve, args=(index,)) for index in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results.count(True) == 1
        assert [event.event for event in store.audit(request_id)].count("request.approved") == 1

    def test_two_stores_on_one_database_claim_a_run_once(self, store_url: str, store: Store) -> None:
        """Two processes' stores racing to start the same approved request: one claim wins."""
        request_id = _request(store)
        other = Store.open(store_url)
        claims = [store.claim_run(request_id, STEPS, actor="a"), other.claim_run(request_id, STEPS, actor="b")]
        other.close()
        assert sorted(claims) == [False, True]

    def test_illegal_transitions_are_refused(self, store: Store) -> None:
        """A finished run cannot be approved again; SUCCEEDED is reachable only from RUNNING."""
        request_id = _request(store, State.PENDING)
        assert store.transition(request_id, State.REJECTED, actor="U0CAROL", reason="not today")
        assert not store.transition(request_id, State.APPROVED, actor="U0CAROL")
        with pytest.raises(ValueError, match="no transition"):
            store.transition(request_id, State.SUCCEEDED, actor="x", expected=[State.PENDING])
        assert store.request(request_id).reason == "not today"

    def test_expiry_is_checked_inside_the_update(self, store: Store) -> None:
        """An approval after expires_at fails even though no sweep marked the request EXPIRED."""
        request_id = _request(store, State.PENDING, expires_at=time.time() - 1)
        assert not store.transition(request_id, State.APPROVED, actor="U0CAROL", unexpired=True)
        assert store.transition(request_id, State.EXPIRED, actor="svcbot")

    def test_expiry_sweep_expires_overdue_requests_once(self, store: Store) -> None:
        """The sweep expires PENDING requests past their deadline, once; approved and future ones stay."""
        overdue = _request(store, State.PENDING, expires_at=time.time() - 5)
        approved = _request(store, State.PENDING, expires_at=time.time() - 5)
        future = _request(store, State.PENDING, expires_at=time.time() + 600)
        assert store.transition(approved, State.APPROVED, actor="U0CAROL")
        assert [request.id for request in store.expire_overdue()] == [overdue]
        assert store.expire_overdue() == []
        assert store.request(overdue).state is State.EXPIRED
        assert store.request(future).state is State.PENDING
        assert [event.event for event in store.audit(overdue)].count("request.expired") == 1

    def test_a_duplicate_id_is_a_conflict(self, store: Store) -> None:
        """A constraint refusing a write comes out as Conflict on both engines, never the driver's error."""
        request_id = _request(store, id="dup12345")
        with pytest.raises(Conflict, match="refused"):
            _request(store, id=request_id)

    def test_votes_are_unique_per_approver(self, store: Store) -> None:
        """A second vote by the same approver is refused by the constraint; other approvers count."""
        request_id = _request(store, State.PENDING)
        assert store.add_vote(request_id, "U0CAROL", "approve")
        assert not store.add_vote(request_id, "U0CAROL", "approve")
        assert store.add_vote(request_id, "U0DAVE", "reject", "too late in the day")
        assert [(vote.approver, vote.vote) for vote in store.votes(request_id)] == [
            ("U0CAROL", "approve"), ("U0DAVE", "reject")]

    def test_unknown_request_is_not_found(self, store: Store) -> None:
        """Asking for an id nobody created is a NotFound with the id in the message."""
        with pytest.raises(NotFound, match="abcd1234"):
            store.request("abcd1234")


class TestRuns:
    def test_claim_records_owner_steps_and_audit(self, store: Store) -> None:
        """Claiming makes the request RUNNING, owned by this process, with every step PENDING."""
        request_id = _request(store)
        assert store.claim_run(request_id, STEPS, actor="U0ALICE", to_image="pay:2")
        snapshot = store.snapshot(request_id)
        assert snapshot.state is State.RUNNING
        assert snapshot.run is not None
        assert snapshot.run.owner == store.owner
        assert [step.state for step in snapshot.steps] == [StepState.PENDING, StepState.PENDING]
        assert [event.event for event in store.audit(request_id)] == ["request.created", "request.running"]

    def test_stale_run_is_interrupted_by_the_next_process_and_live_runs_are_not(self, store_url: str,
                                                                                store: Store) -> None:
        """A run whose heartbeat stopped is INTERRUPTED on open; a heartbeating one is left alone."""
        dead = Store.open(store_url, owner=Owner("old-host", 4242, "dead-process"))
        stale_id, live_id = _request(dead), _request(store)
        assert dead.claim_run(stale_id, STEPS, actor="U0ALICE", now=time.time() - 60)
        dead.step_started(stale_id, 0)
        assert store.claim_run(live_id, STEPS, actor="U0ALICE")
        dead.close()
        assert store.heartbeat(live_id) == ""
        newcomer = Store.open(store_url, stale_after=5.0)
        assert [snapshot.id for snapshot in newcomer.interrupted_on_open] == [stale_id]
        interrupted = newcomer.snapshot(stale_id)
        assert interrupted.state is State.INTERRUPTED
        assert "old-host/4242" in interrupted.request.reason
        assert [step.state for step in interrupted.steps] == [StepState.INTERRUPTED, StepState.SKIPPED]
        assert newcomer.request(live_id).state is State.RUNNING
        newcomer.close()

    def test_a_process_never_interrupts_its_own_runs(self, store: Store) -> None:
        """Even with an old heartbeat, the owning process's recovery pass leaves its run alone."""
        request_id = _request(store)
        store.claim_run(request_id, STEPS, actor="U0ALICE", now=time.time() - 600)
        assert store.interrupt_stale() == []
        assert store.request(request_id).state is State.RUNNING

    def test_an_interrupted_run_cannot_be_finished_by_its_old_owner(self, store_url: str, store: Store) -> None:
        """After another process marked it INTERRUPTED, the owner's finish and heartbeat are refused."""
        request_id = _request(store)
        store.claim_run(request_id, STEPS, actor="U0ALICE", now=time.time() - 60)
        other = Store.open(store_url, stale_after=5.0)
        other.close()
        assert store.heartbeat(request_id) is None
        assert not store.finish_run(request_id, State.SUCCEEDED)
        assert store.request(request_id).state is State.INTERRUPTED

    def test_cancel_is_asked_once_and_seen_by_the_heartbeat(self, store: Store) -> None:
        """request_cancel flags a RUNNING run for its owner; a second ask or a finished run says no."""
        request_id = _request(store)
        store.claim_run(request_id, STEPS, actor="U0ALICE")
        assert store.request_cancel(request_id, "U0BOB")
        assert not store.request_cancel(request_id, "U0ALICE")
        assert store.heartbeat(request_id) == "U0BOB"
        assert store.finish_run(request_id, State.CANCELLED, reason="cancelled by U0BOB")
        assert store.run(request_id).finished_at is not None  # type: ignore[union-attr]

    def test_steps_keep_their_output_tail(self, store: Store) -> None:
        """A step's long output is cut to its tail; the error is kept."""
        request_id = _request(store)
        store.claim_run(request_id, STEPS, actor="U0ALICE")
        store.step_started(request_id, 0)
        store.step_finished(request_id, 0, StepState.FAILED, output="x" * 10_000 + "the end", error="boom")
        step = store.steps(request_id)[0]
        assert step.output_tail.endswith("the end")
        assert len(step.output_tail) <= 4000
        assert step.error == "boom"
        assert step.duration is not None


@pytest.fixture(name="pg_app")
def _pg_app() -> Iterator[tuple[str, str]]:
    """A store URL on a fresh PostgreSQL schema whose connections carry an application_name of their own."""
    name = f"svcbot-test-{secrets.token_hex(4)}"
    with postgres_schema() as url:
        yield f"{url}&application_name={name}", name


def _sessions(name: str) -> int:
    """How many server sessions carry this application_name now."""
    import psycopg  # noqa: PLC0415 - present whenever pg_app is (else the test was skipped)

    with psycopg.connect(postgres_base_url(), autocommit=True) as admin:
        row = admin.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


class TestPostgresConnections:
    def test_the_pool_stays_within_pool_size_and_the_leaders_connection_is_extra(
            self, pg_app: tuple[str, str]) -> None:
        """Eight threads in slow transactions on a pool of three: never more than three pooled sessions,
        plus one dedicated connection (the leader's) outside the pool."""
        url, name = pg_app
        database = PostgresDatabase(url, pool_size=3)
        leader = database.connect()
        seen: list[int] = []
        barrier = threading.Barrier(8)

        def work() -> None:
            barrier.wait()
            for _ in range(4):
                with database.transaction(write=False) as tx:
                    rows = tx.query("SELECT COUNT(*) AS n FROM pg_stat_activity, pg_sleep(0.02) "
                                    "WHERE application_name = ?", (name,))
                    seen.append(int(rows[0]["n"]))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 32
        assert max(seen) <= 3 + 1
        database.close()
        assert _sessions(name) == 1  # the pool's are gone; the dedicated one is the caller's to close
        leader.close()

    def test_every_connection_gets_the_statement_timeout(self, pg_app: tuple[str, str]) -> None:
        """Pooled connections and a dedicated one run with the store's statement_timeout."""
        url, _ = pg_app
        database = PostgresDatabase(url, statement_timeout=7.0)
        with database.transaction(write=False) as tx:
            assert tx.query("SHOW statement_timeout") == [{"statement_timeout": "7s"}]
        dedicated = database.connect()
        row = dedicated.execute("SHOW statement_timeout").fetchone()
        assert row == {"statement_timeout": "7s"}
        dedicated.close()
        database.close()

    def test_a_server_that_refuses_connections_is_not_called_busy(self, pg_app: tuple[str, str]) -> None:
        """When the pool cannot open a connection in time, the error says why (not "busy")."""
        url, name = pg_app
        database = PostgresDatabase(url, pool_size=1, wait=0.5)
        import psycopg  # noqa: PLC0415 - present whenever pg_app is

        with psycopg.connect(postgres_base_url(), autocommit=True) as admin:
            row = admin.execute("SELECT current_database()").fetchone()
            assert row is not None
            quoted = '"' + str(row[0]).replace('"', '""') + '"'
            # The server refuses new connections to the database and ends the one the pool holds.
            admin.execute(f"ALTER DATABASE {quoted} CONNECTION LIMIT 0")
            try:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                              (name,))
                with (pytest.raises(BackendUnavailable, match="cannot connect to the store") as raised,
                      database.transaction(write=False)):
                    pass
            finally:
                admin.execute(f"ALTER DATABASE {quoted} CONNECTION LIMIT -1")
        assert "busy" not in raised.value.message
        assert "svcbot-ci" not in raised.value.message  # the URL's password
        database.close()

    def test_a_closed_store_says_so(self, pg_app: tuple[str, str]) -> None:
        """After close, a transaction is BackendUnavailable ("closed"), never a driver or pool exception."""
        database = PostgresDatabase(pg_app[0])
        database.close()
        with pytest.raises(BackendUnavailable, match="closed"), database.transaction():
            pass
