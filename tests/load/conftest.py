"""Fixtures for the load and fault tests: one sandbox stack (Kubernetes, seeded Loki, Slack) for the whole
directory, faults cleared after each test, and bots started from catalogs with a short command deadline."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from load_world import HttpBot, create_deployment, write_catalog

from bot.slack import serving as bot_app
from sandbox.loki import LokiSandbox
from sandbox.slack import SlackSandbox
from sandbox.stack import SandboxStack

HERE = Path(__file__).parent

@pytest.fixture(name="stack", scope="session")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    with SandboxStack.everything() as stack:
        stack.start(tmp_path_factory.mktemp("load-sandbox"), time_scale=0.02)
        yield stack


@pytest.fixture(name="slack")
def _slack(stack: SandboxStack) -> SlackSandbox:
    assert isinstance(stack.slack, SlackSandbox)
    return stack.slack


@pytest.fixture(name="loki")
def _loki(stack: SandboxStack) -> LokiSandbox:
    assert isinstance(stack.loki, LokiSandbox)
    return stack.loki


@pytest.fixture(name="catalog")
def _catalog(stack: SandboxStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A factory: catalog(**settings) writes the sandbox catalog with a 3 s deadline and these settings."""
    assert stack.directory is not None
    monkeypatch.setenv("KUBECONFIG", str(stack.directory / "kubeconfig"))
    counter = iter(range(1000))

    def make(extra_services: Sequence[str] = (), **settings: Any) -> Path:
        assert stack.directory is not None
        return write_catalog(stack.directory / "catalog.yaml", tmp_path / f"catalog-{next(counter)}.yaml",
                             extra_services, **settings)

    return make


@pytest.fixture(name="start_bot")
def _start_bot(stack: SandboxStack, slack: SlackSandbox, loki: LokiSandbox,
               catalog: Callable[..., Path]) -> Iterator[Callable[..., HttpBot]]:
    """A factory of bots in HTTP mode on the sandbox; faults are cleared before they are stopped."""
    slack.reset()
    bots: list[HttpBot] = []

    def start(extra_services: Sequence[str] = (), **settings: Any) -> HttpBot:
        environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
                   "SVCBOT_SLACK_API_URL": slack.api_url}
        running = bot_app.start(catalog(extra_services, **settings), port=0, health_port=0, environ=environ)
        bots.append(HttpBot(running, slack))
        return bots[-1]

    yield start
    assert stack.kube is not None
    stack.kube.clear_faults()
    loki.clear_faults()
    slack.clear_faults()
    for bot in bots:
        bot.running.stop(grace=5)


@pytest.fixture(name="fresh_service")
def _fresh_service(stack: SandboxStack) -> str:
    """A service no bot in this process has looked at yet: a new deployment in dev, staging and prod."""
    assert stack.kube is not None
    assert stack.directory is not None
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    for env in ("dev", "staging", "prod"):
        cluster, namespace = stack.kube.env(env)
        create_deployment(stack.directory / "kubeconfig", f"sandbox-{cluster.name}-admin", namespace, name)
    return name
