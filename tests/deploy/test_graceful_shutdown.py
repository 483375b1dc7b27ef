"""Graceful shutdown: readiness goes false first, running commands finish, runs still going are marked
INTERRUPTED and their requesters told in the run's thread. And Ctrl-C in the terminal (`svcbot run`, the
shell): never a hang, a traceback or a rollout left half done."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from deploy_world import SANDBOX_SETTINGS, DeployWorld

from bot.deploys.store import RequestRecord, State, Store
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


# --- Ctrl-C in the terminal (issue 16 item 5): real processes, real signals, a pseudo-terminal --------------

ROOT = Path(__file__).resolve().parents[2]
PROMPT = b"svc> "


def terminal_env(world: DeployWorld, tmp: Path) -> dict[str, str]:
    """The terminal's environment on the world, with gateway deployed by the quick pipeline (set image, wait,
    probe): staging runs a healthy gateway 1.0.0, and 0.9.5 is in the registry."""
    catalog = yaml.safe_load(world.catalog_path.read_text())
    catalog["services"]["gateway"]["pipeline"] = "rollout"
    world.catalog_path.write_text(yaml.safe_dump(catalog))
    return {**os.environ, "PYTHONPATH": str(ROOT), "SVCBOT_CATALOG": str(world.catalog_path),
            "SVCBOT_DB": str(world.db_path), "XDG_STATE_HOME": str(tmp / "state"),
            "SVCBOT_HISTORY": str(tmp / "history"), "COLUMNS": "120", "LINES": "40", "TERM": "dumb"}


class Lines:
    """A process's stdout read line by line on a thread, so a test can wait for a line."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, words: str, timeout: float = 60) -> str:
        with self._changed:
            found = self._changed.wait_for(lambda: any(words in line for line in self.lines), timeout)
        assert found, f"no line with {words!r} within {timeout}s: {self.lines}"
        return next(line for line in self.lines if words in line)

    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def all(self) -> str:
        """Everything, once the stream has ended."""
        self._thread.join(30)
        return self.text()


def request_of(world: DeployWorld, service: str) -> RequestRecord:
    store = Store.open(str(world.db_path), recover=False)
    try:
        return store.requests(service=service, env="staging")[0]
    finally:
        store.close()


def started_run(world: DeployWorld, tmp: Path) -> tuple[subprocess.Popen[str], Lines, Any]:
    """`svcbot run "deploy gateway staging 0.9.5"` as a process, with staging's rollouts paused: returned once
    it waits for the rollout."""
    assert world.stack.kube is not None
    cluster, _ = world.stack.kube.env("staging")
    cluster.controller.pause()
    command = [sys.executable, "-m", "bot.cli", "run", "deploy gateway staging 0.9.5", "--as", "alice"]
    process = subprocess.Popen(command, env=terminal_env(world, tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    assert process.stdout is not None
    out = Lines(process.stdout)
    out.wait_for("▶ [2/3]")  # set image done, waiting for the rollout
    return process, out, cluster


def test_run_ctrl_c_cancels_with_rollback(world: DeployWorld, tmp_path: Path) -> None:
    """`svcbot run` owns its run: Ctrl-C cancels it, the rollout is rolled back, exit 3, no traceback."""
    before = world.image("staging", "gateway")
    process, out, cluster = started_run(world, tmp_path)
    try:
        process.send_signal(signal.SIGINT)
        cluster.controller.resume()
        code = process.wait(timeout=120)
    finally:
        cluster.controller.resume()
        if process.poll() is None:
            process.kill()
    assert process.stderr is not None
    stderr = process.stderr.read()
    out.all()
    assert code == 3, (out.text(), stderr)
    assert "Traceback" not in stderr + out.text()
    assert "cancelling deploy" in stderr
    assert "CANCELLED" in out.text(), (out.text(), stderr)
    request = request_of(world, "gateway")
    assert request.state is State.CANCELLED
    assert world.image("staging", "gateway") == before  # rolled back, not left half done


def test_run_second_ctrl_c_leaves_it_interrupted(world: DeployWorld, tmp_path: Path) -> None:
    """A second Ctrl-C stops waiting for the rollback: the run is marked INTERRUPTED and the process leaves."""
    process, out, cluster = started_run(world, tmp_path)
    assert process.stderr is not None
    errors = Lines(process.stderr)
    try:
        process.send_signal(signal.SIGINT)
        errors.wait_for("cancelling deploy")
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        cluster.controller.resume()
        if process.poll() is None:
            process.kill()
    assert code == 3, (out.text(), errors.text())
    assert "Traceback" not in errors.text() + out.text()
    assert "marked INTERRUPTED" in errors.text()
    assert request_of(world, "gateway").state is State.INTERRUPTED


class Pty:
    """A command on a pseudo-terminal: Ctrl-C typed there is SIGINT to it, as in a person's terminal."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, *argv], env)
        self.screen = ""

    def read_until(self, marker: bytes, timeout: float = 120.0) -> str:
        got = b""
        deadline = time.monotonic() + timeout
        while marker not in got:
            assert time.monotonic() < deadline, f"no {marker!r} within {timeout}s; screen: {got[-2000:]!r}"
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
        text = got.decode(errors="replace").replace("\r\n", "\n")
        self.screen += text
        return text

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def exit_code(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                with contextlib.suppress(OSError):
                    self.screen += os.read(self.fd, 65536).decode(errors="replace")
        raise AssertionError(f"still running after {timeout}s; screen: {self.screen[-2000:]}")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def test_shell_ctrl_c_stops_watching_and_leaving_cancels(world: DeployWorld, tmp_path: Path) -> None:
    """In the shell, Ctrl-C during a deploy returns to the prompt at once naming the run and how to cancel it;
    leaving asks, then cancels it with rollback and waits for that; no traceback anywhere."""
    assert world.stack.kube is not None
    cluster, _ = world.stack.kube.env("staging")
    before = world.image("staging", "gateway")
    env = terminal_env(world, tmp_path)
    cluster.controller.pause()
    shell = Pty(["-m", "bot.cli", "shell", "--as", "alice"], env)
    try:
        shell.read_until(PROMPT)
        shell.type("deploy gateway staging 0.9.5\n")
        shell.read_until("▶ [2/3]".encode())
        started = time.monotonic()
        shell.type("\x03")
        stopped = shell.read_until(PROMPT, timeout=30)
        assert time.monotonic() - started < 10  # at once, not when the rollout ends
        request = request_of(world, "gateway")
        assert "stopped watching" in stopped
        assert f"cancel {request.id}" in stopped
        assert request.state is State.RUNNING  # it goes on
        shell.type("exit\n")
        shell.read_until(b"[y/N] ")
        cluster.controller.resume()
        shell.type("y\n")
        assert shell.exit_code() == 0
    finally:
        cluster.controller.resume()
        shell.kill()
    assert "Traceback" not in shell.screen
    assert "CANCELLED" in shell.screen
    assert request_of(world, "gateway").state is State.CANCELLED
    assert world.image("staging", "gateway") == before


def test_demo_leaves_only_after_the_cancelled_deploy_rolled_back(tmp_path: Path) -> None:
    """`svcbot demo`: Ctrl-C during a deploy returns to the prompt; Ctrl-D asks, cancels it with rollback and
    waits for that before the sandbox stops (no "invalid kubeconfig" or failed rollback from a sandbox torn
    down under it); no traceback."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "SVCBOT_HISTORY": str(tmp_path / "history"),
           "COLUMNS": "120", "LINES": "40", "TERM": "dumb", "PYTHONPATH": str(ROOT)}
    env.pop("SVCBOT_DB", None)  # the demo keeps its store with its world, in --dir
    demo = Pty(["-m", "bot.cli", "demo", "--dir", str(tmp_path / "demo")], env)
    try:
        demo.read_until(PROMPT)
        demo.type("deploy gateway dev 0.9.5\n")
        demo.read_until("▶ [4/6]".encode())  # the image set, the rollout under way (the demo pipeline ends in verify)
        demo.type("\x03")
        stopped = demo.read_until(PROMPT, timeout=30)
        assert "stopped watching" in stopped
        demo.type("\x04")
        demo.read_until(b"[y/N] ")
        demo.type("y\n")
        assert demo.exit_code(timeout=300) == 0
    finally:
        demo.kill()
    assert "Traceback" not in demo.screen
    assert "invalid kubeconfig" not in demo.screen
    assert "CANCELLED" in demo.screen
    store = Store.open(str(tmp_path / "demo" / "svcbot.db"), recover=False)
    try:
        request = store.requests(service="gateway", env="dev")[0]
        assert request.state is State.CANCELLED
        assert "rolled back" in (store.run(request.id) or pytest.fail("no run")).rollback
    finally:
        store.close()
