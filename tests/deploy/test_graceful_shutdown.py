"""Graceful shutdown: readiness goes false first, running commands finish, runs still going are marked
INTERRUPTED and their requesters told in the run's thread."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest
from deploy_world import SANDBOX_SETTINGS, DeployWorld

from bot.deploys.store import State, Store
from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox


@pytest.fixture(name="slack")
def _slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


def readyz(running: bot_app.Running) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{running.health_server.port}/readyz", timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_stop_interrupts_a_stuck_run(world: DeployWorld, slack: SlackSandbox) -> None:
    """A run still going after the grace period ends INTERRUPTED, told in its thread; readiness went false first."""
    environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
               "SVCBOT_SLACK_API_URL": slack.api_url}
    running = bot_app.start(world.catalog_path, port=0, health_port=0, environ=environ)
    running.bot.runtime.deploys.run_settings = SANDBOX_SETTINGS
    assert world.stack.kube is not None
    cluster, _ = world.stack.kube.env("staging")
    cluster.controller.pause()  # the rollout never progresses: the run waits in a step
    try:
        assert running.events_server is not None
        body, headers = slack.slash_command_request("deploy orders staging 1.4.2", user_id="U0ALICE")
        assert slack.post(f"http://127.0.0.1:{running.events_server.port}/slack/events", body, headers)[0] == 200
        parent = slack.wait_for("chat.postMessage", timeout=20, predicate=lambda c: "thread_ts" not in c.args)[0]
        ts = parent.response["ts"]
        slack.wait_for("chat.postMessage", timeout=20,
                       predicate=lambda c: c.args.get("thread_ts") == ts and "▶" in c.args.get("text", ""))
        assert readyz(running) == 200
        started = time.monotonic()
        running.stop(grace=1.0)
        assert time.monotonic() - started < 15
        assert running.health.ready() == (False, "shutting down")
    finally:
        cluster.controller.resume()
    store = Store.open(str(world.db_path))
    try:
        requests = store.requests(service="orders", env="staging")
        assert [request.state for request in requests] == [State.INTERRUPTED]
        assert "svcbot stopped during the run" in requests[0].reason
    finally:
        store.close()
    thread = [message["text"] for message in slack.messages(thread_ts=ts)]
    assert any("INTERRUPTED" in text for text in thread)
