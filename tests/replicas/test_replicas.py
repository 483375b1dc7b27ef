"""Two bot replicas on one store, as two OS processes: approve clicks split across them start one run,
two expiry sweeps expire each request once, one replica leads background work at a time, and a replica
killed mid-run has its run marked INTERRUPTED by the other within the heartbeat window."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from postgres_support import postgres_schema
from replica_world import Replica, pending_request

from bot.deploys.store import State, Store

STALE_AFTER = 1.5  # replica.py's --stale-after: seconds without a heartbeat before a run counts as dead
INTERVAL = 0.2  # replica.py's --interval: seconds between background ticks
HEARTBEAT = 0.2  # replica.py's --heartbeat


@pytest.fixture(name="shared_url", params=["sqlite", "postgresql"])
def _shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One store both replicas open: a SQLite file on this machine, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "shared.db")
        return
    with postgres_schema() as url:
        yield url


def test_twenty_approve_clicks_split_across_two_replicas_start_exactly_one_run(
        shared_url: str, replicas: Callable[..., Replica]) -> None:
    """Ten clicks in each of two processes, released together: one approval, one run, one vote per approver."""
    store = Store.open(shared_url)
    request_id = pending_request(store)
    racers = [replicas("race", shared_url, request_id, "--clicks", "10", "--tag", tag) for tag in ("a", "b")]
    for racer in racers:
        racer.wait_for("ready")
    for racer in racers:
        racer.go()
    results = [click for racer in racers for click in racer.wait_for("clicked", timeout=60)["results"]]
    assert len(results) == 20
    assert sum(click["approved"] for click in results) == 1
    assert sum(click["claimed"] for click in results) == 1
    assert sum(click["voted"] for click in results) == 5  # five approvers, each counted once
    snapshot = store.snapshot(request_id)
    assert snapshot.state is State.RUNNING
    assert len(snapshot.steps) == 1
    events = [event.event for event in store.audit(request_id)]
    assert events.count("request.approved") == 1
    assert events.count("request.running") == 1
    assert sorted(vote.approver for vote in store.votes(request_id)) == [f"U0APPROVER{i}" for i in range(5)]
    store.close()


def test_two_sweepers_expire_each_overdue_request_once(pg_url: str, replicas: Callable[..., Replica]) -> None:
    """Two replicas sweeping 30 overdue requests at the same moment: each is EXPIRED by exactly one of them."""
    store = Store.open(pg_url)
    overdue = {pending_request(store, expires_at=time.time() - 60) for _ in range(30)}
    current = pending_request(store, expires_at=time.time() + 600)
    sweepers = [replicas("sweep", pg_url) for _ in range(2)]
    for sweeper in sweepers:
        sweeper.wait_for("ready")
    for sweeper in sweepers:
        sweeper.go()
    first, second = (set(sweeper.wait_for("swept", timeout=60)["expired"]) for sweeper in sweepers)
    assert first | second == overdue
    assert not first & second
    for request_id in overdue:
        assert store.request(request_id).state is State.EXPIRED
        assert [event.event for event in store.audit(request_id)].count("request.expired") == 1
    assert store.request(current).state is State.PENDING
    store.close()


def test_one_leader_at_a_time_and_the_other_takes_over_when_it_is_killed(
        pg_url: str, replicas: Callable[..., Replica]) -> None:
    """The first replica leads, the second follows; SIGKILL the leader and the follower leads within a tick or two."""
    first = replicas("serve", pg_url)
    first.wait_for("leading")
    second = replicas("serve", pg_url)
    second.wait_for("following")
    for replica in (first, second):  # several rounds of both, each checking the lead
        ticks = replica.wait_for("tick")["ticks"]
        replica.wait_for("tick", where=lambda event, ticks=ticks: event["ticks"] >= ticks + 5)
    assert "leading" not in second.said()  # the follower kept following all along
    assert not any(event["leading"] for event in second.events if event["event"] == "tick")
    first.kill()
    killed_at = time.monotonic()
    took_over = second.wait_for("leading", timeout=10)
    assert took_over["seen_at"] - killed_at < 3.0


def test_a_stopping_leader_hands_over_at_once(pg_url: str, replicas: Callable[..., Replica]) -> None:
    """SIGTERM (a rolling update): the leader gives the lock up as it stops; the other leads on its next tick."""
    first = replicas("serve", pg_url)
    first.wait_for("leading")
    second = replicas("serve", pg_url)
    second.wait_for("following")
    first.stop()
    assert first.said()[-1] == "stopped"
    stopped_at = time.monotonic()
    assert second.wait_for("leading", timeout=10)["seen_at"] - stopped_at < 2.0


def test_a_killed_replicas_run_is_interrupted_by_the_other_within_the_heartbeat_window(
        pg_url: str, replicas: Callable[..., Replica]) -> None:
    """B leads; A runs a deploy and heartbeats. B leaves the live run alone; SIGKILL A and B marks it
    INTERRUPTED, once, within stale_after plus a tick, and tells the requester."""
    b = replicas("serve", pg_url, "--stale-after", str(STALE_AFTER))
    b.wait_for("leading")
    a = replicas("serve", pg_url, "--run", "--stale-after", str(STALE_AFTER), "--heartbeat", str(HEARTBEAT))
    run_id = a.wait_for("started")["id"]
    run_started = time.time()  # (a moment after it did)
    a.wait_for("following")
    store = Store.open(pg_url, recover=False)
    # The leader sweeps for dead runs every round; wait for its rounds to go well past the window a run
    # without heartbeats gets (twice stale_after since the run started), A's run alive all along.
    b.wait_for("tick", timeout=30,
               where=lambda event: event["leading"] and event["at"] >= run_started + 2 * STALE_AFTER)
    alive = store.snapshot(run_id)
    assert alive.state is State.RUNNING, alive.request.reason
    assert alive.run is not None
    assert time.time() - alive.run.heartbeat_at < STALE_AFTER
    a.kill()
    killed_at = time.monotonic()
    while store.request(run_id).state is State.RUNNING:
        assert time.monotonic() - killed_at < STALE_AFTER + 5.0, "nobody marked the dead replica's run"
        time.sleep(0.05)
    noticed = time.monotonic() - killed_at
    snapshot = store.snapshot(run_id)
    assert snapshot.state is State.INTERRUPTED
    assert noticed < STALE_AFTER + HEARTBEAT + INTERVAL + 2.0  # the window, plus scheduling slack
    assert "stopped: no heartbeat" in snapshot.request.reason
    told = b.wait_for("interrupted", timeout=5)
    assert told["id"] == run_id
    assert [event.event for event in store.audit(run_id)].count("request.interrupted") == 1
    assert [step.state.value for step in snapshot.steps] == ["INTERRUPTED"]
    store.close()


def test_a_sqlite_replica_leads_alone(tmp_path: Path, replicas: Callable[..., Replica]) -> None:
    """On SQLite (one replica) the process leads at once; its stdout carries only JSON lines, logs go to stderr."""
    replica = replicas("serve", str(tmp_path / "solo.db"))
    assert replica.wait_for("leading")["event"] == "leading"
    replica.stop()
    assert replica.said()[-1] == "stopped"
    json.dumps(replica.events)  # every line parsed as JSON
