"""Helpers for the load and fault tests: catalogs with short deadlines, and a bot over signed HTTP whose every
command is followed from its POST to the answer at its own response_url on the sandbox Slack."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bot.slack import serving as bot_app
from sandbox.slack import Call, SlackSandbox

DEADLINE = 3.0  # seconds: the command deadline of the test catalogs (short, so stalls end quickly)
# Seconds allowed on top of the deadline for rendering and the response_url post: generous, so a busy 2-core
# machine passes, and still far below what a stall would cost (the sandbox's stalls last 30 s).
SLACK_MARGIN = 3.0
ACK_DEADLINE = 3.0  # seconds: Slack's own limit for acknowledging a slash command or an envelope
# A stalled cluster: the command stops waiting at its deadline, or the client's own timeout (fitted to the
# same deadline) fires first; either way the answer says prod did not answer.
NO_ANSWER = re.compile(r"cluster prod did not answer within \d+s|cluster prod unreachable: no answer within \d")
BREAKER_OPEN = re.compile(r"cluster prod unreachable since \d\d:\d\d UTC \((\d+) failures in a row\)")


def write_catalog(source: Path, target: Path, extra_services: Sequence[str] = (), **settings: Any) -> Path:
    """The sandbox catalog with a short deadline and a generous rate limit, `settings` overriding both;
    `extra_services` are deployments like payment's (see create_deployment)."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    raw["settings"].update({"command_deadline": f"{DEADLINE:g}s", "rate_limit": {"per_user": "1000/min"}})
    raw["settings"].update(settings)
    for name in extra_services:
        raw["services"][name] = {**raw["services"]["payment"], "deployment": name}
    target.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return target


def create_deployment(kubeconfig: Path, context: str, namespace: str, name: str) -> None:
    """A small deployment through the sandbox's Kubernetes API (the sandbox's controller adds its pods)."""
    api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig), context=context,
                                                   persist_config=False)
    labels = {"app": name}
    container = {"name": "app", "image": "registry.example.com/payment:1.4.2",
                 "ports": [{"name": "http", "containerPort": 8080}]}
    try:
        k8s.AppsV1Api(api_client).create_namespaced_deployment(namespace, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
        })
    finally:
        api_client.close()


def message_text(value: Any) -> str:
    """Every text in a message (its `text` and the texts inside its blocks), one per line."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, Mapping):
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


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not met within {timeout}s")


@dataclass(frozen=True)
class Sent:
    """One slash command POSTed to the bot, and what its ack said."""

    text: str
    user: str
    response_id: str  # the id of its response_url at the sandbox: where its answer must land
    status: int
    ack: str  # the ack's body ("" for a bare ack)
    sent_at: float  # time.monotonic() just before the POST
    ack_seconds: float

    @property
    def ack_text(self) -> str:
        if not self.ack:
            return ""
        try:
            return message_text(json.loads(self.ack))
        except ValueError:
            return self.ack


class HttpBot:
    """A started bot (bot.slack.serving.start) in HTTP mode, driven with signed requests from the sandbox Slack."""

    def __init__(self, running: bot_app.Running, slack: SlackSandbox) -> None:
        self.running = running
        self.slack = slack
        assert running.events_server is not None
        self.events_url = f"http://127.0.0.1:{running.events_server.port}/slack/events"
        self.health_url = f"http://127.0.0.1:{running.health_server.port}"

    def send(self, text: str, user: str = "U0DAVE") -> Sent:
        body, headers = self.slack.slash_command_request(text, user_id=user)
        response_url = parse_qs(body)["response_url"][0]
        started = time.monotonic()
        status, answer = self.slack.post(self.events_url, body, headers)
        return Sent(text=text, user=user, response_id=response_url.rstrip("/").rsplit("/", 1)[-1], status=status,
                    ack=answer, sent_at=started, ack_seconds=time.monotonic() - started)

    def answers(self, sent: Sent) -> list[Call]:
        """Posts to this command's response_url that Slack accepted (retried attempts excluded)."""
        return [call for call in self.slack.response_posts(sent.response_id) if call.status == 200]

    def wait_answer(self, sent: Sent, timeout: float = DEADLINE + 5) -> Call:
        """The first accepted post to the command's response_url (raises TimeoutError when none comes)."""
        return self.slack.wait_for("response_url", timeout=timeout,
                                   predicate=lambda call: call.target == sent.response_id and call.status == 200)[0]

    def answer_text(self, sent: Sent, timeout: float = DEADLINE + 5) -> tuple[str, float]:
        """(the answer's text, seconds from the POST to the answer)."""
        call = self.wait_answer(sent, timeout)
        return message_text(call.args), call.at - sent.sent_at

    def metrics(self) -> str:
        return http_get(self.health_url + "/metrics")[1]

    def metric(self, name: str, labels: str = "") -> float | None:
        """A sample's value from /metrics, e.g. metric("svcbot_circuit_state", 'backend="cluster prod"')."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.metrics().splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return None
