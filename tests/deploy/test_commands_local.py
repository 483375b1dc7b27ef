"""deploy, rollback, history and cancel through the real dispatcher, without a cluster: dry runs, refusals,
PENDING requests for protected environments."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.deploys.store import State, Store
from bot.render.slack import render as slack_render
from bot.render.views import to_document
from bot.replies.base import Message, Outcome, Reply
from bot.replies.deploy import CancelReply, DeployPendingReply, DeployPlanReply, HistoryReply
from bot.runtime import Runtime, build_runtime
from bot.terminal.shell import render_reply


@pytest.fixture(name="runtime")
def _runtime(catalog_path: Path, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    runtime = build_runtime(catalog_path)
    yield runtime
    runtime.deploys.close_store(1.0)
    runtime.close()


def _run(runtime: Runtime, text: str, user: str = "U0ALICE") -> Reply:
    return runtime.dispatcher.execute(text, user, source="terminal", follow_runs=True, deadline=time.monotonic() + 20)


class TestDryRun:
    def test_dry_run_prints_the_plan_and_changes_nothing(self, runtime: Runtime, db_path: Path) -> None:
        """--dry-run lists targets and substituted steps, creates no request (not even the database)."""
        reply = _run(runtime, "deploy payment staging 1.4.2 --dry-run")
        assert isinstance(reply, DeployPlanReply)
        assert reply.outcome is Outcome.OK
        text = render_reply(reply)
        assert "dry run: deploy payment 1.4.2 to staging" in text
        assert "make --no-print-directory -C workspace build GREETING=staging-hello VERSION=1.4.2" in text
        assert "deploy:  (on failure: rollback)" in text
        assert "unknown (" in text  # no cluster to ask for the current image, and it says why
        assert not db_path.exists()
        assert slack_render(to_document(reply)).blocks

    @pytest.mark.parametrize("version", ["'1.0;rm -rf /'", "'$(id)'", "-- --help", "'1.0 2.0'", "'1.0\n2.0'"])
    def test_hostile_versions_are_refused_before_anything(self, runtime: Runtime, db_path: Path,
                                                          version: str) -> None:
        """A hostile version is a user error naming the pattern; no store, no step, no cluster call."""
        reply = _run(runtime, f"deploy payment staging {version}")
        assert isinstance(reply, Message)
        assert reply.outcome is Outcome.USER_ERROR
        assert "must match ^v?" in reply.title
        assert not db_path.exists()

    def test_an_option_in_place_of_the_version_is_a_usage_error(self, runtime: Runtime, db_path: Path) -> None:
        """`deploy payment staging --help` never reaches planning: argparse refuses the unknown option."""
        reply = _run(runtime, "deploy payment staging --help")
        assert reply.outcome is Outcome.USER_ERROR
        assert not db_path.exists()

    def test_rollback_dry_run(self, runtime: Runtime) -> None:
        """rollback --dry-run shows kubectl rollout undo to the given revision."""
        reply = _run(runtime, "rollback payment staging --to 4 --dry-run")
        assert isinstance(reply, DeployPlanReply)
        assert "kubectl rollout undo deployment/payment-api --to-revision=4 -n staging" in render_reply(reply)

    def test_someone_outside_oncall_may_not_deploy(self, runtime: Runtime) -> None:
        """The access rules apply: a user outside oncall is refused naming who may."""
        reply = _run(runtime, "deploy payment staging 1.4.2", user="U0MALLORY")
        assert reply.outcome is Outcome.USER_ERROR
        assert "you may not deploy to staging" in render_reply(reply)


class TestApprovalRequired:
    def test_protected_environment_stores_a_pending_request_with_its_plan(self, runtime: Runtime,
                                                                         db_path: Path) -> None:
        """deploy to prod answers 'approval required' and stores the exact plan it showed, PENDING."""
        reply = _run(runtime, "deploy payment prod 1.4.2")
        assert isinstance(reply, DeployPendingReply)
        assert reply.outcome is Outcome.OK
        text = render_reply(reply)
        assert "approval required: prod deploys need approval" in text
        store = Store.open(str(db_path))
        request = store.request(reply.request_id)
        assert request.state is State.PENDING
        assert request.plan["steps"][2]["args"] == {"image": "registry.example.com/payment:1.4.2"}
        assert request.approval == {"approvers": ["release-managers"], "quorum": 1, "self_approval": False,
                                    "expires": 1800.0}
        assert request.expires_at is not None
        assert request.expires_at > time.time() + 1700
        store.close()

    def test_requester_cancels_a_pending_request_others_may_not(self, runtime: Runtime) -> None:
        """Only the requester (or someone allowed to deploy there) withdraws a PENDING request."""
        pending = _run(runtime, "deploy payment prod 1.4.2")
        assert isinstance(pending, DeployPendingReply)
        refused = _run(runtime, f"cancel {pending.request_id}", user="U0MALLORY")
        assert refused.outcome is Outcome.USER_ERROR
        assert "only the requester (@U0ALICE)" in render_reply(refused)  # users shown one way: @U...
        cancelled = _run(runtime, f"cancel {pending.request_id}")
        assert isinstance(cancelled, CancelReply)
        assert cancelled.state == "CANCELLED"
        again = _run(runtime, f"cancel {pending.request_id}")
        assert "already ended CANCELLED" in render_reply(again)

    def test_history_lists_requests_even_without_a_cluster(self, runtime: Runtime) -> None:
        """history shows the store's side and notes that the cluster could not be read."""
        pending = _run(runtime, "deploy payment prod 1.4.2")
        reply = _run(runtime, "history payment prod")
        assert isinstance(reply, HistoryReply)
        assert [entry.request_id for entry in reply.entries] == [pending.request_id]  # type: ignore[attr-defined]
        assert reply.entries[0].outcome == "PENDING"
        assert reply.notes
        assert reply.notes[0].startswith("prod: revisions not read")
        assert "pending" in render_reply(reply)
