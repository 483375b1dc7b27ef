"""`svcbot serve` on SIGTERM gives running commands the grace period (SVCBOT_SHUTDOWN_GRACE), all of it and
no more: a command stuck on a stalled cluster is abandoned when the grace ends and the process exits 0,
instead of waiting for the stalled calls' own timeouts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from load_world import wait_until

from sandbox.slack import SlackSandbox
from sandbox.stack import SandboxStack

ROOT = Path(__file__).resolve().parents[2]
GRACE = 1.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_stuck_command_gets_the_grace_and_no_more(stack: SandboxStack, slack: SlackSandbox,
                                                    catalog: Callable[..., Path], tmp_path: Path) -> None:
    assert stack.kube is not None
    path = catalog(command_deadline="40s")  # the command alone would wait for the stalled cluster ~40 s
    port, health_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "SVCBOT_"))}
    env.update({"SVCBOT_CATALOG": str(path), "SVCBOT_DB": str(tmp_path / "svcbot.db"),
                "SVCBOT_SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": slack.signing_secret, "SVCBOT_SHUTDOWN_GRACE": f"{GRACE:g}"})
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--health-port", str(health_port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: ready(f"http://127.0.0.1:{health_port}/readyz"), timeout=30, what="svcbot serve ready")
        prod = stack.kube.cluster("prod")
        prod.faults.set(mode="stall", seconds=30)
        held = prod.faults.hits
        body, headers = slack.slash_command_request("status payment prod")
        status, _ = slack.post(f"http://127.0.0.1:{port}/slack/events", body, headers)
        assert status == 200
        # The command is running, stuck: its requests are held by the stalled cluster.
        wait_until(lambda: prod.faults.hits > held, timeout=30, what="the command's requests held by prod")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        stack.kube.clear_faults()
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, stderr[-2000:]
    # All of the grace (the process waits for the stuck command), and no more: far less than the stall (30 s)
    # or the command's deadline (40 s), with room for a busy machine to end the process.
    assert GRACE - 0.2 <= took < GRACE + 10.0, stderr[-3000:]
