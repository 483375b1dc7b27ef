"""Deploys against the sandbox Kubernetes API, through the real dispatcher and the real kubernetes client."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from deploy_world import DeployWorld

from bot.clients.kube import DeployKube
from bot.core.errors import Conflict
from bot.deploys.engine import RunEngine
from bot.deploys.locks import LeaseLocker
from bot.deploys.plan import plan_deploy
from bot.deploys.store import State, StepState, Store
from bot.insight.kube_facts import deploy_lock
from bot.render.slack import render as slack_render
from bot.render.views import to_document
from bot.replies.base import Message, Outcome
from bot.replies.deploy import CancelReply, DeployPendingReply, DeployPlanReply, DeployRunReply, HistoryReply
from bot.terminal.shell import render_reply, run_once

PAYMENT = "payment-api"


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _step_running(store: Store, request_id: str, kind: str) -> bool:
    return any(step.kind == kind and step.state is StepState.RUNNING for step in store.steps(request_id))


class TestDeploy:
    def test_good_version_deploys_through_the_whole_pipeline(self, world: DeployWorld) -> None:
        """deploy payment staging 1.4.3 runs both jobs, sets the image, waits for the rollout and probes."""
        progress: list[str] = []
        reply = world.run("deploy payment staging 1.4.3", progress=progress)
        assert isinstance(reply, DeployRunReply)
        assert reply.state == "SUCCEEDED"
        assert reply.outcome is Outcome.OK
        assert reply.change == "1.4.2 -> 1.4.3"
        assert [step.state for step in reply.steps] == ["SUCCEEDED"] * 5
        assert world.image("staging", PAYMENT) == "registry.example.com/payment:1.4.3"
        assert progress[0].startswith(f"deploy {reply.request_id}: payment in staging, version 1.4.3")
        assert sum(line.startswith("✓ ") for line in progress) == 5
        assert progress[-1].startswith("✓ [5/5]")  # the outcome is the answer's, said once
        assert "SUCCEEDED" in render_reply(reply)
        assert "go test -race" in reply.steps[0].output_tail  # the Job's log was followed
        assert slack_render(to_document(reply)).blocks

    def test_missing_tag_fails_fast_in_wait_rollout_and_rolls_back(self, world: DeployWorld) -> None:
        """A tag the registry lacks fails on ErrImagePull/ImagePullBackOff in seconds; the old image is back."""
        before = world.image("dev", "orders")
        started = time.monotonic()
        reply = world.run("deploy orders dev 2.9.9")
        assert isinstance(reply, DeployRunReply)
        assert reply.state == "ROLLED_BACK"
        assert reply.outcome is Outcome.RUN_FAILED
        assert time.monotonic() - started < 15  # not the 10m step timeout, nor the progress deadline
        wait = next(step for step in reply.steps if step.kind == "wait_rollout")
        assert wait.state == "FAILED"
        assert "ImagePullBackOff" in wait.error or "ErrImagePull" in wait.error
        assert [step.kind for step in reply.steps[-2:]] == ["undo", "wait_rollout"]
        assert world.image("dev", "orders") == before
        assert "rolled back to revision" in render_reply(reply)

    def test_crashing_version_is_rolled_back(self, world: DeployWorld) -> None:
        """A version whose pods crash loop fails on CrashLoopBackOff and the previous template is restored."""
        reply = world.run("deploy orders dev 2.9.0")
        assert isinstance(reply, DeployRunReply)
        assert reply.state == "ROLLED_BACK"
        assert "CrashLoopBackOff" in reply.failure
        assert world.image("dev", "orders") == "registry.example.com/orders:2.8.1"

    def test_terminal_run_exits_3_when_the_run_ended_badly(self, world: DeployWorld) -> None:
        """`svcbot run` semantics: progress printed as it happens, exit code 3 for a rolled-back deploy."""
        out = io.StringIO()
        code = run_once(world.runtime.dispatcher, "deploy orders dev 2.9.9", "U0ALICE", out)
        assert code == 3
        assert "▶ [1/3] deploy: kubectl set image deployment/orders" in out.getvalue()
        assert "ROLLED_BACK" in out.getvalue()

    def test_failing_job_fails_the_step_with_its_log_tail(self, world: DeployWorld) -> None:
        """A migration Job that exits 1 fails its step with the end of its log; nothing else runs."""
        before = world.image("dev", PAYMENT)
        progress: list[str] = []
        reply = world.run("deploy payment dev 1.5.3", progress=progress)
        assert isinstance(reply, DeployRunReply)
        assert reply.state == "FAILED"
        migrate = reply.steps[1]
        assert migrate.state == "FAILED"
        assert 'relation "refunds" does not exist' in migrate.error
        assert "migrate: rolled back, schema still at 41" in migrate.output_tail
        assert [step.state for step in reply.steps[2:]] == ["SKIPPED"] * 3
        assert world.image("dev", PAYMENT) == before
        # What the terminal shows (progress, then the answer) says the error once (it was three times).
        screen = "\n".join(progress) + "\n" + render_reply(reply)
        assert screen.count(migrate.error) == 1
        assert any(line.startswith("✗ [2/5] migrate") for line in progress)


class TestRollbackAndHistory:
    def test_rollback_command_restores_the_previous_revision_and_history_tells_the_story(
            self, world: DeployWorld) -> None:
        """rollback goes back like `kubectl rollout undo`; history merges the runs with the ReplicaSet revisions."""
        deployed = world.run("deploy payment staging 1.4.3")
        assert isinstance(deployed, DeployRunReply)
        rolled = world.run("rollback payment staging", user="U0BOB")
        assert isinstance(rolled, DeployRunReply)
        assert rolled.state == "SUCCEEDED"
        assert rolled.change == "1.4.3 -> 1.4.2 (revision 2)"
        assert world.image("staging", PAYMENT) == "registry.example.com/payment:1.4.2"
        history = world.run("history payment staging")
        assert isinstance(history, HistoryReply)
        rows = [(entry.action, entry.version, entry.who, entry.outcome, entry.current) for entry in history.entries]
        assert rows[:2] == [("rollback", "1.4.2 (revision 2)", "U0BOB", "SUCCEEDED", True),
                            ("deploy", "1.4.3", "U0ALICE", "SUCCEEDED", False)]
        assert "▶ 1.4.2" in render_reply(history)

    def test_pending_request_runs_its_stored_plan_once_approved(self, world: DeployWorld) -> None:
        """Issue 8's path: a PENDING prod request, once APPROVED, starts exactly the plan it stored."""
        pending = world.run("deploy payment prod 1.4.2")
        assert isinstance(pending, DeployPendingReply)
        store = world.runtime.deploys.store()
        assert store.transition(pending.request_id, State.APPROVED, actor="U0CAROL", unexpired=True)
        assert not store.transition(pending.request_id, State.APPROVED, actor="U0CAROL", unexpired=True)
        snapshot = world.runtime.deploys.engine().start(pending.request_id).wait(30)
        assert snapshot.state is State.SUCCEEDED
        assert world.image("prod", PAYMENT) == "registry.example.com/payment:1.4.2"
        with pytest.raises(Conflict):
            world.runtime.deploys.engine().start(pending.request_id)


class TestDryRunAndRefusals:
    def test_dry_run_changes_nothing(self, world: DeployWorld) -> None:
        """--dry-run reads the current image and writes nothing: no request, no PATCH, no Job, no Lease."""
        reply = world.run("deploy payment staging 1.4.3 --dry-run")
        assert isinstance(reply, DeployPlanReply)
        assert reply.current_image == "registry.example.com/payment:1.4.2"
        assert world.writes("staging") == []
        assert not world.db_path.exists()
        assert "1.4.2 → 1.4.3" in render_reply(reply)

    def test_hostile_version_reaches_no_cluster(self, world: DeployWorld) -> None:
        """A hostile version is refused before any step: the cluster sees no request at all."""
        reply = world.run("deploy payment staging '1.4.3;rm -rf /'")
        assert isinstance(reply, Message)
        assert reply.outcome is Outcome.USER_ERROR
        assert world.writes("staging") == []
        assert world.image("staging", PAYMENT) == "registry.example.com/payment:1.4.2"


class TestLocks:
    def test_concurrent_second_deploy_is_refused_by_the_lock(self, world: DeployWorld) -> None:
        """While one deploy runs, a second one for the same service and env is refused naming holder and run."""
        first = world.run("deploy payment dev 1.5.2", source="slack")  # unready: waits in wait_rollout
        assert isinstance(first, DeployRunReply)
        assert first.state == "RUNNING"
        second = world.run("deploy payment dev 1.4.2", user="U0BOB")
        assert second.outcome is Outcome.USER_ERROR
        text = render_reply(second)
        assert "payment is already being deployed in dev" in text
        assert f"U0ALICE holds it for deploy {first.request_id} (1.5.2) since" in text
        store = world.runtime.deploys.store()
        assert any(event.event == "deploy.refused" for event in store.audit())
        cancelled = world.run(f"cancel {first.request_id}")
        assert isinstance(cancelled, CancelReply)
        assert cancelled.state == "CANCELLED"

    def test_a_dead_holders_lock_expires_and_can_be_taken(self, world: DeployWorld) -> None:
        """A Lease whose holder stopped renewing refuses others until it expires; then a deploy takes it."""
        runtime = world.runtime
        plan = plan_deploy(runtime.catalog, "payment", "staging", "1.4.3")
        locker = LeaseLocker(lambda cluster: DeployKube(runtime.backends.kube(cluster)), duration=1)
        locker.acquire(plan, "deadbeef", "U0BOB")  # the holder then "dies": no renewal, no release
        with pytest.raises(Conflict, match="U0BOB holds it for deploy deadbeef"):
            locker.acquire(plan, "cafe0001", "U0ALICE")
        kube = DeployKube(runtime.backends.kube("nonprod"))
        _wait_for(lambda: deploy_lock(kube.read_lease("staging", "svcbot-deploy-payment"), time.time()) is None)
        reply = world.run("deploy payment staging 1.4.3")
        assert isinstance(reply, DeployRunReply)
        assert reply.state == "SUCCEEDED"
        lease = DeployKube(runtime.backends.kube("nonprod")).read_lease("staging", "svcbot-deploy-payment")
        assert lease is not None
        assert lease["spec"]["leaseTransitions"] == 1
        assert deploy_lock(lease, time.time()) is None  # released at the end of the run


class TestCancelAndRecovery:
    def test_cancel_mid_run_stops_and_rolls_back(self, world: DeployWorld) -> None:
        """cancel while wait_rollout waits: the run stops, on_failure restores the old image, it ends CANCELLED."""
        before = world.image("dev", PAYMENT)
        started = world.run("deploy payment dev 1.5.2", source="slack")
        assert isinstance(started, DeployRunReply)
        store = world.runtime.deploys.store()
        _wait_for(lambda: _step_running(store, started.request_id, "wait_rollout"))
        reply = world.run(f"cancel {started.request_id}", user="U0BOB")
        assert isinstance(reply, CancelReply)
        assert reply.state == "CANCELLED"
        snapshot = store.snapshot(started.request_id)
        assert snapshot.state is State.CANCELLED
        assert "cancelled by U0BOB" in snapshot.request.reason
        assert [step.kind for step in snapshot.steps if step.state is StepState.SUCCEEDED][-2:] == \
            ["undo", "wait_rollout"]
        assert world.image("dev", PAYMENT) == before

    def test_restart_mid_run_marks_the_run_interrupted(self, world: DeployWorld) -> None:
        """A `svcbot run` killed mid-deploy leaves a RUNNING run; the next process marks it INTERRUPTED and
        tells its thread, and the Lease is left to expire."""
        env = dict(os.environ, SVCBOT_LOG_LEVEL="ERROR")
        child = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "deploy payment dev 1.5.2", "--catalog",
             str(world.catalog_path), "--as", "alice"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            _wait_for(world.db_path.exists, timeout=30)
            observer = Store.open(str(world.db_path), recover=False)
            _wait_for(lambda: any(request.state is State.RUNNING
                                  for request in observer.requests(service="payment")), timeout=30)
            running = observer.requests(service="payment")[0]
            _wait_for(lambda: _step_running(observer, running.id, "wait_rollout"), timeout=30)
            observer.close()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        told: list[str] = []
        newcomer = Store.open(str(world.db_path), stale_after=0.0)
        assert [snapshot.id for snapshot in newcomer.interrupted_on_open] == [running.id]
        snapshot = newcomer.snapshot(running.id)
        assert snapshot.state is State.INTERRUPTED
        assert f"/{child.pid}) stopped" in snapshot.request.reason

        class Thread:
            def started(self, run: object) -> None: ...

            def step(self, run: object, step: object, state: object) -> None: ...

            def finished(self, run: object) -> None:
                told.append(getattr(run, "id", ""))

        RunEngine(newcomer).set_sink_factory(lambda _snapshot: Thread())
        assert told == [running.id]
        lease = DeployKube(world.runtime.backends.kube("nonprod")).read_lease("dev", "svcbot-deploy-payment")
        assert lease is not None
        assert running.id in lease["spec"]["holderIdentity"]  # left to expire, not released
        newcomer.close()


def test_threads_left_running_are_ours_only() -> None:
    """Sanity: the tests above leave no run threads behind (each world's engine was shut down)."""
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("svc-run-heartbeat")]
