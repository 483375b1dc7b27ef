"""A deploy from Slack: the request message is posted, progress goes to its thread, and it is updated at the end."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest
from deploy_world import SANDBOX_SETTINGS, DeployWorld

from bot.deploys.store import Store
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


def wait_until(check: object, timeout: float = 30.0, slack: SlackSandbox | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    said = [call.args.get("text") for call in slack.response_posts()] if slack is not None else []
    raise AssertionError(f"condition not met in time; answers: {said}")


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
    # The bot starts its thread posts 1 s apart (one channel, bot/slack/progress.py); the sandbox sees them
    # arrive that far apart give or take how long each took to get there, which a busy machine stretches.
    # Without the spacing they would arrive milliseconds apart.
    times = [call.at for call in slack.calls("chat.postMessage") if call.args.get("thread_ts") == ts]
    assert len(times) >= 2
    assert all(later - earlier >= 0.5 for earlier, later in itertools.pairwise(times))
    update = slack.calls("chat.update")[-1]
    assert update.args["ts"] == ts
    assert "SUCCEEDED" in json.dumps(update.args["blocks"])


def test_notes_reach_the_thread(world: DeployWorld, slack: SlackSandbox, bot: bot_app.Running) -> None:
    """While a rollout waits, the engine's notes (what the new pods are doing) are lines in the thread."""
    assert bot.events_server is not None
    url = f"http://127.0.0.1:{bot.events_server.port}/slack/events"
    # payment 1.5.2 answers readiness 503: its new pods never become ready.
    body, headers = slack.slash_command_request("deploy payment staging 1.5.2", user_id="U0ALICE")
    assert slack.post(url, body, headers)[0] == 200
    parent = slack.wait_for("chat.postMessage", timeout=20, predicate=lambda call: "thread_ts" not in call.args)[0]
    ts = parent.response["ts"]
    note = slack.wait_for("chat.postMessage", timeout=60, predicate=lambda call: call.args.get("thread_ts") == ts
                          and "Readiness probe failed" in call.args["text"])
    assert "… [4/5] deploy: 1 of 2 updated" in note[0].args["text"]
    store = Store.open(str(world.db_path), recover=False)  # a reader: it never marks the bot's run INTERRUPTED
    try:
        request = store.requests(service="payment", env="staging")[0]
    finally:
        store.close()
    body, headers = slack.slash_command_request(f"cancel {request.id}", user_id="U0ALICE")
    assert slack.post(url, body, headers)[0] == 200
    wait_until(lambda: any("CANCELLED" in json.dumps(call.args) for call in slack.calls("chat.update")), 60, slack)


def test_rate_limited_thread_waits_out_retry_after(world: DeployWorld, slack: SlackSandbox,
                                                  bot: bot_app.Running) -> None:
    """Slack answering 429 to the thread's posts (beyond slack_sdk's own retries) holds the channel for its
    Retry-After; the lines stay owed in the store and all arrive afterwards, the outcome too."""
    assert bot.events_server is not None
    body, headers = slack.slash_command_request("deploy payment staging 1.4.3", user_id="U0ALICE")
    assert slack.post(f"http://127.0.0.1:{bot.events_server.port}/slack/events", body, headers)[0] == 200
    parent = slack.wait_for("chat.postMessage", timeout=20, predicate=lambda call: "thread_ts" not in call.args)[0]
    slack.set_fault("chat.postMessage", "ratelimited", retry_after=2, times=3)  # the first try and both retries
    ts = parent.response["ts"]
    wait_until(lambda: any("SUCCEEDED" in call.args.get("text", "") for call in slack.calls("chat.update")), 90)
    posts = [call for call in slack.calls("chat.postMessage") if call.args.get("thread_ts") == ts]
    refused = [call for call in posts if call.status == 429]
    taken = [call for call in posts if call.status == 200]
    assert len(refused) == 3
    assert taken
    assert taken[0].at - refused[-1].at >= 1.5  # held for Retry-After (2 s), give or take the sandbox's timing
    thread = "\n".join(message["text"] for message in slack.messages("C0SANDBOX", thread_ts=ts))
    for words in ("▶ [1/", "✓ [1/", "SUCCEEDED"):
        assert words in thread
