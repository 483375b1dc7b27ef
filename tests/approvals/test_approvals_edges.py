"""Issue 16's approval edges: a stale approval never reverts a newer deploy, one request at a time waits per
service and environment, and an approved request is never stranded APPROVED. Through the real Bolt app with
signed requests where it is about Slack, the dispatcher as the terminal calls it elsewhere, on the sandbox."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from approval_world import ALICE, BOB, CAROL, RUN_SETTINGS, ApprovalWorld, wait_until

from bot.clients.kube import DeployKube
from bot.deploys.store import State
from bot.replies.approvals import ApprovalReply
from bot.replies.base import Message, Outcome, Reply
from bot.replies.deploy import DeployPendingReply
from bot.runtime import Runtime, build_runtime
from bot.terminal.shell import render_reply

INVENTORY = "registry.example.com/inventory"


@pytest.fixture(name="runtime")
def _runtime(world: ApprovalWorld) -> Iterator[Runtime]:
    runtime = build_runtime(world.catalog_path)
    runtime.deploys.run_settings = RUN_SETTINGS
    yield runtime
    runtime.deploys.close_store(10.0)
    runtime.close()


def run(runtime: Runtime, text: str, user: str) -> Reply:
    return runtime.dispatcher.execute(text, user, source="terminal", follow_runs=True, deadline=time.monotonic() + 60)


def _text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False) + message.get("text", "")


def set_image_elsewhere(runtime: Runtime, env: str, deployment: str, image: str) -> None:
    """Someone runs `kubectl set image` (or another deploy lands) behind the request's back."""
    kube = DeployKube(runtime.backends.kube_for_env(env))
    namespace = runtime.catalog.environment(env).namespace
    kube.set_image(namespace, deployment, "app", image, deadline=time.monotonic() + 10)


def test_a_stale_approval_is_refused_naming_both_versions(world: ApprovalWorld, runtime: Runtime) -> None:
    """deploy inventory prod 3.1.0 waits (3.1.1 -> 3.1.0); meanwhile prod gets 3.2.0; carol's Approve click is
    refused naming both versions, the request ends CANCELLED (superseded), its message says so, and prod keeps
    running 3.2.0."""
    bot = world.start_bot()
    url = world.events_url(bot)
    request = world.request_deploy(url, "deploy inventory prod 3.1.0")
    assert "3.1.1 → 3.1.0" in _text(world.message(request))
    set_image_elsewhere(runtime, "prod", "inventory", f"{INVENTORY}:3.2.0")
    patches = wait_until(lambda: len(world.patches("prod", "inventory")), 10, "the sandbox logging our PATCH")
    assert world.click(url, "svc_approve", request, CAROL) == 200
    refusal = world.wait_ephemeral(CAROL, "prod now runs 3.2.0, this request was made against 3.1.1: request it again")
    assert request.id in refusal["text"]
    ended = world.wait_state(request.id)
    assert ended.state is State.CANCELLED
    assert ended.reason.startswith("superseded: prod now runs 3.2.0")
    wait_until(lambda: "superseded" in _text(world.message(request)), 20, "the message saying superseded")
    shown = _text(world.message(request))
    assert "prod now runs 3.2.0, this request was made against 3.1.1" in shown
    assert '"actions"' not in json.dumps(world.message(request).get("blocks", []))  # no buttons left
    assert world.image("prod", "inventory") == f"{INVENTORY}:3.2.0"
    assert len(world.patches("prod", "inventory")) == patches
    assert world.store.run(request.id) is None


def test_the_run_checks_again_right_before_its_first_change(world: ApprovalWorld, runtime: Runtime) -> None:
    """An approved request whose deployment changed after the approval (and before its run's first step) ends
    CANCELLED, superseded, without touching the cluster."""
    pending = run(runtime, "deploy gateway prod 1.0.0", ALICE)
    assert isinstance(pending, DeployPendingReply)
    store = runtime.deploys.store()
    assert store.transition(pending.request_id, State.APPROVED, actor=CAROL, unexpired=True)
    set_image_elsewhere(runtime, "prod", "gateway", "registry.example.com/gateway:0.9.4")
    patches = wait_until(lambda: len(world.patches("prod", "gateway")), 10, "the sandbox logging our PATCH")
    snapshot = runtime.deploys.engine().start(pending.request_id, actor=CAROL).wait(30)
    assert snapshot.state is State.CANCELLED
    assert snapshot.request.reason == ("superseded: prod now runs 0.9.4, this request was made against 0.9.5: "
                                       "request it again")
    assert {step.state.value for step in snapshot.steps} == {"SKIPPED"}
    assert len(world.patches("prod", "gateway")) == patches
    assert world.image("prod", "gateway") == "registry.example.com/gateway:0.9.4"


def test_a_second_request_while_one_waits_is_refused_pointing_at_the_first(
        world: ApprovalWorld, runtime: Runtime) -> None:
    """While alice's gateway prod request waits, bob's is refused naming it (and who may withdraw it); alice's own
    second request is refused too, telling her to withdraw the first; once it is withdrawn she may ask again."""
    first = run(runtime, "deploy gateway prod 1.0.0", ALICE)
    assert isinstance(first, DeployPendingReply)
    other = run(runtime, "deploy gateway prod 1.0.1", BOB)
    assert isinstance(other, Message)
    assert other.outcome is Outcome.USER_ERROR
    text = render_reply(other)
    assert f"gateway in prod already has a request awaiting approval: {first.request_id}" in text
    assert f"/svc cancel {first.request_id}" in text
    rollback = run(runtime, "rollback gateway prod", BOB)
    assert rollback.outcome is Outcome.USER_ERROR
    assert first.request_id in render_reply(rollback)
    mine = run(runtime, "deploy gateway prod 1.0.1", ALICE)
    assert mine.outcome is Outcome.USER_ERROR
    assert f"you already asked for a deploy of gateway 1.0.0 to prod: {first.request_id} awaits approval" \
        in render_reply(mine)
    assert [request.id for request in world.store.requests(service="gateway", env="prod")] == [first.request_id]
    assert run(runtime, f"cancel {first.request_id}", ALICE).outcome is Outcome.OK
    again = run(runtime, "deploy gateway prod 1.0.1", ALICE)
    assert isinstance(again, DeployPendingReply)


def test_a_probe_retries_through_500s_and_an_open_circuit_breaker(world: ApprovalWorld, runtime: Runtime) -> None:
    """orders 2.8.1 to prod (3 pods): the pod proxy answers 500 three times in a row, which also opens the
    cluster's circuit breaker. The probe step keeps trying until its timeout (30s), says in the progress why,
    waits for the breaker to let a call through again, and the deploy SUCCEEDS instead of rolling back."""
    pending = run(runtime, "deploy orders prod 2.8.1", ALICE)
    assert isinstance(pending, DeployPendingReply)
    breaker = runtime.backends.kube("prod").breaker
    breaker.reset_after = 2.0  # the cluster's breaker, opened for 2 s instead of 15 (the step's timeout is 30 s)
    assert world.stack.kube is not None
    faults = world.stack.kube.cluster("prod").faults
    faults.set("500", resource="pods/proxy", count=3)
    lines: list[str] = []
    approved = runtime.dispatcher.execute(f"approve {pending.request_id}", CAROL, source="terminal",
                                          progress=lines.append, follow_runs=True, deadline=time.monotonic() + 60)
    shown = "\n".join(lines)
    assert isinstance(approved, ApprovalReply)
    assert approved.run is not None
    assert approved.run.state == "SUCCEEDED", shown + render_reply(approved)
    assert faults.hits == 3
    assert "… [3/3] deploy: retrying (asking the new pods' /readyz): cluster prod answered 500" in shown
    assert "unreachable since" in shown  # the open breaker, waited out
    assert "not retrying yet" in shown
    assert world.image("prod", "orders") == "registry.example.com/orders:2.8.1"


def test_a_request_stranded_approved_by_a_crash_ends_cancelled_and_its_message_says_so(
        world: ApprovalWorld) -> None:
    """The process that counted the deciding vote died before starting the run: the request is APPROVED with no
    run (the store as that crash leaves it). The leader's background work ends it CANCELLED with a reason, once,
    and its Slack message says so; nothing was deployed and approving again is refused."""
    bot = world.start_bot()
    url = world.events_url(bot)
    request = world.request_deploy(url, "deploy gateway prod 1.0.0")
    assert world.store.transition(request.id, State.APPROVED, actor=CAROL, unexpired=True,
                                  now=time.time() - 120)  # the vote, two minutes ago; then the crash
    assert bot.background is not None
    bot.background.tick()
    ended = world.wait_state(request.id)
    assert ended.state is State.CANCELLED
    assert ended.reason.startswith("not started: svcbot stopped between the approval and the start of its run")
    wait_until(lambda: "not started" in _text(world.message(request)), 20, "the message saying not started")
    assert "nothing was deployed: request it again" in _text(world.message(request))
    bot.background.tick()
    assert [event.event for event in world.store.audit(request.id)].count("request.cancelled") == 1
    assert world.store.run(request.id) is None
    assert world.image("prod", "gateway") == "registry.example.com/gateway:0.9.5"
    assert world.click(url, "svc_approve", request, CAROL) == 200
    world.wait_ephemeral(CAROL, f"{request.id} was withdrawn")
