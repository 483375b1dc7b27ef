"""/svc watch through the real Bolt app, the sandbox clusters and the sandbox Slack: a crash loop made with
kubectl outside svcbot is one message with its diagnosis and buttons, its changes go to the thread and update
the message, and the rollback resolves it in the same thread."""

from __future__ import annotations

from watch_world import CHANNEL, OUTSIDER_CHANNEL, WatchWorld, texts, wait_until


def test_watch_refused_where_the_bot_is_not_a_member(world: WatchWorld) -> None:
    """watch in a channel the bot is not in says to invite it first, and subscribes nothing."""
    answer = world.slash("watch payment dev", channel=OUTSIDER_CHANNEL)
    assert "invite @svcbot first" in answer
    assert world.book.subscriptions(OUTSIDER_CHANNEL) == []


def test_watch_unknown_service_is_refused(world: WatchWorld) -> None:
    """A service the catalog does not know is named as such, with the known ones."""
    answer = world.slash("watch paymnt")
    assert "unknown service 'paymnt'" in answer
    assert world.book.subscriptions(CHANNEL) == []


def test_crash_loop_from_open_to_resolution_in_one_thread(world: WatchWorld) -> None:
    """kubectl sets a crashing image; one message says crash loop with exit code, restarts and buttons; a new
    crashing pod goes to its thread; rollout undo resolves it in the thread and marks the message resolved."""
    answer = world.slash("watch payment staging")
    assert "this channel now watches payment in staging" in answer
    assert "payment in staging" in world.slash("watches")

    world.kubectl("-n", "staging", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:1.5.0")
    headline = "payment in staging: crash loop"
    posted = wait_until(lambda: world.top_level(CHANNEL, headline), 30, "the incident message")
    message = posted[0]
    shown = texts(message)
    assert "(last: Error, exit 1)" in shown  # CrashLoopBackOff, or running again between two crashes
    assert "restarts" in shown
    assert "1.5.0" in shown
    actions = [element["action_id"] for block in message["blocks"] if block["type"] == "actions"
               for element in block["elements"]]
    assert actions == ["svc_incident_logs", "svc_incident_status", "svc_incident_rollback",
                       "svc_incident_silence_1h", "svc_incident_silence_resolved"]
    ts = message["ts"]
    incident = world.book.incident_by_message(CHANNEL, ts)
    assert incident is not None
    assert incident.open

    # The restart count moves: the message is updated in place (not a new message).
    wait_until(lambda: world.slack.calls("chat.update") and any(
        call.args.get("ts") == ts for call in world.slack.calls("chat.update")), 30, "an update in place")

    # More replicas: the stuck rollout's new ReplicaSet gets more crashing pods; the change is a thread line.
    world.kubectl("-n", "staging", "scale", "deployment/payment-api", "--replicas=6")
    wait_until(lambda: any("now:" in texts(reply) for reply in world.thread(CHANNEL, ts)), 30, "a thread line")

    world.kubectl("-n", "staging", "rollout", "undo", "deployment/payment-api")
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, ts)), 60,
               "the resolution in the thread")
    wait_until(lambda: "RESOLVED" in texts(world.slack.message(CHANNEL, ts)), 30, "the message marked resolved")
    final = world.slack.message(CHANNEL, ts)
    assert final is not None
    assert not [block for block in final.get("blocks", []) if block["type"] == "actions"]
    assert len(world.top_level(CHANNEL, headline)) == 1
    resolved = world.book.incident(incident.id)
    assert resolved is not None
    assert not resolved.open
    assert resolved.duration is not None
