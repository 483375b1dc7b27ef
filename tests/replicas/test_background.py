"""BackgroundWork in one process: jobs run only while leading, each at its own pace, a failing job never
stops the others; advisory-lock leadership is one holder per store, and is lost with its connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_support import postgres_schema
from replica_world import pending_request

from bot.core.errors import BackendUnavailable
from bot.deploys.background import (
    AdvisoryLockLeader,
    BackgroundWork,
    Job,
    SoleLeader,
    expiry_job,
    leadership_for,
    recovery_job,
)
from bot.deploys.store import Owner, PostgresDatabase, State, StepSpec, Store


@pytest.fixture(name="sqlite_store")
def _sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(str(tmp_path / "svcbot.db"), stale_after=1.0)
    yield store
    store.close()


@pytest.fixture(name="pg_store")
def _pg_store() -> Iterator[Store]:
    with postgres_schema() as url:
        store = Store.open(url, stale_after=1.0)
        yield store
        store.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestLoop:
    def test_sqlite_store_leads_alone_and_runs_every_job(self, sqlite_store: Store) -> None:
        """On SQLite the process leads (one replica) and a tick runs each job once."""
        ran: list[str] = []
        work = BackgroundWork(lambda: sqlite_store, [Job("a", lambda _s: ran.append("a") or 0),
                                                     Job("b", lambda _s: ran.append("b") or 0)])
        assert work.tick()
        assert isinstance(work.leadership, SoleLeader)
        assert ran == ["a", "b"]

    def test_each_job_runs_at_its_own_pace(self, sqlite_store: Store) -> None:
        """A job with `every` waits that long between runs; one without runs each tick."""
        clock = Clock()
        work = BackgroundWork(lambda: sqlite_store, [Job("often", lambda _s: 0), Job("rarely", lambda _s: 0, every=30)],
                              interval=5, clock=clock)
        for _ in range(4):
            work.tick()
            clock.now += 5
        assert work.runs == {"often": 4, "rarely": 1}
        clock.now += 30
        work.tick()
        assert work.runs == {"often": 5, "rarely": 2}

    def test_a_failing_job_does_not_stop_the_others(self, sqlite_store: Store) -> None:
        """A job raising (a backend error or a bug) is logged; the next job still runs, and the next tick too."""
        def broken(_store: Store) -> int:
            raise BackendUnavailable("cluster prod is unreachable")

        def buggy(_store: Store) -> int:
            raise KeyError("oops")

        work = BackgroundWork(lambda: sqlite_store, [Job("broken", broken), Job("buggy", buggy),
                                                     Job("fine", lambda _s: 1)])
        assert work.tick()
        assert work.runs == {"broken": 0, "buggy": 0, "fine": 1}

    def test_an_unavailable_store_means_no_lead_and_no_crash(self) -> None:
        """A store that cannot be opened yet: the tick reports not leading and the jobs wait."""
        def no_store() -> Store:
            raise BackendUnavailable("the store (PostgreSQL at db:5432/svcbot) is unavailable")

        work = BackgroundWork(no_store, [Job("a", lambda _s: 0)])
        assert not work.tick()
        assert work.runs == {"a": 0}

    def test_start_and_stop_run_the_loop_on_a_thread(self, sqlite_store: Store) -> None:
        """start() ticks every interval on its own thread; stop() ends it and gives the lead up."""
        before = set(threading.enumerate())
        work = BackgroundWork(lambda: sqlite_store, [Job("a", lambda _s: 0)], interval=0.02).start()
        loops = [thread for thread in threading.enumerate()
                 if thread not in before and thread.name == "svc-background"]
        assert len(loops) == 1
        deadline = time.monotonic() + 30
        while work.runs["a"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        work.stop()
        assert not work.leading
        assert not loops[0].is_alive()  # stop() returned with the loop ended: nothing ticks any more

    def test_recovery_job_interrupts_a_dead_processs_run_and_tells_once(self, sqlite_store: Store) -> None:
        """The periodic sweep (not only the one at open) marks a stale run INTERRUPTED and announces it once."""
        dead = Store(sqlite_store.database, owner=Owner("gone", 1, "gone-1"), recover=False)
        request_id = pending_request(sqlite_store)
        assert sqlite_store.transition(request_id, State.APPROVED, actor="U0CAROL")
        assert dead.claim_run(request_id, [StepSpec("deploy", "hold", "hold")], actor="U0CAROL")
        told: list[str] = []
        work = BackgroundWork(lambda: sqlite_store, [recovery_job(lambda snapshot: told.append(snapshot.id))],
                              interval=0)
        work.tick()
        assert told == []  # its heartbeat is fresh
        dead.heartbeat(request_id, now=time.time() - 5)
        work.tick()
        work.tick()
        assert told == [request_id]
        assert sqlite_store.request(request_id).state is State.INTERRUPTED

    def test_expiry_job_announces_each_expired_request(self, sqlite_store: Store) -> None:
        """The expiry job hands each request it expired to the announcer, once."""
        overdue = pending_request(sqlite_store, expires_at=time.time() - 1)
        told: list[str] = []
        job = expiry_job(lambda request: told.append(request.id))
        assert job.run(sqlite_store) == 1
        assert job.run(sqlite_store) == 0
        assert told == [overdue]


class TestAdvisoryLockLeadership:
    def test_postgres_store_elects_by_advisory_lock(self, pg_store: Store) -> None:
        """On PostgreSQL the leadership is an advisory lock: one holder of two, the other gets it on release."""
        assert isinstance(pg_store.database, PostgresDatabase)
        first, second = leadership_for(pg_store), leadership_for(pg_store)
        assert isinstance(first, AdvisoryLockLeader)
        assert isinstance(second, AdvisoryLockLeader)
        try:
            assert first.acquire()
            assert not second.acquire()
            assert first.acquire()  # still ours: a check, not a new lock
            first.release()
            assert second.acquire()
            assert not first.acquire()
        finally:
            first.release()
            second.release()

    def test_two_stores_in_two_schemas_elect_separately(self, pg_store: Store) -> None:
        """The key is per database and schema: another installation's leader does not block this one."""
        with postgres_schema() as other_url:
            other = Store.open(other_url)
            here, there = leadership_for(pg_store), leadership_for(other)
            try:
                assert here.acquire()
                assert there.acquire()
            finally:
                here.release()
                there.release()
                other.close()

    def test_a_leader_whose_session_ends_loses_the_lead(self, pg_store: Store) -> None:
        """When PostgreSQL ends the leader's session (a failover, a dead peer), the lock is gone: the old
        leader notices on its next check and the other process leads."""
        assert isinstance(pg_store.database, PostgresDatabase)
        first, second = AdvisoryLockLeader(pg_store.database), AdvisoryLockLeader(pg_store.database)
        try:
            assert first.acquire()
            with pg_store.database.transaction() as tx:
                tx.query("SELECT pg_terminate_backend(pid) AS done FROM pg_locks "
                         "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()")
            assert not first.acquire()
            assert second.acquire()
        finally:
            first.release()
            second.release()
