"""Issue 16's edges, against the sandbox through the real kubernetes client and the dispatcher as the terminal
calls it: exit codes of cancelled runs, retries on errors that pass, what a rollout's new pods are doing, and
rollback targets."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from deploy_world import SANDBOX_SETTINGS, DeployWorld, sandbox_catalog

from bot.deploys.store import State, StepState, Store
from bot.replies.deploy import CancelReply, DeployPlanReply, DeployRunReply, HistoryReply
from bot.runtime import build_runtime
from bot.terminal.shell import render_reply, run_once

PAYMENT = "payment-api"


def _wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not met within {timeout}s")


def _step_running(store: Store, request_id: str, kind: str) -> bool:
    return any(step.kind == kind and step.state is StepState.RUNNING for step in store.steps(request_id))


class TestExitCodes:
    def test_svcbot_run_exits_3_when_someone_else_cancels_its_run(self, world: DeployWorld) -> None:
        """`svcbot run "deploy ..."` waits for its run; bob cancels it from elsewhere; the run ends CANCELLED
        (rolled back) and the waiting command exits 3, like any run that did not succeed."""
        # The child runs with the default heartbeat (5 s): this process must not take its run for dead.
        world.runtime.deploys.run_settings = dataclasses.replace(SANDBOX_SETTINGS, stale_after=60.0)
        env = dict(os.environ, SVCBOT_LOG_LEVEL="ERROR")
        child = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "deploy payment dev 1.5.2", "--catalog",
             str(world.catalog_path), "--as", "alice"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        try:
            _wait_for(world.db_path.exists, what="the store")
            observer = Store.open(str(world.db_path), recover=False)
            try:
                _wait_for(lambda: any(request.state is State.RUNNING
                                      for request in observer.requests(service="payment")), what="a run")
                running = observer.requests(service="payment")[0]
                _wait_for(lambda: _step_running(observer, running.id, "wait_rollout"), what="wait_rollout")
            finally:
                observer.close()
            cancelled = world.run(f"cancel {running.id}", user="U0BOB", source="slack")
            assert isinstance(cancelled, CancelReply)
            out, _ = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        assert child.returncode == 3, out
        assert "CANCELLED" in out
        assert "cancelled by U0BOB" in out


class TestRollbackTargets:
    def test_rollback_names_its_target_and_skips_the_version_that_just_failed(self, world: DeployWorld) -> None:
        """orders dev: 2.8.1 -> 2.8.0, then 2.9.0 crashes and is rolled back automatically. `rollback orders dev`
        does not go back to 2.9.0 (kubectl's previous revision) but to 2.8.1, and says so before and after."""
        assert isinstance(world.run("deploy orders dev 2.8.0"), DeployRunReply)
        crashed = world.run("deploy orders dev 2.9.0")
        assert isinstance(crashed, DeployRunReply)
        assert crashed.state == "ROLLED_BACK"
        dry = world.run("rollback orders dev --dry-run")
        assert isinstance(dry, DeployPlanReply)
        assert "2.8.0 → 2.8.1 (revision 1)" in render_reply(dry)
        assert "--to-revision=1" in render_reply(dry)
        rolled = world.run("rollback orders dev", user="U0BOB")
        assert isinstance(rolled, DeployRunReply)
        assert rolled.state == "SUCCEEDED", render_reply(rolled)
        assert rolled.change == "2.8.0 -> 2.8.1 (revision 1)"
        assert world.image("dev", "orders") == "registry.example.com/orders:2.8.1"
        stored = world.runtime.deploys.store().request(rolled.request_id)
        assert (stored.version, stored.plan["revision"], stored.plan["image"]) == \
            ("1", 1, "registry.example.com/orders:2.8.1")
        history = world.run("history orders dev")
        assert isinstance(history, HistoryReply)
        assert history.entries[0].action == "rollback"
        assert history.entries[0].version == "2.8.1 (revision 1)"
        assert "2.8.1 (revision 1)" in render_reply(history)

    def test_a_rollback_with_nothing_to_go_back_to_is_a_usage_error(self, world: DeployWorld) -> None:
        """orders dev has one revision: `svcbot run "rollback orders dev"` exits 1 and stores nothing. After
        2.9.0 crashed and was rolled back, the only other revision is the one that failed: still exit 1, and no
        FAILED run is recorded."""
        out = io.StringIO()
        assert run_once(world.runtime.dispatcher, "rollback orders dev", "U0ALICE", out) == 1
        assert "orders in dev has nothing to roll back to: it runs revision 1 (2.8.1)" in out.getvalue()
        crashed = world.run("deploy orders dev 2.9.0")
        assert isinstance(crashed, DeployRunReply)
        assert crashed.state == "ROLLED_BACK"
        out = io.StringIO()
        assert run_once(world.runtime.dispatcher, "rollback orders dev", "U0ALICE", out) == 1
        assert "nothing to roll back to" in out.getvalue()
        kinds = [(request.kind, request.state) for request in world.runtime.deploys.store().requests(service="orders")]
        assert kinds == [("deploy", State.ROLLED_BACK)]
        assert world.image("dev", "orders") == "registry.example.com/orders:2.8.1"


class TestRolloutProgress:
    def test_new_pods_failing_readiness_are_reported_and_fail_the_step_after_unready_for(
            self, world: DeployWorld, tmp_path: Path) -> None:
        """payment 1.5.2 never becomes ready. The progress says what the new pods are doing (the readiness
        probe's failures, counted), and `unready_for: 3s` fails the step long before the 10m timeout (and the
        progress deadline), then the old version is restored."""
        catalog = sandbox_catalog(world.stack)
        catalog["pipelines"]["unready"] = {
            "targets": {"deploy": {"on_failure": "rollback", "steps": [
                {"set_image": {"image": "{image}:{version}"}},
                {"wait_rollout": {"timeout": "10m", "unready_for": "3s"}}, {"probe": {"timeout": "30s"}}]}},
            "goal": "deploy",
        }
        catalog["services"]["payment"]["pipeline"] = "unready"
        path = tmp_path / "unready.yaml"
        path.write_text(yaml.safe_dump(catalog))
        runtime = build_runtime(path)
        runtime.deploys.run_settings = SANDBOX_SETTINGS
        lines: list[str] = []
        try:
            started = time.monotonic()
            reply = runtime.dispatcher.execute("deploy payment dev 1.5.2", "U0ALICE", source="terminal",
                                               progress=lines.append, deadline=time.monotonic() + 60,
                                               follow_runs=True)
            took = time.monotonic() - started
        finally:
            runtime.deploys.close_store(10.0)
            runtime.close()
        assert isinstance(reply, DeployRunReply)
        assert reply.state == "ROLLED_BACK", render_reply(reply)
        wait = next(step for step in reply.steps if step.kind == "wait_rollout")
        assert wait.state == "FAILED"
        assert "new pods not ready for 3s (unready_for): Readiness probe failed: HTTP 503" in wait.error
        assert re.search(r"HTTP 503, \d+ times? in \d+ s", wait.error), wait.error
        notes = [line for line in lines if line.startswith("  … [2/3] deploy: ")]
        assert any(re.search(r"1 of 1 updated, 0 ready; not ready: Readiness probe failed: HTTP 503, \d+ times? "
                             r"in \d+ s", line) for line in notes), lines
        assert took < 40  # neither the 10m timeout nor the progress deadline
        assert world.image("dev", PAYMENT) == "registry.example.com/payment:1.4.3"
