"""`svcbot serve` as a process: HTTP mode answers a signed /svc help, stops on SIGTERM, never logs secrets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.logging import MASK, mask_secrets
from sandbox.slack import SlackSandbox

SECRET = "s3cr3t-signing-value"
TOKEN = "xoxb-1234-abcdefghijkl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="slack")
def _slack() -> Iterator[SlackSandbox]:
    with SlackSandbox(bot_token=TOKEN, signing_secret=SECRET) as sandbox:
        yield sandbox


def wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "svcbot serve exited early"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("svcbot serve never became ready")


def test_serve_http_mode(slack: SlackSandbox, example_catalog_path: Path) -> None:
    """serve listens on --port, answers a signed /svc help at the sandbox Slack, exits 0 on SIGTERM."""
    port, health_port = free_port(), free_port()
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
           "SVCBOT_SLACK_API_URL": slack.api_url, "SVCBOT_CATALOG": str(example_catalog_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--health-port", str(health_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{health_port}/readyz", process)
        body, headers = slack.slash_command_request("help")
        status, _ = slack.post(f"http://127.0.0.1:{port}/slack/events", body, headers)
        assert status == 200
        post = slack.wait_for("response_url", timeout=10)[0]
        assert "svcbot commands" in str(post.args)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert stdout == ""
    assert '"command.finished"' in stderr
    assert TOKEN not in stderr
    assert SECRET not in stderr


def test_mask_secrets_processor() -> None:
    """Values under secret-looking keys and token-shaped strings are masked before rendering."""
    event = mask_secrets(None, "info", {
        "event": "x", "slack_token": "abc", "url": "https://user:hunter2@db.example.com/x",
        "detail": f"called with {TOKEN}", "nested": {"password": "p", "ok": "fine"},
    })
    assert event["slack_token"] == MASK
    assert "hunter2" not in event["url"]
    assert TOKEN not in event["detail"]
    assert event["nested"] == {"password": MASK, "ok": "fine"}
