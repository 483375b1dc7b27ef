"""/svc metrics through the real Bolt app: a signed slash command, the answer at the response_url and the PNG
chart uploaded with files_upload_v2 (files.getUploadURLExternal + completeUploadExternal) to the sandbox Slack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(name="slack", scope="module")
def _slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture(name="http_bot")
def _http_bot(slack: SlackSandbox, sandbox_catalog: dict[str, Any], tmp_path: Path) -> Iterator[bot_app.Running]:
    slack.reset()
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(sandbox_catalog, sort_keys=False))
    environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
               "SVCBOT_SLACK_API_URL": slack.api_url}
    running = bot_app.start(path, port=0, health_port=0, environ=environ)
    yield running
    running.stop(grace=2)


def test_metrics_answer_with_the_chart_uploaded(slack: SlackSandbox, http_bot: bot_app.Running) -> None:
    assert http_bot.events_server is not None
    url = f"http://127.0.0.1:{http_bot.events_server.port}/slack/events"
    body, headers = slack.slash_command_request("metrics payment prod --since 10m")
    status, _ = slack.post(url, body, headers)
    assert status == 200
    target = parse_qs(body)["response_url"][0].rstrip("/").rsplit("/", 1)[-1]
    answer = slack.wait_for("response_url", timeout=30,
                            predicate=lambda call: call.target == target and call.status == 200)[0].args
    assert answer["response_type"] == "in_channel"
    assert "p99" in json.dumps(answer["blocks"])
    slack.wait_for("files.completeUploadExternal", timeout=30)
    files = slack.uploaded_files()
    assert len(files) == 1
    chart = files[0]
    assert chart.filename == "payment-prod-metrics.png"
    assert (chart.content or b"").startswith(PNG)
    assert "C0SANDBOX" in chart.channels
