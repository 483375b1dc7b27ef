"""Fixtures of the approval tests: a sandbox world (clusters, Slack, catalog, store) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from approval_world import ApprovalWorld, approvals_catalog, write_catalog

from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox
from sandbox.stack import SandboxStack


@pytest.fixture(name="world")
def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApprovalWorld]:
    # No sweep unless a test asks for one: a click after the deadline must be refused on its own.
    monkeypatch.setattr(bot_app, "EXPIRY_SWEEP_INTERVAL", 3600.0)
    stack = SandboxStack()
    stack.start(tmp_path / "sandbox", time_scale=0.02)
    kubeconfig = tmp_path / "sandbox" / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    db_path = tmp_path / "svcbot.db"
    monkeypatch.setenv("SVCBOT_DB", str(db_path))
    catalog_path = write_catalog(tmp_path / "catalog.yaml", approvals_catalog(stack))
    slack = SlackSandbox().start()
    world = ApprovalWorld(stack=stack, slack=slack, directory=tmp_path, catalog_path=catalog_path, db_path=db_path,
                          kubeconfig=kubeconfig)
    try:
        yield world
    finally:
        world.close()
        slack.stop()
        stack.stop()
