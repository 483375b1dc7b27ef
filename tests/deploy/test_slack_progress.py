"""A deploy from Slack: the request message is posted, progress goes to its thread, and it is updated at the end."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest
from deploy_world import SANDBOX_SETTINGS, DeployWorld

from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox


@pytest.fixture(name="slack")
def _slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture(name="bot")
def _bot(world: DeployWorld, slack: SlackSandbox) -> Iterator[bot_app.Running]:
    environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
               "SVCBOT_SLACK_API_URL": slack.api_url}
    running = bot_app.start(world.catalog_path, port=0, health_port=0, environ=environ)
    running.bot.runtime.deploys.run_settings = SANDBOX_SETTINGS
    yield running
    running.stop(grace=10)


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_deploy_progress_in_thread(world: DeployWorld, slack: SlackSandbox, bot: bot_app.Running) -> None:
    """/svc deploy posts the request with chat.postMessage, threads progress under it, and updates it when done."""
    assert bot.events_server is not None
    body, headers = slack.slash_command_request("deploy payment staging 1.4.2", user_id="U0ALICE")
    status, _ = slack.post(f"http://127.0.0.1:{bot.events_server.port}/slack/events", body, headers)
    assert status == 200
    parent = slack.wait_for("chat.postMessage", timeout=20,
                            predicate=lambda call: "thread_ts" not in call.args)[0]
    ts = parent.response["ts"]
    assert "deploy" in parent.args["text"]
    wait_until(lambda: any("SUCCEEDED" in call.args.get("text", "") for call in slack.calls("chat.update")), 60)
    thread = [message["text"] for message in slack.messages("C0SANDBOX", thread_ts=ts)]
    joined = "\n".join(thread)
    assert "set image" in joined or "set_image" in joined
    assert "SUCCEEDED" in joined
    assert world.image("staging", "payment-api").endswith(":1.4.2")
    times = [call.at for call in slack.calls("chat.postMessage") if call.args.get("thread_ts") == ts]
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    update = slack.calls("chat.update")[-1]
    assert update.args["ts"] == ts
    assert "SUCCEEDED" in json.dumps(update.args["blocks"])
