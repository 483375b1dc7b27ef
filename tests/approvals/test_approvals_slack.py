"""Approvals through the real Bolt app: signed block_actions payloads in Slack's format (and Socket Mode),
the sandbox Slack recording chat.update and chat.postEphemeral, deploys on the sandbox clusters."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from approval_world import (
    ALICE,
    APPROVALS_CHANNEL,
    CAROL,
    DAVE,
    ERIN,
    REQUESTS_CHANNEL,
    ApprovalWorld,
    wait_until,
)

from bot.deploys.store import State
from bot.slack import serving as bot_app


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [element for block in message.get("blocks", []) if block.get("type") == "actions"
            for element in block.get("elements", [])]


def _text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False) + message.get("text", "")


def test_approver_click_runs_the_deploy(world: ApprovalWorld) -> None:
    """The approval message goes to the approvals channel with everything an approver needs; carol's click
    runs the stored plan, replaces the buttons with who approved, and progress goes to the thread."""
    bot = world.start_bot()
    url = world.events_url(bot)
    request = world.request_deploy(url, "deploy payment prod 1.4.2")
    assert request.state is State.PENDING
    assert request.channel == APPROVALS_CHANNEL
    message = world.message(request)
    text = _text(message)
    for expected in (f"Request*\\n{request.id}", "payment in prod", "1.4.1 → 1.4.2", "<@U0ALICE>",
                     "@release-managers", "config staging → prod", "Expires", "kubectl set image",
                     f"/svc approve {request.id}", f"/svc reject {request.id} [reason]"):
        assert expected in text, expected
    approve, reject = _buttons(message)
    assert (approve["action_id"], approve["value"], approve["style"]) == ("svc_approve", request.id, "primary")
    assert approve["confirm"]["confirm"]["text"] == "Approve"
    assert (reject["action_id"], reject["value"], reject["style"]) == ("svc_reject", request.id, "danger")
    pointer = world.slack.wait_for("response_url", timeout=10)[0]
    assert f"request {request.id} is waiting in the approvals channel" in json.dumps(pointer.args)

    assert world.click(url, "svc_approve", request, CAROL) == 200
    world.wait_ephemeral(CAROL, f"you approved {request.id}")
    done = world.wait_state(request.id)
    assert done.state is State.SUCCEEDED
    assert world.image("prod", "payment-api") == "registry.example.com/payment:1.4.2"
    assert len(world.patches("prod", "payment-api")) == 1
    first_update = world.updates_of(request)[0]
    assert "actions" not in json.dumps(first_update.args["blocks"])
    assert "approved by <@U0CAROL>" in json.dumps(first_update.args["blocks"])
    wait_until(lambda: "SUCCEEDED" in _text(world.message(request)), 20, "the outcome on the message")
    assert "approved by <@U0CAROL>" in _text(world.message(request))  # kept when the outcome replaces it
    thread = "\n".join(item["text"] for item in world.slack.messages(APPROVALS_CHANNEL, thread_ts=request.thread_ts))
    assert "kubectl set image" in thread
    events = [event.event for event in world.store.audit(request.id)]
    for event in ("request.created", "approval.posted", "vote.approve", "request.approved", "request.running",
                  "request.succeeded"):
        assert event in events, event
    assert world.store.audit(request.id)[events.index("request.approved")].actor == CAROL


def test_requester_and_non_approver_are_refused(world: ApprovalWorld) -> None:
    """The requester's own click and a non-approver's click get an ephemeral refusal; nothing changes."""
    bot = world.start_bot()
    url = world.events_url(bot)
    request = world.request_deploy(url, "deploy gateway prod 1.0.0", user=CAROL)  # carol is on call too
    assert world.click(url, "svc_approve", request, CAROL) == 200
    refusal = world.wait_ephemeral(CAROL, "yourself")
    assert refusal["channel"] == APPROVALS_CHANNEL
    assert world.click(url, "svc_approve", request, DAVE) == 200
    world.wait_ephemeral(DAVE, "you are not an approver for prod (approvers: @release-managers)")
    assert world.click(url, "svc_reject", request, DAVE) == 200
    wait_until(lambda: len(world.ephemerals_for(DAVE)) == 2, 10, "dave's second refusal")
    assert world.store.request(request.id).state is State.PENDING
    assert world.store.votes(request.id) == []
    assert world.updates_of(request) == []
    assert len(_buttons(world.message(request))) == 2
    assert world.patches("prod", "gateway") == []


def test_reject_over_socket_mode(world: ApprovalWorld) -> None:
    """Over Socket Mode: erin's Reject is acked at once, ends the request, and the message says who and
    that nothing is deployed; a later Approve is refused."""
    bot = world.start_bot(socket_mode=True)
    envelope = world.slack.send_slash_command("deploy payment prod 1.4.3", user_id=ALICE, channel_id=REQUESTS_CHANNEL)
    world.slack.wait_for_ack(envelope, timeout=5)
    request = wait_until(lambda: next((item for item in world.store.requests() if item.thread_ts), None), 20,
                         "the approval message")
    clicked = world.slack.send_block_actions("svc_reject", request.id, user_id=ERIN, channel_id=request.channel,
                                             message_ts=request.thread_ts)
    assert world.slack.wait_for_ack(clicked, timeout=3).latency is not None
    world.wait_state(request.id, {State.REJECTED}, timeout=20)
    world.wait_ephemeral(ERIN, f"you rejected {request.id}")
    update = wait_until(lambda: world.updates_of(request), 10, "the message update")[-1]
    blocks = json.dumps(update.args["blocks"])
    assert "rejected by <@U0ERIN>" in blocks
    assert "svc_approve" not in blocks
    world.slack.send_block_actions("svc_approve", request.id, user_id=CAROL, channel_id=request.channel,
                                   message_ts=request.thread_ts)
    world.wait_ephemeral(CAROL, "already rejected")
    assert world.store.request(request.id).state is State.REJECTED
    assert world.store.run(request.id) is None
    assert world.patches("prod", "payment-api") == []
    assert bot.socket_handler is not None


def test_expired_click_is_refused_without_a_sweep(world: ApprovalWorld) -> None:
    """A click after the deadline is refused with "this request expired" though no sweep ran; the click's
    check marks it EXPIRED, records no vote, and the stale buttons come off the message."""
    bot = world.start_bot()
    url = world.events_url(bot)
    request = world.request_deploy(url, "deploy inventory dev 3.2.1")  # dev requests expire after 2s
    assert request.expires_at is not None
    deadline = request.expires_at
    wait_until(lambda: time.time() > deadline, 5, "the deadline")
    assert world.store.request(request.id).state is State.PENDING  # nobody swept
    assert world.click(url, "svc_approve", request, CAROL) == 200
    world.wait_ephemeral(CAROL, "this request expired")
    assert world.store.request(request.id).state is State.EXPIRED
    assert world.store.votes(request.id) == []
    update = wait_until(lambda: world.updates_of(request), 10, "the message update")[-1]
    assert "svc_approve" not in json.dumps(update.args["blocks"])
    assert "expired at" in json.dumps(update.args["blocks"])


def test_sweep_marks_expired_requests_and_updates_their_messages(world: ApprovalWorld,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep thread `start()` runs marks a PENDING request past its expiry EXPIRED (as svcbot) and
    replaces its buttons; requests not yet due are left alone."""
    monkeypatch.setattr(bot_app, "EXPIRY_SWEEP_INTERVAL", 0.2)
    bot = world.start_bot()
    url = world.events_url(bot)
    due = world.request_deploy(url, "deploy inventory dev 3.2.1")
    later = world.request_deploy(url, "deploy gateway prod 1.0.0")
    expired = world.wait_state(due.id, {State.EXPIRED}, timeout=10)
    assert expired.reason.startswith("not approved within")
    assert [event.actor for event in world.store.audit(due.id) if event.event == "request.expired"] == ["svcbot"]
    update = wait_until(lambda: world.updates_of(due), 10, "the message update")[-1]
    blocks = json.dumps(update.args["blocks"])
    assert "expired at" in blocks
    assert "svc_approve" not in blocks
    assert world.store.request(later.id).state is State.PENDING
    assert world.updates_of(later) == []


def test_quorum_of_two_distinct_approvers(world: ApprovalWorld) -> None:
    """staging asks for two approvers: carol's click is counted (buttons stay, 1 of 2), her second click
    changes nothing, erin's typed `/svc approve` reaches the quorum, starts exactly one run and takes the
    buttons off the message."""
    bot = world.start_bot()
    url = world.events_url(bot)
    request = world.request_deploy(url, "deploy gateway staging 0.9.5")
    world.click(url, "svc_approve", request, CAROL)
    world.wait_ephemeral(CAROL, "1 of 2 approvals; waiting for 1 more approver")
    update = wait_until(lambda: world.updates_of(request), 10, "the vote on the message")[-1]
    blocks = json.dumps(update.args["blocks"])
    assert "approved so far by <@U0CAROL> (1 of 2)" in blocks
    assert "svc_approve" in blocks
    world.click(url, "svc_approve", request, CAROL)
    world.wait_ephemeral(CAROL, "you already approved")
    assert world.store.request(request.id).state is State.PENDING
    world.slash(url, f"approve {request.id}", ERIN)  # typed, not clicked: the message is updated all the same
    assert world.wait_state(request.id).state is State.SUCCEEDED
    typed = wait_until(lambda: [call for call in world.slack.calls("response_url")
                                if f"you approved {request.id}:" in json.dumps(call.args)], 10, "erin's answer")
    assert typed[0].args["response_type"] == "in_channel"
    decided = [json.dumps(call.args["blocks"]) for call in world.updates_of(request)]
    assert any("svc_approve" not in blocks and "approved by <@U0CAROL>" in blocks and "<@U0ERIN>" in blocks
               for blocks in decided)
    assert sorted(vote.approver for vote in world.store.votes(request.id)) == [CAROL, ERIN]
    assert [event.actor for event in world.store.audit(request.id) if event.event == "request.approved"] == [ERIN]
    assert len(world.patches("staging", "gateway")) == 1
    assert world.image("staging", "gateway") == "registry.example.com/gateway:0.9.5"


def test_approval_message_stays_in_the_channel_when_the_approvals_channel_is_closed(world: ApprovalWorld) -> None:
    """When the bot cannot post in the approvals channel the message goes where the deploy was asked,
    buttons and all, and clicks there work."""
    world.slack.leave(APPROVALS_CHANNEL)
    bot = world.start_bot()
    url = world.events_url(bot)
    request = world.request_deploy(url, "deploy gateway prod 1.0.0")
    assert request.channel == REQUESTS_CHANNEL
    assert len(_buttons(world.message(request))) == 2
    world.click(url, "svc_approve", request, CAROL)
    assert world.wait_state(request.id).state is State.SUCCEEDED
