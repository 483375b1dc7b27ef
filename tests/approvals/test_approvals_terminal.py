"""The whole approval flow without Slack: `svcbot run --as carol "approve <id>"` in the sandbox catalog."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from approval_world import ROOT, ApprovalWorld

from bot.deploys.store import State
from bot.replies.deploy import DeployPendingReply
from bot.runtime import build_runtime
from bot.terminal.shell import render_reply


def svcbot_run(world: ApprovalWorld, text: str, who: str) -> subprocess.CompletedProcess[str]:
    """`svcbot run --as WHO TEXT` as its own process on the sandbox's own catalog and the world's store."""
    assert world.stack.directory is not None
    env = {**os.environ, "KUBECONFIG": str(world.kubeconfig), "SVCBOT_DB": str(world.db_path),
           "SVCBOT_CATALOG": str(world.stack.directory / "catalog.yaml"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bot.cli", "run", text, "--as", who], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_svcbot_run_approve_in_the_sandbox_catalog(world: ApprovalWorld) -> None:
    """alice asks, dave (read-only) is refused (exit 1), carol approves from the terminal: it waits for the run
    and prints its progress (exit 0); an approved version whose migration fails makes `svcbot run` exit 3."""
    assert world.stack.directory is not None

    def ask(version: str) -> DeployPendingReply:
        # One request per service and environment waits at a time (issue 16): each is asked when it may be.
        assert world.stack.directory is not None
        runtime = build_runtime(world.stack.directory / "catalog.yaml")
        try:
            pending = runtime.dispatcher.execute(f"deploy payment prod {version}", "U0ALICE", source="terminal",
                                                 follow_runs=True, deadline=time.monotonic() + 30)
        finally:
            runtime.close()
        assert isinstance(pending, DeployPendingReply)
        return pending

    good = ask("1.4.2")

    refused = svcbot_run(world, f"approve {good.request_id}", "dave")
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert "you are not an approver for prod (approvers: @release-managers)" in refused.stdout

    approved = svcbot_run(world, f"approve {good.request_id}", "carol")
    assert approved.returncode == 0, approved.stdout + approved.stderr[-2000:]
    assert f"you approved {good.request_id}" in approved.stdout
    assert "[3/5] deploy: kubectl set image deployment/payment-api" in approved.stdout
    assert "SUCCEEDED" in approved.stdout
    assert world.store.request(good.request_id).state is State.SUCCEEDED
    assert world.image("prod", "payment-api") == "registry.example.com/payment:1.4.2"

    failing = ask("1.5.3")
    failed = svcbot_run(world, f"approve {failing.request_id}", "carol")
    assert failed.returncode == 3, failed.stdout + failed.stderr[-2000:]
    assert world.store.request(failing.request_id).state is State.FAILED
    assert world.image("prod", "payment-api") == "registry.example.com/payment:1.4.2"


def test_the_demo_shows_self_approval_refused(world: ApprovalWorld) -> None:
    """In the sandbox catalog bob is on-call and an approver: his own prod request is his to ask, not to
    approve (self-approval is off), while he may approve someone else's."""
    assert world.stack.directory is not None
    runtime = build_runtime(world.stack.directory / "catalog.yaml")
    try:
        pending = runtime.dispatcher.execute("deploy gateway prod 1.0.0", "U0BOB", source="terminal",
                                             deadline=time.monotonic() + 30)
        assert isinstance(pending, DeployPendingReply)
        refused = runtime.dispatcher.execute(f"approve {pending.request_id}", "U0BOB", source="terminal",
                                             deadline=time.monotonic() + 30)
        assert "you requested" in render_reply(refused)
        assert "self-approval is off" in render_reply(refused)
        assert world.store.request(pending.request_id).state is State.PENDING
    finally:
        runtime.close()
