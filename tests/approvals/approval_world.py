"""A sandbox world for the approval tests: the sandbox clusters, the sandbox Slack, a catalog whose rules ask
for approval in every environment (dev: expires in 2s; staging: quorum 2; prod: quorum 1), and bots started
against them (in this process, or `svcbot serve` as a separate process) on one shared store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.deploys.engine import RunSettings
from bot.deploys.store import FINAL, RequestRecord, State, Store
from bot.runtime import build_runtime
from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox
from sandbox.slack import payloads as slack_payloads
from sandbox.stack import SandboxStack

ALICE, BOB, CAROL, DAVE, ERIN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0ERIN"
REQUESTS_CHANNEL = "C0SANDBOX"
APPROVALS_CHANNEL = "C0APPROVALS"
# Fast runs; a long stale_after so no store ever marks another process's live run INTERRUPTED.
RUN_SETTINGS = RunSettings(heartbeat=0.2, lock_renew=0.5, poll=0.05, lease_duration=5, stale_after=60.0,
                           rollback_timeout=30.0)
ROOT = Path(__file__).resolve().parents[2]


def approvals_catalog(stack: SandboxStack) -> dict[str, Any]:
    """The sandbox catalog with approval rules in every environment and a quick pipeline for gateway and
    orders (set image, wait for the rollout, probe); payment keeps the standard pipeline (Jobs first)."""
    catalog = stack.catalog()
    catalog["settings"]["rate_limit"] = {"per_user": "600/min"}
    catalog["access"]["groups"] = {"oncall": [ALICE, BOB, CAROL], "release-managers": [CAROL, ERIN]}

    def rule(env: str, **approval: Any) -> dict[str, Any]:
        return {"verbs": ["deploy", "rollback"], "envs": [env], "who": ["oncall"],
                "approval": {"approvers": ["release-managers"], **approval}}

    catalog["access"]["rules"] = [
        {"verbs": ["status", "probe", "logs", "trace", "diff", "history"], "envs": ["*"], "who": ["*"]},
        rule("dev", quorum=1, expires="2s"),
        rule("staging", quorum=2, expires="30m"),
        rule("prod", quorum=1, self_approval=False, expires="30m"),
    ]
    catalog["pipelines"]["rollout"] = {
        "targets": {"deploy": {"on_failure": "rollback", "steps": [
            {"set_image": {"image": "{image}:{version}"}}, {"wait_rollout": {"timeout": "2m"}},
            {"probe": {"timeout": "30s"}}]}},
        "goal": "deploy",
    }
    for service in ("gateway", "orders", "inventory"):
        catalog["services"][service]["pipeline"] = "rollout"
    return catalog


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")


@dataclass
class ServeProcess:
    """`svcbot serve` in HTTP mode as a separate OS process."""

    process: subprocess.Popen[str]
    port: int
    health_port: int

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate(timeout=10)
        return self.process.returncode, stderr


@dataclass
class ApprovalWorld:
    stack: SandboxStack
    slack: SlackSandbox
    directory: Path
    catalog_path: Path
    db_path: Path
    kubeconfig: Path
    bots: list[bot_app.Running] = field(default_factory=list)
    processes: list[ServeProcess] = field(default_factory=list)
    _store: Store | None = None

    # --- bots ---------------------------------------------------------------------------------------

    def environ(self, *, socket_mode: bool = False) -> dict[str, str]:
        env = {"SLACK_BOT_TOKEN": self.slack.bot_token, "SLACK_SIGNING_SECRET": self.slack.signing_secret,
               "SVCBOT_SLACK_API_URL": self.slack.api_url}
        if socket_mode:
            env["SLACK_APP_TOKEN"] = self.slack.app_token
        return env

    def start_bot(self, *, socket_mode: bool = False, catalog_path: Path | None = None) -> bot_app.Running:
        """A bot in this process (HTTP mode, or Socket Mode) on the world's store."""
        runtime = build_runtime(catalog_path or self.catalog_path)
        runtime.deploys.run_settings = RUN_SETTINGS
        running = bot_app.start(catalog_path or self.catalog_path, port=0, health_port=0,
                                environ=self.environ(socket_mode=socket_mode), runtime=runtime)
        self.bots.append(running)
        if socket_mode:
            self.slack.wait_for_connections(1, timeout=10)
        return running

    def stop_bot(self, running: bot_app.Running) -> None:
        if running in self.bots:
            self.bots.remove(running)
            if running.socket_handler is not None:
                self.slack.close_socket_mode_client(running.socket_handler.client)
            running.stop(grace=15)

    def start_serve(self) -> ServeProcess:
        """`svcbot serve` (HTTP mode) as its own OS process on the same catalog, clusters and store."""
        port, health_port = free_port(), free_port()
        env = {**os.environ, **self.environ(), "SVCBOT_CATALOG": str(self.catalog_path),
               "SVCBOT_DB": str(self.db_path), "KUBECONFIG": str(self.kubeconfig),
               "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--health-port", str(health_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        served = ServeProcess(process, port, health_port)
        self.processes.append(served)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, "svcbot serve exited early"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return served
            except OSError:
                time.sleep(0.1)
        raise AssertionError("svcbot serve never became ready")

    @staticmethod
    def events_url(running: bot_app.Running) -> str:
        assert running.events_server is not None
        return f"http://127.0.0.1:{running.events_server.port}/slack/events"

    # --- Slack traffic ------------------------------------------------------------------------------

    def slash(self, url: str, text: str, user: str = ALICE, channel: str = REQUESTS_CHANNEL) -> None:
        body, headers = self.slack.slash_command_request(text, user_id=user, channel_id=channel)
        status, _ = self.slack.post(url, body, headers)
        assert status == 200

    def request_deploy(self, url: str, text: str, user: str = ALICE) -> RequestRecord:
        """Ask for a deploy in Slack; wait for its approval message; the PENDING request."""
        before = {request.id for request in self.store.requests(limit=500)}
        self.slash(url, text, user)

        def posted() -> RequestRecord | None:
            fresh = [request for request in self.store.requests(limit=500) if request.id not in before]
            return fresh[0] if fresh and fresh[0].thread_ts else None

        request = wait_until(posted, 20, f"the approval message of '{text}'")
        assert isinstance(request, RequestRecord)
        return request

    def click_payload(self, action: str, request: RequestRecord, user: str, **overrides: Any) -> dict[str, Any]:
        """Slack's block_actions payload for a click on the request's own message (its stored button)."""
        return self.slack.block_actions_payload(action, request.id, user_id=user, channel_id=request.channel,
                                                message_ts=overrides.pop("message_ts", request.thread_ts),
                                                **overrides)

    def post_payload(self, url: str, payload: Mapping[str, Any]) -> int:
        body = slack_payloads.interactive_body(payload)
        status, _ = self.slack.post(url, body, slack_payloads.sign_request(body, self.slack.signing_secret))
        return status

    def click(self, url: str, action: str, request: RequestRecord, user: str) -> int:
        return self.post_payload(url, self.click_payload(action, request, user))

    def ephemerals_for(self, user: str) -> list[dict[str, Any]]:
        return [message for message in self.slack.ephemerals() if message.get("user") == user]

    def wait_ephemeral(self, user: str, words: str, timeout: float = 20) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((message for message in self.ephemerals_for(user) if words in message.get("text", "")),
                        None)

        result = wait_until(found, timeout, f"an ephemeral to {user} saying {words!r}")
        assert isinstance(result, dict)
        return result

    def message(self, request: RequestRecord) -> dict[str, Any]:
        message = self.slack.message(request.channel, request.thread_ts)
        assert message is not None
        return message

    def updates_of(self, request: RequestRecord) -> list[Any]:
        return [call for call in self.slack.calls("chat.update") if call.args.get("ts") == request.thread_ts
                and call.args.get("channel") == request.channel]

    # --- the store and the clusters -----------------------------------------------------------------

    @property
    def store(self) -> Store:
        """A second handle on the bots' store, for the test's own reads (it never recovers runs)."""
        if self._store is None:
            self._store = Store.open(str(self.db_path), recover=False)
        return self._store

    def wait_state(self, request_id: str, states: frozenset[State] | set[State] = FINAL,
                   timeout: float = 60) -> RequestRecord:
        def reached() -> RequestRecord | None:
            request = self.store.request(request_id)
            return request if request.state in states else None

        result = wait_until(reached, timeout, f"request {request_id} in {sorted(states)}")
        assert isinstance(result, RequestRecord)
        return result

    def image(self, env: str, deployment: str) -> str:
        assert self.stack.kube is not None
        cluster, namespace = self.stack.kube.env(env)
        item = next(item for item in cluster.objects("apps/deployments", namespace)
                    if item["metadata"]["name"] == deployment)
        return str(item["spec"]["template"]["spec"]["containers"][0]["image"])

    def patches(self, env: str, deployment: str) -> list[tuple[str, str, int]]:
        """PATCH requests the environment's cluster received for one deployment (set image, undo)."""
        assert self.stack.kube is not None
        cluster, namespace = self.stack.kube.env(env)
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}"
        return [request for request in cluster.requests if request[0] == "PATCH" and request[1].split("?")[0] == path]

    def close(self) -> None:
        """Stop every bot and process and close the store; safe to call twice."""
        for running in list(self.bots):
            self.stop_bot(running)
        processes, self.processes = self.processes, []
        for served in processes:
            served.stop()
        store, self._store = self._store, None
        if store is not None:
            store.close()


def write_catalog(path: Path, catalog: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(catalog), sort_keys=False))
    return path
