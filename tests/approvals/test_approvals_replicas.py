"""Two bot processes on one store: clicks from two approvers spread over both start exactly one run
(on SQLite, and on PostgreSQL when SVCBOT_TEST_DATABASE_URL names one, as .ci/run does)."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from approval_world import CAROL, ERIN, ApprovalWorld, wait_until
from postgres_support import postgres_schema

from bot.deploys.store import State

CLICKS = 20


def test_twenty_concurrent_clicks_on_two_processes_start_one_run(world: ApprovalWorld) -> None:
    """20 Approve clicks (carol and erin, 10 each) delivered at once to this process's bot and to a
    `svcbot serve` process sharing its store: one APPROVED transition, one run, one image patch."""
    twenty_clicks_one_run(world)


def test_twenty_concurrent_clicks_on_two_processes_on_postgresql(world: ApprovalWorld,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same 20 clicks with both processes on one PostgreSQL store: still exactly one run."""
    with postgres_schema() as url:
        monkeypatch.setenv("SVCBOT_DB", url)
        world.db_path = url  # type: ignore[assignment] # a store URL where the SQLite tests have a path
        try:
            twenty_clicks_one_run(world)
        finally:
            world.close()


def twenty_clicks_one_run(world: ApprovalWorld) -> None:
    here = world.start_bot()
    there = world.start_serve()
    request = world.request_deploy(world.events_url(here), "deploy gateway prod 1.0.0")
    urls = [world.events_url(here), there.events_url]
    # here/carol, here/erin, there/carol, there/erin, ...: each approver clicks on both processes
    clicks = [(urls[index // 2 % 2], approver)
              for index, approver in zip(range(CLICKS), itertools.cycle((CAROL, ERIN)), strict=False)]
    payloads = [(url, world.click_payload("svc_approve", request, user)) for url, user in clicks]
    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        statuses = list(pool.map(lambda item: world.post_payload(*item), payloads))
    assert statuses == [200] * CLICKS
    done = world.wait_state(request.id, timeout=60)
    assert done.state is State.SUCCEEDED
    # Every click was answered (ephemerally) by one process or the other.
    wait_until(lambda: len(world.ephemerals_for(CAROL)) + len(world.ephemerals_for(ERIN)) == CLICKS, 20,
               "an answer to every click")
    events = [event.event for event in world.store.audit(request.id)]
    assert events.count("request.approved") == 1
    assert events.count("request.running") == 1
    assert world.store.run(request.id) is not None
    assert len(world.store.steps(request.id)) == 3
    assert len(world.patches("prod", "gateway")) == 1
    assert world.image("prod", "gateway") == "registry.example.com/gateway:1.0.0"
    voters = [vote.approver for vote in world.store.votes(request.id)]
    assert len(voters) == len(set(voters))
    assert set(voters) <= {CAROL, ERIN}
    approved = sum("you approved" in message.get("text", "") for message in world.slack.ephemerals())
    assert approved == 1
    code, stderr = there.stop()
    assert code == 0, stderr[-2000:]
    answered = [line for line in stderr.splitlines() if '"command.finished"' in line and '"approve"' in line]
    assert len(answered) == CLICKS // 2  # the other process answered its half of the clicks
