"""Approved runs in the terminal path: a held deploy lock leaves the request APPROVED until an approver
starts it again, and rollbacks are approved like deploys."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from approval_world import ALICE, BOB, CAROL, DAVE, ERIN, RUN_SETTINGS, ApprovalWorld

from bot.deploys.plan import Plan
from bot.deploys.store import State
from bot.replies.approvals import ApprovalReply
from bot.replies.base import Outcome, Reply
from bot.replies.deploy import DeployPendingReply
from bot.runtime import Runtime, build_runtime
from bot.slack.approval_message import approval_message
from bot.terminal.shell import render_reply


@pytest.fixture(name="runtime")
def _runtime(world: ApprovalWorld) -> Iterator[Runtime]:
    runtime = build_runtime(world.catalog_path)
    runtime.deploys.run_settings = RUN_SETTINGS
    yield runtime
    runtime.close()


def run(runtime: Runtime, text: str, user: str) -> Reply:
    return runtime.dispatcher.execute(text, user, source="terminal", follow_runs=True, deadline=time.monotonic() + 60)


def test_held_lock_leaves_the_request_approved_until_started_again(world: ApprovalWorld, runtime: Runtime) -> None:
    """With the deploy lock held elsewhere the approval stands but nothing runs; once the lock is free an
    approver's `approve` starts the stored plan; people who may not approve cannot start it."""
    pending = run(runtime, "deploy gateway prod 1.0.0", ALICE)
    assert isinstance(pending, DeployPendingReply)
    engine = runtime.deploys.engine()
    plan = Plan.from_json(world.store.request(pending.request_id).plan)
    held = engine.acquire_lock(plan, "someone-else", BOB)
    assert held is not None
    blocked = run(runtime, f"approve {pending.request_id}", CAROL)
    assert isinstance(blocked, ApprovalReply)
    assert blocked.outcome is Outcome.USER_ERROR
    assert "already being deployed" in blocked.not_started
    assert f"/svc approve {pending.request_id} starts it" in render_reply(blocked)
    assert world.store.request(pending.request_id).state is State.APPROVED
    assert "already being deployed" in approval_message(world.store, pending.request_id).not_started
    assert world.patches("prod", "gateway") == []
    held.release()
    refused = run(runtime, f"approve {pending.request_id}", DAVE)
    assert "you are not an approver" in render_reply(refused)
    started = run(runtime, f"approve {pending.request_id}", ERIN)
    assert isinstance(started, ApprovalReply)
    assert started.decision == "started"
    assert started.run is not None
    assert started.run.state == "SUCCEEDED"
    assert world.image("prod", "gateway") == "registry.example.com/gateway:1.0.0"
    again = run(runtime, f"approve {pending.request_id}", CAROL)
    assert "already approved by @U0CAROL; it is SUCCEEDED now" in render_reply(again)


def test_rollback_waits_for_approval_and_runs_once_approved(world: ApprovalWorld, runtime: Runtime) -> None:
    """`/svc rollback gateway prod` in prod is a PENDING request too; carol's approval runs the undo."""
    pending = run(runtime, "rollback gateway prod", ALICE)
    assert isinstance(pending, DeployPendingReply)
    shown = render_reply(pending)
    assert "0.9.5 → 0.9.4 (revision 1)" in shown
    assert f"/svc approve {pending.request_id}" in shown
    approved = run(runtime, f"approve {pending.request_id}", CAROL)
    assert isinstance(approved, ApprovalReply)
    assert approved.run is not None
    assert approved.run.state == "SUCCEEDED", render_reply(approved)
    assert world.image("prod", "gateway") == "registry.example.com/gateway:0.9.4"


def test_the_approve_path_reads_the_deployment_once(world: ApprovalWorld, runtime: Runtime) -> None:
    """The vote that reaches the quorum reads what the deployment runs once (the run's `from`), and nothing
    else on the cluster when the run cannot start (the deploy lock is held elsewhere)."""
    pending = run(runtime, "deploy gateway prod 1.0.0", ALICE)
    assert isinstance(pending, DeployPendingReply)
    plan = Plan.from_json(world.store.request(pending.request_id).plan)
    held = runtime.deploys.engine().acquire_lock(plan, "someone-else", BOB)
    assert held is not None
    assert world.stack.kube is not None
    cluster, namespace = world.stack.kube.env("prod")
    deployment = f"/apis/apps/v1/namespaces/{namespace}/deployments/{plan.workload.deployment}"
    before = len(cluster.requests)
    try:
        blocked = run(runtime, f"approve {pending.request_id}", CAROL)
    finally:
        held.release()
    assert isinstance(blocked, ApprovalReply)
    assert "already being deployed" in blocked.not_started
    reads = [request for request in list(cluster.requests)[before:]
             if request[0] == "GET" and request[1].split("?")[0] == deployment]
    assert len(reads) == 1, reads
