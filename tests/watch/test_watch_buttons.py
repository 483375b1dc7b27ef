"""The incident message's buttons through the real Bolt app (Logs, Status, Silence, Rollback), and svcbot's own
deploys: a deploy that crash-loops and rolls back opens no incident."""

from __future__ import annotations

from watch_world import CHANNEL, WatchWorld, texts, wait_until

BOB_NOT_ONCALL = "U0NOBODY"


def test_buttons_answer_and_rollback_resolves(world: WatchWorld) -> None:
    """Logs and Status answer the clicker privately; Silence by someone who may not watch is refused, by
    someone who may it silences the thread; Rollback runs /svc rollback as the clicker and the incident resolves."""
    world.slash("watch orders dev")
    world.kubectl("-n", "dev", "set", "image", "deployment/orders", "app=registry.example.com/orders:2.9.0")
    headline = "orders in dev: crash loop"
    ts = wait_until(lambda: world.top_level(CHANNEL, headline), 30, "the incident message")[0]["ts"]
    incident = world.book.incident_by_message(CHANNEL, ts)
    assert incident is not None

    logs = world.click("svc_incident_logs", ts)
    assert "orders" in logs
    assert "dev" in logs
    status = world.click("svc_incident_status", ts)
    assert "CrashLoopBackOff" in status or "restarts" in status

    silenced = world.click("svc_incident_silence_1h", ts)
    assert "silenced for an hour" in silenced
    wait_until(lambda: "silenced until" in texts(world.slack.message(CHANNEL, ts)), 30, "the message saying silenced")
    current = world.book.incident(incident.id)
    assert current is not None
    assert current.silenced_by == "U0ALICE"

    world.click("svc_incident_rollback", ts, answer=False)
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, ts)), 60,
               "the resolution after the rollback")
    requests = world.running.bot.runtime.deploys.store().requests(service="orders", env="dev")
    assert [request.kind for request in requests] == ["rollback"]
    assert requests[0].requester == "U0ALICE"


def test_svcbot_deploy_that_rolls_back_opens_no_incident(world: WatchWorld) -> None:
    """/svc deploy of a version the registry lacks (pods cannot pull it): its run fails, rolls back and says so
    in its thread; the watcher, watching that service, stays quiet (no incident, no message)."""
    world.slash("watch inventory dev")
    world.wait_watching("inventory", "dev")
    world.slash("deploy inventory dev 3.9.9", answer=False)  # answered in the channel, with its thread
    store = world.running.bot.runtime.deploys.store()
    ended = wait_until(lambda: [request for request in store.requests(service="inventory", env="dev")
                                if request.state.value == "ROLLED_BACK"], 90, "the run rolled back")[0]
    # The run is over: the watcher has judged inventory in dev past `after_deploy` with nothing to say.
    watching = world.running.watching
    assert watching is not None
    quiet_until = ended.updated_at + world.running.bot.runtime.catalog.watch.after_deploy + 1.0
    wait_until(lambda: watching.watcher.last_pass > quiet_until, 30, "an evaluation after the quiet time")
    assert world.top_level(CHANNEL, "incident: inventory in dev") == []
    assert [incident for incident in world.book.incidents(state=None)
            if (incident.service, incident.env) == ("inventory", "dev")] == []
