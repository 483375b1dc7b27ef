"""Watch streams resume: after a dropped connection the watch goes on from the last resourceVersion (no new list),
after 410 Gone it lists again and compares; either way the open incident is announced once."""

from __future__ import annotations

from watch_world import CHANNEL, WatchWorld, texts, wait_until


def test_dropped_watch_and_410_announce_nothing_twice(world: WatchWorld) -> None:
    """An OOMKilled incident (memory limit and GOMEMLIMIT in it) stays one message while the cluster drops every
    connection and then expires every watch; the streams resume (no list) and re-list (410) as they should."""
    world.slash("watch gateway staging")
    world.wait_watching("gateway", "staging")
    world.kubectl("-n", "staging", "set", "image", "deployment/gateway", "app=registry.example.com/gateway:1.0.1")
    headline = "gateway in staging: OOMKilled"
    ts = wait_until(lambda: world.top_level(CHANNEL, headline), 60, "the OOMKilled incident")[0]["ts"]
    shown = texts(world.slack.message(CHANNEL, ts))
    assert "memory limit 1Gi" in shown  # the seed's gateway: limits.memory 1Gi
    assert "GOMEMLIMIT" in shown

    watching = world.running.watching
    assert watching is not None
    streams = [stream for key, stream in watching.watcher.streams.items() if key[:2] == ("nonprod", "staging")]
    lists = {stream.resource: stream.lists for stream in streams}
    watches = {stream.resource: stream.watches for stream in streams}

    # The API server closes every connection (and refuses new ones for a moment): watches resume from their
    # resourceVersion, without a list.
    cluster = world.stack.kube.cluster("nonprod")  # type: ignore[union-attr]
    cluster.faults.set("down", 0.0)
    wait_until(lambda: all(stream.failing_since is not None for stream in streams), 30, "the streams noticing")
    cluster.faults.clear()
    wait_until(lambda: all(stream.watches > watches[stream.resource] for stream in streams), 30, "watches resumed")
    assert {stream.resource: stream.lists for stream in streams} == lists

    # A compaction: every watch ends with 410 Expired; the streams list again.
    cluster.store.expire_watches()
    wait_until(lambda: all(stream.lists > lists[stream.resource] for stream in streams), 30, "lists after 410")
    passes = watching.watcher.passes
    wait_until(lambda: watching.watcher.passes > passes + 1, 30, "evaluations after the re-list")

    assert len(world.top_level(CHANNEL, headline)) == 1
    incidents = [incident for incident in world.book.incidents(state=None)
                 if (incident.service, incident.env) == ("gateway", "staging")]
    assert [(incident.kind, incident.reopened) for incident in incidents] == [("oom-killed", 0)]
    world.kubectl("-n", "staging", "rollout", "undo", "deployment/gateway")
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, ts)), 60,
               "the resolution")
