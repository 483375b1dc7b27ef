"""A sandbox world for the /svc watch tests: the sandbox clusters and Slack, a bot (the real Bolt app over HTTP) on
a SQLite store, kubectl as the cluster's admin (changes made outside svcbot), and helpers that wait for Slack."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.deploys.engine import RunSettings
from bot.runtime import build_runtime
from bot.slack import serving as bot_app
from bot.watch.book import Book
from sandbox.slack import SlackSandbox
from sandbox.slack import payloads as slack_payloads
from sandbox.stack import SandboxStack

ALICE = "U0ALICE"
CHANNEL = "C0SANDBOX"
OUTSIDER_CHANNEL = "C0ELSEWHERE"  # a public channel the bot is not a member of
KUBECTL = Path(sys.executable).parent / "kubectl"
RUN_SETTINGS = RunSettings(heartbeat=0.2, lock_renew=0.5, poll=0.05, lease_duration=5, stale_after=60.0,
                           rollback_timeout=30.0)


def texts(value: Any) -> str:
    """Every text of a message (its `text` and every text inside its blocks), joined."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                if key == "text" and isinstance(inner, str):
                    found.append(inner)
                else:
                    walk(inner)
        elif isinstance(item, list):
            for inner in item:
                walk(inner)

    walk(value)
    return "\n".join(found)


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout}s")


@dataclass
class WatchWorld:
    stack: SandboxStack
    slack: SlackSandbox
    directory: Path
    catalog_path: Path
    running: bot_app.Running

    @property
    def book(self) -> Book:
        return Book(self.running.bot.runtime.deploys.store())

    @property
    def url(self) -> str:
        assert self.running.events_server is not None
        return f"http://127.0.0.1:{self.running.events_server.port}/slack/events"

    def slash(self, text: str, *, user: str = ALICE, channel: str = CHANNEL, answer: bool = True) -> str:
        """Send `/svc TEXT` as a signed request; the text of the answer that came back (ack or response_url)."""
        before = len(self.slack.response_posts())
        body, headers = self.slack.slash_command_request(text, user_id=user, channel_id=channel)
        status, ack = self.slack.post(self.url, body, headers)
        assert status == 200
        if ack.strip() or not answer:
            return ack
        posts = wait_until(lambda: self.slack.response_posts()[before:], 20, f"the answer to {text!r}")
        return texts(posts[0].args)

    def click(self, action_id: str, ts: str, *, user: str = ALICE, channel: str = CHANNEL, answer: bool = True) -> str:
        """Click a button of the message `ts` as `user`; the text of the private answer it gets (when `answer`)."""
        before = len(self.slack.response_posts())
        payload = self.slack.block_actions_payload(action_id, user_id=user, channel_id=channel, message_ts=ts)
        body = slack_payloads.interactive_body(payload)
        status, _ = self.slack.post(self.url, body, slack_payloads.sign_request(body, self.slack.signing_secret))
        assert status == 200
        if not answer:
            return ""
        posts = wait_until(lambda: self.slack.response_posts()[before:], 30, f"the answer to {action_id}")
        return texts(posts[0].args)

    def wait_watching(self, service: str, env: str) -> None:
        """Until the watcher judges `service` in `env` from streams that listed and are watching."""
        watching = self.running.watching
        assert watching is not None
        watcher = watching.watcher

        def ready() -> bool:
            target = next((t for t in watcher.watched() if (t.service, t.env) == (service, env)), None)
            if target is None:
                return False
            streams = [stream for key, stream in list(watcher.streams.items()) if key[:2] == (target.cluster,
                                                                                              target.namespace)]
            return len(streams) == 3 and all(stream.synced.is_set() and stream.watches for stream in streams)

        wait_until(ready, 30, f"the watcher watching {service} in {env}")

    def kubectl(self, *args: str, context: str = "sandbox-nonprod-admin") -> str:
        return self._kubectl([str(KUBECTL), "--context", context, *args])

    def kubectl_as_printed(self, command: str) -> str:
        """A `kubectl ...` command line as svcbot prints it (the demo banner's), run with the kubectl here."""
        argv = shlex.split(command)
        assert argv[0] == "kubectl", command
        return self._kubectl([str(KUBECTL), *argv[1:]])

    def _kubectl(self, argv: list[str]) -> str:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.directory / "kubectl-home"),
               "KUBECONFIG": str(self.directory / "sandbox" / "kubeconfig"),
               "KUBECACHEDIR": str(self.directory / "kubectl-home" / "cache")}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def top_level(self, channel: str = CHANNEL, containing: str = "") -> list[dict[str, Any]]:
        """The channel's top-level messages (not thread replies) whose texts contain `containing`."""
        return [message for message in self.slack.messages(channel)
                if not message.get("thread_ts") and containing in texts(message)]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return [message for message in self.slack.messages(channel, thread_ts=ts) if message.get("ts") != ts]


def watch_catalog(stack: SandboxStack, **watch: Any) -> dict[str, Any]:
    catalog = stack.catalog()
    catalog["settings"]["rate_limit"] = {"per_user": "600/min"}
    catalog["watch"] = {"update_every": "1s", "after_deploy": "2s", "resolve_after": "1s", "group_wait": "0.2s",
                        **watch}
    catalog["pipelines"]["rollout"] = {
        "targets": {"deploy": {"on_failure": "rollback", "steps": [
            {"set_image": {"image": "{image}:{version}"}}, {"wait_rollout": {"timeout": "20s"}},
            {"probe": {"timeout": "10s"}}]}},
        "goal": "deploy",
    }
    for service in catalog["services"].values():
        service["pipeline"] = "rollout"
    return catalog


def start_world(directory: Path, *, time_scale: float = 0.02, **watch: Any) -> Iterator[WatchWorld]:
    stack = SandboxStack.everything()
    stack.start(directory / "sandbox", time_scale=time_scale)
    slack = stack.slack
    assert isinstance(slack, SlackSandbox)
    saved = {key: os.environ.get(key) for key in ("KUBECONFIG", "SVCBOT_DB")}
    os.environ["KUBECONFIG"] = str(directory / "sandbox" / "kubeconfig")
    os.environ["SVCBOT_DB"] = str(directory / "svcbot.db")
    catalog_path = directory / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(watch_catalog(stack, **watch), sort_keys=False), encoding="utf-8")
    runtime = build_runtime(catalog_path)
    runtime.deploys.run_settings = RUN_SETTINGS
    runtime.deploys.store()  # opened now, at this world's SVCBOT_DB (tests change the environment per test)
    environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
               "SVCBOT_SLACK_API_URL": slack.api_url, "SVCBOT_BACKGROUND_INTERVAL": "0.2"}
    running = bot_app.start(catalog_path, port=0, health_port=0, environ=environ, runtime=runtime)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield WatchWorld(stack=stack, slack=slack, directory=directory, catalog_path=catalog_path, running=running)
    finally:
        running.stop(grace=5)
        stack.stop()
