"""Silence through the real Bolt app: a silenced incident that resolves and re-opens within the silence (a flap)
keeps its thread quiet; the message still shows it open again."""

from __future__ import annotations

from watch_world import CHANNEL, WatchWorld, texts, wait_until


def test_silenced_incident_reopens_without_a_thread_line(world: WatchWorld) -> None:
    """Silence 1h on a crash loop; rollout undo resolves it (said in its thread); the crashing image again
    re-opens the same incident: its message says re-opened, its thread gets no re-open line."""
    world.slash("watch payment dev")
    world.wait_watching("payment", "dev")
    world.kubectl("-n", "dev", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:1.5.0")
    ts = wait_until(lambda: world.top_level(CHANNEL, "payment in dev: crash loop"), 60, "the incident")[0]["ts"]
    incident = world.book.incident_by_message(CHANNEL, ts)
    assert incident is not None
    assert "silenced for an hour" in world.click("svc_incident_silence_1h", ts)

    world.kubectl("-n", "dev", "rollout", "undo", "deployment/payment-api")
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, ts)), 60,
               "the resolution in the thread")
    world.kubectl("-n", "dev", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:1.5.0")
    wait_until(lambda: "re-opened: payment in dev: crash loop" in texts(world.slack.message(CHANNEL, ts)), 60,
               "the message showing the re-opened incident")
    # Slack has been sent everything this incident owes (a re-open line goes before the message's update).
    wait_until(lambda: not [owed for owed in world.book.owed() if owed[0].incident_id == incident.id], 30,
               "nothing owed for the incident")
    reopened = world.book.incident(incident.id)
    assert reopened is not None
    assert reopened.open
    assert reopened.reopened == 1
    assert [reply for reply in world.thread(CHANNEL, ts) if "re-opened" in texts(reply)] == []
    assert [line for line in world.book.lines(incident.id) if line.text.startswith("re-opened")] == []
    assert len(world.top_level(CHANNEL, "payment in dev: crash loop")) == 1
