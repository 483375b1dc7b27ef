"""A throwaway world for /svc diff tests: a catalog in a folder, `payment` profiles the tests write,
and one command answered with both renderings."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from bot.render.slack import render as render_slack
from bot.render.views import to_document
from bot.replies.base import Reply
from bot.runtime import Runtime, build_runtime
from bot.terminal.shell import render_reply

CATALOG = """\
settings: {default_env: prod, rate_limit: {per_user: 100000/min}}  # the property test runs hundreds
clusters:
  nonprod: {context: nonprod-eu}
  prod: {context: prod-eu}
environments:
  dev: {cluster: nonprod, namespace: dev}
  staging: {cluster: nonprod, namespace: staging}
  prod: {cluster: prod, namespace: prod}
secrets:
  key_patterns: [password, passwd, secret, token, "api_?key", credential, private, dsn]
services:
  payment:
    deployment: payment-api
    config: {dir: configs/payment, pattern: "application-{profile}.yaml"%(ref)s}
  orders: {}
access:
  rules:
    - {verbs: [diff], envs: ["*"], who: ["*"]}
"""


@dataclass
class Answer:
    """One command's reply with both renderings."""

    reply: Reply
    text: str  # bot.terminal.shell.render_reply
    slack: str  # bot.render.slack.render(...) as JSON, the attached file included

    @property
    def data(self) -> object:
        return getattr(self.reply, "diff", None)


def answer_for(runtime: Runtime, command: str) -> Answer:
    reply = runtime.dispatcher.execute(command, "U0ALICE", source="terminal", follow_runs=True)
    message = render_slack(to_document(reply))
    attachment = message.attachment.content if message.attachment is not None else ""
    slack = json.dumps({"text": message.text, "blocks": message.blocks, "file": attachment}, ensure_ascii=False)
    return Answer(reply=reply, text=render_reply(reply), slack=slack)


@dataclass
class World:
    root: Path
    runtime: Runtime

    @property
    def configs(self) -> Path:
        return self.root / "configs" / "payment"

    def write(self, env: str, text: str) -> Path:
        path = self.configs / f"application-{env}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def run(self, command: str) -> Answer:
        return answer_for(self.runtime, command)


def make_world(root: Path, ref: str | None = None) -> World:
    (root / "configs" / "payment").mkdir(parents=True, exist_ok=True)
    catalog = root / "catalog.yaml"
    catalog.write_text(CATALOG % {"ref": f", ref: {ref}" if ref else ""}, encoding="utf-8")
    return World(root=root, runtime=build_runtime(catalog))
