"""`svcbot serve` as a separate process for the benchmarks (ack_bench, startup_bench): started against the
sandbox, waited for on /readyz, its memory read from /proc, stopped with SIGTERM; plus a load driver that
sends signed slash commands from many client threads and follows each one to its answer at the sandbox Slack.

The bot runs in its own process so the load generator and the sandbox (in the benchmark's process) do not
share its interpreter lock, and so its memory is its own.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.slack import SlackSandbox  # noqa: E402
from sandbox.stack import SandboxStack  # noqa: E402

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` (0..1) of the values fall (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (bytes) and Threads of a process, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
        elif key == "Threads":
            out[key] = int(value)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_catalog(stack: SandboxStack, path: Path, *, prometheus: bool = True, **settings: Any) -> Path:
    """The sandbox catalog with the per-user rate limit out of the way and `settings` applied; without
    `prometheus`, no Prometheus (status then does the work it did before it showed error rate and p99)."""
    assert stack.directory is not None
    raw = yaml.safe_load((stack.directory / "catalog.yaml").read_text(encoding="utf-8"))
    if not prometheus:
        raw.pop("prometheus", None)
        for cluster in raw.get("clusters", {}).values():
            cluster.pop("prometheus", None)
        for pipeline in raw.get("pipelines", {}).values():  # verify steps need a Prometheus
            for target in pipeline.get("targets", {}).values():
                target["steps"] = [step for step in target.get("steps", []) if "verify" not in step]
    raw["settings"]["rate_limit"] = {"per_user": "1000000/min"}
    raw["settings"].update(settings)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


class ServeProcess:
    """`python -m bot.cli serve` on free ports, pointed at the sandbox (HTTP mode unless socket=True)."""

    def __init__(self, stack: SandboxStack, catalog: Path, *, socket_mode: bool = False,
                 log_level: str = "WARNING") -> None:
        assert stack.directory is not None
        slack = stack.slack
        assert isinstance(slack, SlackSandbox)
        self.port, self.health_port = free_port(), free_port()
        self._folder = tempfile.TemporaryDirectory(prefix="svcbot-serve-")
        folder = Path(self._folder.name)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("SLACK_", "SVCBOT_")) and key != "KUBECONFIG"}
        env.update({"KUBECONFIG": str(stack.directory / "kubeconfig"), "SVCBOT_CATALOG": str(catalog),
                    "SVCBOT_DB": str(folder / "svcbot.db"), "SVCBOT_SLACK_API_URL": slack.api_url,
                    "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret})
        if socket_mode:
            env["SLACK_APP_TOKEN"] = slack.app_token
        self.stderr_path = folder / "stderr.log"
        self._stderr = self.stderr_path.open("w", encoding="utf-8")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "--log-level", log_level, "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--health-port", str(self.health_port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self.events_url = f"http://127.0.0.1:{self.port}/slack/events"
        self.readyz_url = f"http://127.0.0.1:{self.health_port}/readyz"

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.readyz_url, timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def wait_ready(self, timeout: float = 60.0, poll: float = 0.01) -> float:
        """Seconds from the process start to the first 200 from /readyz."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"svcbot serve exited with {self.process.returncode}: {self.stderr_tail()}")
            if self.ready():
                return time.monotonic() - self.started
            time.sleep(poll)
        raise RuntimeError(f"svcbot serve not ready after {timeout}s: {self.stderr_tail()}")

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def rss_mib(self) -> float:
        return self.status().get("VmRSS", 0) / MIB

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 60.0) -> tuple[int | None, float]:
        """SIGTERM; (exit code, seconds to exit)."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._stderr.close()
        seconds = time.monotonic() - started
        code = self.process.returncode
        self._folder.cleanup()
        return code, seconds

    def stderr_tail(self, lines: int = 20) -> str:
        self._stderr.flush()
        try:
            return "\n".join(self.stderr_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.returncode is None:
            self.stop()


class Sampler:
    """Peak RSS and thread count of a process, sampled every `interval` seconds while in use."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            status = proc_status(self.pid)
            self.peak_rss = max(self.peak_rss, status.get("VmRSS", 0))
            self.peak_threads = max(self.peak_threads, status.get("Threads", 0))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# --- load -------------------------------------------------------------------------------------------------

@dataclass
class Command:
    """One slash command sent, and what became of it."""

    text: str
    user: str
    response_id: str
    sent_at: float
    ack_seconds: float = 0.0
    ack_text: str = ""
    ok: bool = True  # the ack came (HTTP 200, or a Socket Mode ack)
    answers: int = 0
    answer_seconds: float | None = None


@dataclass
class Phase:
    """A batch of commands: their acks and answers."""

    commands: list[Command] = field(default_factory=list)
    seconds: float = 0.0  # from the first send to the last answer (or the wait giving up)

    def acks_ms(self) -> list[float]:
        return [command.ack_seconds * 1000 for command in self.commands if command.ok]

    def answers_s(self) -> list[float]:
        return [command.answer_seconds for command in self.commands if command.answer_seconds is not None]

    @property
    def answered(self) -> int:
        return sum(1 for command in self.commands if command.answers >= 1)

    @property
    def duplicates(self) -> int:
        return sum(1 for command in self.commands if command.answers > 1)

    def acked_with(self, words: str) -> int:
        return sum(1 for command in self.commands if words in command.ack_text)


def drive(count: int, clients: int, send_one: Callable[[int], Command]) -> list[Command]:
    """Send `count` commands from `clients` threads, each sending its next as soon as the last is acked."""
    sent: list[Command] = []
    lock = threading.Lock()
    counter = iter(range(count))

    def client() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            command = send_one(index)
            with lock:
                sent.append(command)

    threads = [threading.Thread(target=client, name=f"client-{index}") for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def http_sender(slack: SlackSandbox, events_url: str, text: str) -> Callable[[int], Command]:
    """Signed slash commands over HTTP; the ack latency is the client's round trip."""

    def send(index: int) -> Command:
        user = f"U0LOAD{index % 1000:03d}"
        body, headers = slack.slash_command_request(text, user_id=user)
        response_id = parse_qs(body)["response_url"][0].rsplit("/", 1)[-1]
        command = Command(text=text, user=user, response_id=response_id, sent_at=time.monotonic())
        try:
            status, answer = slack.post(events_url, body, headers, timeout=30)
        except OSError as exc:
            command.ok, command.ack_text = False, str(exc)
            return command
        command.ack_seconds = time.monotonic() - command.sent_at
        command.ok = status == 200
        command.ack_text = answer
        return command

    return send


def socket_sender(slack: SlackSandbox, text: str) -> Callable[[int], Command]:
    """Slash command envelopes over Socket Mode; the ack latency is measured by the sandbox endpoint."""

    def send(index: int) -> Command:
        user = f"U0LOAD{index % 1000:03d}"
        response_url = slack.response_url(channel_id="C0SANDBOX", user_id=user)
        command = Command(text=text, user=user, response_id=response_url.rsplit("/", 1)[-1],
                          sent_at=time.monotonic())
        try:
            ack = slack.wait_for_ack(slack.send_slash_command(text, user_id=user, response_url=response_url),
                                     timeout=30)
        except (TimeoutError, OSError) as exc:
            command.ok, command.ack_text = False, str(exc)
            return command
        command.ack_seconds = ack.latency if ack.latency is not None else ack.at - command.sent_at
        command.ack_text = str((ack.payload or {}).get("text", ""))
        return command

    return send


def follow(slack: SlackSandbox, commands: list[Command], timeout: float) -> None:
    """Wait (up to `timeout`) until every command's response_url got an answer; record answers and times."""
    deadline = time.monotonic() + timeout
    wanted = {command.response_id: command for command in commands}
    while True:
        posts: dict[str, list[float]] = {}
        for call in slack.calls("response_url"):
            if call.status == 200 and call.target in wanted:
                posts.setdefault(call.target, []).append(call.at)
        if len(posts) >= len(wanted) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # a duplicate answer would arrive right behind the first
    for call in slack.calls("response_url"):
        if call.status == 200 and call.target in wanted and call.target not in posts:
            posts.setdefault(call.target, []).append(call.at)
    for response_id, times in posts.items():
        command = wanted[response_id]
        command.answers = len(times)
        command.answer_seconds = min(times) - command.sent_at


def run_phase(slack: SlackSandbox, count: int, clients: int, send_one: Callable[[int], Command],
              answer_timeout: float) -> Phase:
    started = time.monotonic()
    commands = drive(count, clients, send_one)
    follow(slack, commands, answer_timeout)
    return Phase(commands=commands, seconds=time.monotonic() - started)


def stall_clusters(stack: SandboxStack, seconds: float) -> None:
    assert stack.kube is not None
    for cluster in stack.kube.clusters.values():
        cluster.faults.set(mode="stall", seconds=seconds)

