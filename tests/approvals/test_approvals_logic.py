"""The decision logic of bot/deploys/approvals.py on a real store (two connections standing in for two replicas):
unique votes, quorum, self-approval, Slack user groups, expiry inside the update, the sweep; and the
commands and views around it, without a cluster."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.core.catalog import Catalog, load_catalog
from bot.core.errors import Conflict, Forbidden, UserError
from bot.core.policy import Policy
from bot.deploys import approvals
from bot.deploys.plan import plan_deploy
from bot.deploys.store import NewRequest, RequestRecord, State, Store
from bot.render import slack as slack_render
from bot.render.document import Delivery
from bot.render.views import to_document
from bot.replies.approvals import ApprovalReply, WithdrawnReply
from bot.runtime import build_runtime
from bot.slack.approval_message import approval_message
from bot.terminal.shell import render_reply

ROOT = Path(__file__).resolve().parents[2]
CATALOG = f"""
settings: {{default_env: prod}}
clusters:
  local: {{context: nowhere}}
environments:
  dev: {{cluster: local, namespace: dev}}
  staging: {{cluster: local, namespace: staging}}
  prod: {{cluster: local, namespace: prod, protected: true}}
terminal: {{allow_as: true}}
services:
  payment:
    deployment: payment-api
    image: registry.example.com/payment
    config: {{dir: "{ROOT / 'sandbox' / 'seed' / 'configs' / 'payment'}", pattern: "application-{{profile}}.yaml"}}
  orders:
    image: registry.example.com/orders
access:
  groups: {{oncall: [U0ALICE, U0BOB, U0CAROL], release-managers: [U0CAROL, U0ERIN]}}
  rules:
    - {{verbs: [deploy, rollback], envs: [dev], who: [oncall],
       approval: {{approvers: [S0RELEASE], quorum: 1, self_approval: true, expires: 30m}}}}
    - {{verbs: [deploy, rollback], envs: [staging], who: [oncall],
       approval: {{approvers: [release-managers], quorum: 2, expires: 30m}}}}
    - {{verbs: [deploy, rollback], envs: [prod], who: [oncall],
       approval: {{approvers: [release-managers], quorum: 1, expires: 30m}}}}
"""


@pytest.fixture(name="catalog_path")
def _catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    return path


@pytest.fixture(name="catalog")
def _catalog(catalog_path: Path) -> Catalog:
    return load_catalog(catalog_path)


@pytest.fixture(name="stores")
def _stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database file: what two bot replicas have."""
    path = str(tmp_path / "store.db")
    first, second = Store.open(path), Store.open(path)
    yield first, second
    first.close()
    second.close()


def pending(store: Store, catalog: Catalog, env: str = "prod", requester: str = "U0ALICE", *,
            service: str = "payment", version: str = "1.4.2", expires_in: float = 1800.0) -> RequestRecord:
    """A PENDING request as /svc deploy stores it: the exact plan and the matching rule's approval block."""
    plan = plan_deploy(catalog, service, env, version)
    rule = next(rule for rule in catalog.access.rules if env in rule.envs)
    assert rule.approval is not None
    block = {"approvers": list(rule.approval.approvers), "quorum": rule.approval.quorum,
             "self_approval": rule.approval.self_approval, "expires": expires_in}
    return store.create_request(NewRequest(kind="deploy", service=service, env=env, version=version,
                                           requester=requester, plan=plan.to_json(), state=State.PENDING,
                                           approval=block, expires_at=time.time() + expires_in))


class TestVotes:
    def test_concurrent_votes_on_two_replicas_approve_once(self, stores: tuple[Store, Store],
                                                           catalog: Catalog) -> None:
        """40 approvals from two approvers on two store connections at once: one wins the APPROVED
        transition (quorum 2), each approver has one vote, the others are told what happened."""
        request = pending(stores[0], catalog, "staging")
        policy = Policy(catalog)
        start = threading.Barrier(40)

        def click(index: int) -> str:
            store = stores[index % 2]
            start.wait()
            try:
                return approvals.approve(store, policy, request.id, ("U0CAROL", "U0ERIN")[index // 2 % 2]).decision
            except Conflict as exc:
                return exc.message

        with ThreadPoolExecutor(max_workers=40) as pool:
            outcomes = list(pool.map(click, range(40)))
        assert outcomes.count("approved") == 1
        assert sorted(vote.approver for vote in stores[0].votes(request.id)) == ["U0CAROL", "U0ERIN"]
        assert stores[1].request(request.id).state is State.APPROVED
        assert [event.event for event in stores[0].audit(request.id)].count("request.approved") == 1
        assert all(outcome in ("approved", "voted") or "already" in outcome or "changed while" in outcome
                   for outcome in outcomes)

    def test_requester_may_not_approve_unless_the_rule_allows_it(self, stores: tuple[Store, Store],
                                                                 catalog: Catalog) -> None:
        """carol's own prod request needs someone else; in dev the rule says self_approval: true."""
        store = stores[0]
        own = pending(store, catalog, "prod", requester="U0CAROL")
        with pytest.raises(Forbidden, match="yourself"):
            approvals.approve(store, Policy(catalog), own.id, "U0CAROL")
        assert store.votes(own.id) == []
        members = {"S0RELEASE": frozenset({"U0CAROL"})}
        dev = pending(store, catalog, "dev", requester="U0CAROL")
        policy = Policy(catalog, lambda group: members.get(group, frozenset()))
        assert approvals.approve(store, policy, dev.id, "U0CAROL").decision == "approved"

    def test_slack_user_group_approvers_are_resolved_through_the_policy(self, stores: tuple[Store, Store],
                                                                       catalog: Catalog) -> None:
        """dev's approvers are the Slack user group S0RELEASE: its members approve, others are told who may."""
        store = stores[0]
        request = pending(store, catalog, "dev")
        asked: list[str] = []

        def resolve(group: str) -> frozenset[str]:
            asked.append(group)
            return frozenset({"U0ERIN"}) if group == "S0RELEASE" else frozenset()

        policy = Policy(catalog, resolve)
        with pytest.raises(Forbidden) as refused:
            approvals.approve(store, policy, request.id, "U0BOB")
        assert refused.value.message == "you are not an approver for dev (approvers: <!subteam^S0RELEASE>)"
        assert approvals.approve(store, policy, request.id, "U0ERIN").decision == "approved"
        assert "S0RELEASE" in asked

    def test_approving_again_finishes_a_quorum_a_crash_left_pending(self, stores: tuple[Store, Store],
                                                                     catalog: Catalog) -> None:
        """The vote that reached the quorum was stored, then the process died before PENDING -> APPROVED: the
        same approver's approve again finishes it (instead of "you already approved"), once."""
        store = stores[0]
        request = pending(store, catalog, "prod")
        assert store.add_vote(request.id, "U0CAROL", "approve")  # the vote, and then the crash
        assert store.request(request.id).state is State.PENDING
        resumed = approvals.approve(store, Policy(catalog), request.id, "U0CAROL")
        assert resumed.decision == "approved"
        assert store.request(request.id).state is State.APPROVED
        with pytest.raises(Conflict, match="already approved"):
            approvals.approve(store, Policy(catalog), request.id, "U0CAROL")

    def test_one_reject_ends_it(self, stores: tuple[Store, Store], catalog: Catalog) -> None:
        """A reject with a reason (cleaned to one line) ends a quorum-2 request that had one approval."""
        store = stores[0]
        request = pending(store, catalog, "staging")
        policy = Policy(catalog)
        assert approvals.approve(store, policy, request.id, "U0CAROL").decision == "voted"
        result = approvals.reject(store, policy, request.id, "U0ERIN", "not during\nthe sale <!channel>")
        assert result.decision == "rejected"
        assert store.request(request.id).reason == "rejected by U0ERIN: not during the sale <!channel>"
        with pytest.raises(Conflict, match="already rejected by <@U0ERIN>"):
            approvals.approve(store, policy, request.id, "U0ERIN")

    def test_a_request_made_without_approval_cannot_be_voted_on(self, stores: tuple[Store, Store],
                                                                catalog: Catalog) -> None:
        """approve on a request that never needed approval says so and records nothing."""
        store = stores[0]
        plan = plan_deploy(catalog, "orders", "prod", "2.8.1")
        direct = store.create_request(NewRequest(kind="deploy", service="orders", env="prod", version="2.8.1",
                                                 requester="U0ALICE", plan=plan.to_json(), state=State.APPROVED))
        with pytest.raises(UserError, match="needs no approval"):
            approvals.approve(store, Policy(catalog), direct.id, "U0CAROL")
        assert store.votes(direct.id) == []


class TestExpiry:
    def test_expiry_is_checked_when_voting_without_any_sweep(self, stores: tuple[Store, Store],
                                                             catalog: Catalog) -> None:
        """An approval after the deadline is refused as expired and marks the request EXPIRED, once."""
        store = stores[0]
        request = pending(store, catalog, "prod", expires_in=60)
        later = time.time() + 61
        with pytest.raises(Conflict, match=r"^this request expired at"):
            approvals.approve(store, Policy(catalog), request.id, "U0CAROL", now=later)
        with pytest.raises(Conflict, match=r"^this request expired at"):
            approvals.reject(store, Policy(catalog), request.id, "U0ERIN", now=later)
        assert store.request(request.id).state is State.EXPIRED
        assert store.votes(request.id) == []
        assert [event.event for event in store.audit(request.id)].count("request.expired") == 1

    def test_sweep_marks_due_requests_once(self, stores: tuple[Store, Store], catalog: Catalog) -> None:
        """The sweep on two replicas: each due request is marked EXPIRED by exactly one of them."""
        due = [pending(stores[0], catalog, "prod", expires_in=10) for _ in range(3)]
        fresh = pending(stores[0], catalog, "prod", expires_in=3600)
        later = time.time() + 11
        swept = approvals.expire_due(stores[0], now=later) + approvals.expire_due(stores[1], now=later)
        assert sorted(request.id for request in swept) == sorted(request.id for request in due)
        assert all(request.state is State.EXPIRED for request in swept)
        assert stores[0].request(fresh.id).state is State.PENDING
        assert approvals.expire_due(stores[1], now=later) == []


class TestCommands:
    def test_cancel_withdraws_a_pending_request_and_refuses_an_expired_one(
            self, catalog_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The requester withdraws their PENDING request; someone not allowed to deploy there may not; a
        request past its expiry is refused as expired."""
        monkeypatch.setenv("SVCBOT_DB", str(tmp_path / "cmd.db"))
        runtime = build_runtime(catalog_path)
        try:
            store = runtime.deploys.store()
            first = pending(store, runtime.catalog, "prod")
            refused = runtime.dispatcher.execute(f"cancel {first.id}", "U0DAVE", source="terminal", follow_runs=True)
            assert "may cancel" in render_reply(refused)
            reply = runtime.dispatcher.execute(f"cancel {first.id}", "U0ALICE", source="terminal", follow_runs=True)
            assert isinstance(reply, WithdrawnReply)
            assert reply.state == "CANCELLED"
            assert store.request(first.id).state is State.CANCELLED
            assert to_document(reply).delivery == Delivery(refreshes=first.id)
            stale = pending(store, runtime.catalog, "prod", expires_in=0.01)
            time.sleep(0.05)
            expired = runtime.dispatcher.execute(f"cancel {stale.id}", "U0ALICE", source="terminal", follow_runs=True)
            assert "this request expired" in render_reply(expired)
            assert store.request(stale.id).state is State.EXPIRED
            usage = runtime.dispatcher.execute("reject 'a b'", "U0CAROL", source="terminal", follow_runs=True)
            assert "is not a request id" in render_reply(usage)
        finally:
            runtime.close()

    def test_reject_command_records_the_reason_and_help_lists_the_verbs(
            self, catalog_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """`/svc reject <id> reason words` ends the request with that reason; help lists approve and reject."""
        monkeypatch.setenv("SVCBOT_DB", str(tmp_path / "cmd.db"))
        runtime = build_runtime(catalog_path)
        try:
            request = pending(runtime.deploys.store(), runtime.catalog, "prod")
            reply = runtime.dispatcher.execute(f"reject {request.id} wait for the freeze", "U0ERIN",
                                               source="terminal", follow_runs=True)
            assert isinstance(reply, ApprovalReply)
            assert reply.reason == "wait for the freeze"
            assert "you rejected" in render_reply(reply)
            assert runtime.deploys.store().request(request.id).state is State.REJECTED
            listing = render_reply(runtime.dispatcher.execute("help", "U0ALICE", source="terminal", follow_runs=True))
            assert "/svc approve <id>" in listing
            assert "/svc reject <id> [reason]" in listing
        finally:
            runtime.close()


class TestMessage:
    def test_approval_message_shows_the_request_and_escapes_what_people_typed(
            self, stores: tuple[Store, Store], catalog: Catalog) -> None:
        """The message names the plan, the config difference (keys, never values) and the commands; once
        rejected the buttons are gone and the reason is escaped, never a mention."""
        store = stores[0]
        request = pending(store, catalog, "prod")
        summary = approvals.config_summary(catalog, "payment", "prod")
        assert summary is not None
        assert summary.base_env == "staging"
        assert summary.differs
        assert approvals.config_summary(catalog, "orders", "prod") is None  # no profiles: nothing to say
        approvals.record_posted(store, request, "C0APPROVALS", "1.0",
                                current_image="registry.example.com/payment:1.4.1", config=summary)
        pending_message = slack_render.render(to_document(approval_message(store, request.id)))
        text = json.dumps(pending_message.blocks, ensure_ascii=False)
        assert "1.4.1 → 1.4.2" in text
        assert "config staging → prod" in text
        assert "/svc diff payment staging prod" in text
        buttons = [element for block in pending_message.blocks if block["type"] == "actions"
                   for element in block["elements"]]
        assert [button["value"] for button in buttons] == [request.id, request.id]
        assert set(buttons[0]["confirm"]) == {"title", "text", "confirm", "deny"}
        for secret in _secret_values(catalog):
            assert secret not in text
        approvals.reject(store, Policy(catalog), request.id, "U0ERIN", "see <!channel> and <@U0BOB>")
        rejected = slack_render.render(to_document(approval_message(store, request.id)))
        text = json.dumps(rejected.blocks, ensure_ascii=False)
        assert "svc_approve" not in text
        assert "rejected by <@U0ERIN>" in text
        assert "see &lt;!channel&gt; and &lt;@U0BOB&gt;" in text
        assert "1.4.1 → 1.4.2" in text  # the facts it showed when posted
        assert rejected.delivery == Delivery()
        assert "/svc approve" not in render_reply(approval_message(store, request.id))


def _secret_values(catalog: Catalog) -> list[str]:
    from bot.insight.profiles import load_profile  # noqa: PLC0415

    values: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, str(name))
        elif isinstance(node, str) and any(word in key.lower() for word in ("password", "secret", "key", "token")):
            values.append(node)

    for env in ("staging", "prod"):
        walk(load_profile(catalog, "payment", env).data)
    return [value for value in values if len(value) > 3]


def test_user_group_approvers_through_the_dispatcher(catalog_path: Path, catalog: Catalog, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Typed decisions use the dispatcher's policy, so Slack user group members are approvers there too."""
    db = tmp_path / "dispatch.db"
    monkeypatch.setenv("SVCBOT_DB", str(db))
    store = Store.open(str(db))
    request = pending(store, catalog, "dev")
    runtime = build_runtime(catalog_path,
                            resolve_user_group=lambda group: frozenset({"U0ERIN"}) if group == "S0RELEASE"
                            else frozenset())
    try:
        refused = runtime.dispatcher.execute(f"reject {request.id} no", "U0BOB", source="terminal", follow_runs=True)
        assert "you are not an approver for dev" in render_reply(refused)
        assert store.request(request.id).state is State.PENDING
        decided = runtime.dispatcher.execute(f"reject {request.id} not today", "U0ERIN", source="terminal",
                                             follow_runs=True)
        assert "rejected" in render_reply(decided)
        assert store.request(request.id).state is State.REJECTED
    finally:
        runtime.close()
        store.close()
