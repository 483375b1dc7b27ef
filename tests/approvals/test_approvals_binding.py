"""What binds an approval: the store (pending requests outlive the bot), the stored plan (not today's
catalog), and the request id in the button's value (nothing else in the payload)."""

from __future__ import annotations

import copy
import json

import yaml
from approval_world import CAROL, ApprovalWorld, wait_until, write_catalog

from bot.deploys.store import State


def test_restart_between_request_and_approval_runs_the_stored_plan(world: ApprovalWorld) -> None:
    """A request made before a restart is approved after it with the button on the old message, and the run
    is the plan the message showed, though the catalog now names another image and pipeline."""
    first = world.start_bot()
    request = world.request_deploy(world.events_url(first), "deploy orders prod 2.8.1")
    world.stop_bot(first)

    changed = copy.deepcopy(yaml.safe_load(world.catalog_path.read_text()))
    changed["services"]["orders"]["image"] = "registry.example.com/orders-rewritten"
    changed["services"]["orders"]["pipeline"] = "standard"
    catalog_path = write_catalog(world.directory / "catalog-changed.yaml", changed)
    second = world.start_bot(catalog_path=catalog_path)
    assert world.click(world.events_url(second), "svc_approve", request, CAROL) == 200
    world.wait_ephemeral(CAROL, f"you approved {request.id}")
    assert world.wait_state(request.id).state is State.SUCCEEDED
    assert world.image("prod", "orders") == "registry.example.com/orders:2.8.1"
    steps = [step.kind for step in world.store.steps(request.id)]
    assert steps == ["set_image", "wait_rollout", "probe"]  # the stored plan: no Jobs from "standard"
    assert "approved by <@U0CAROL>" in json.dumps(world.updates_of(request)[0].args["blocks"])


def test_forged_payload_runs_only_the_request_in_the_button_value(world: ApprovalWorld) -> None:
    """A block_actions payload whose message, texts and blocks describe another request (orders) but whose
    button value names gateway's runs gateway's stored plan only; orders stays PENDING and untouched."""
    bot = world.start_bot()
    url = world.events_url(bot)
    gateway = world.request_deploy(url, "deploy gateway prod 1.0.0")
    orders = world.request_deploy(url, "deploy orders prod 2.8.1")
    payload = world.click_payload("svc_approve", orders, CAROL)  # clicking on orders' message...
    payload["actions"][0]["value"] = gateway.id  # ...with gateway's id in the value
    payload["actions"][0]["text"]["text"] = f"Approve orders 2.9.0 ({orders.id})"
    payload["actions"][0]["block_id"] = f"approval-{orders.id}"
    payload["message"]["text"] = f"deploy orders 2.9.0 to prod {orders.id}"
    payload["state"] = {"values": {"forged": {"service": {"type": "plain_text_input", "value": "orders"},
                                              "request": {"type": "plain_text_input", "value": orders.id}}}}
    assert world.post_payload(url, payload) == 200
    world.wait_ephemeral(CAROL, f"you approved {gateway.id}")
    assert world.wait_state(gateway.id).state is State.SUCCEEDED
    assert world.image("prod", "gateway") == "registry.example.com/gateway:1.0.0"
    assert world.store.request(orders.id).state is State.PENDING
    assert world.store.votes(orders.id) == []
    assert world.patches("prod", "orders") == []
    assert world.updates_of(orders) == []
    assert world.updates_of(gateway)

    bad = world.click_payload("svc_approve", orders, CAROL)
    bad["actions"][0]["value"] = f"{orders.id} deploy payment prod 1.5.0"  # not an id: dropped at once
    assert world.post_payload(url, bad) == 200
    unknown = world.click_payload("svc_approve", orders, CAROL)
    unknown["actions"][0]["value"] = "deadbeef"
    assert world.post_payload(url, unknown) == 200
    world.wait_ephemeral(CAROL, "no request 'deadbeef'")
    wait_until(lambda: len(world.ephemerals_for(CAROL)) == 2, 5, "two answers to carol")
    assert world.store.request(orders.id).state is State.PENDING
    assert world.patches("prod", "payment-api") == []
