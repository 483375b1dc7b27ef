"""The deploy tests' sandbox world: a SandboxStack, a runtime on its catalog, and helpers to look inside."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.deploys.engine import RunSettings
from bot.replies.base import Reply
from bot.runtime import Runtime
from sandbox.stack import SandboxStack

# --- the sandbox ----------------------------------------------------------------------------------------

SANDBOX_SETTINGS = RunSettings(heartbeat=0.1, lock_renew=0.2, poll=0.05, lease_duration=3, stale_after=2.0,
                               rollback_timeout=30.0)


@dataclass
class DeployWorld:
    stack: SandboxStack
    runtime: Runtime
    catalog_path: Path
    db_path: Path

    def run(self, text: str, user: str = "U0ALICE", *, source: str = "terminal",
            progress: list[str] | None = None) -> Reply:
        lines = progress if progress is not None else []
        # The terminal follows the runs it starts; Slack does not (its progress goes to the thread).
        return self.runtime.dispatcher.execute(text, user, source=source, progress=lines.append,
                                               deadline=time.monotonic() + 60, follow_runs=source == "terminal")

    def deployment(self, env: str, name: str) -> dict[str, Any]:
        assert self.stack.kube is not None
        cluster, namespace = self.stack.kube.env(env)
        return next(item for item in cluster.objects("apps/deployments", namespace)
                    if item["metadata"]["name"] == name)

    def image(self, env: str, name: str) -> str:
        return str(self.deployment(env, name)["spec"]["template"]["spec"]["containers"][0]["image"])

    def writes(self, env: str) -> list[tuple[str, str, int]]:
        """Non-GET requests the environment's cluster received."""
        assert self.stack.kube is not None
        cluster, _ = self.stack.kube.env(env)
        return [request for request in cluster.requests if request[0] != "GET"]


def sandbox_catalog(stack: SandboxStack) -> dict[str, Any]:
    """The sandbox's catalog, plus a deploy-only pipeline for orders (so image failures reach wait_rollout)."""
    catalog = stack.catalog()
    catalog["pipelines"]["rollout"] = {
        "targets": {"deploy": {"on_failure": "rollback", "steps": [
            {"set_image": {"image": "{image}:{version}"}}, {"wait_rollout": {"timeout": "10m"}},
            {"probe": {"timeout": "30s"}}]}},
        "goal": "deploy",
    }
    catalog["services"]["orders"]["pipeline"] = "rollout"
    return catalog
