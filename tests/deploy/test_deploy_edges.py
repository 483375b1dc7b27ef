"""Issue 16's edges, against the sandbox through the real kubernetes client and the dispatcher as the terminal
calls it: exit codes of cancelled runs, retries on errors that pass, what a rollout's new pods are doing, and
rollback targets."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable

from deploy_world import SANDBOX_SETTINGS, DeployWorld

from bot.deploys.store import State, StepState, Store
from bot.replies.deploy import CancelReply

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
