"""/svc history <service> [env] [--limit N]: who deployed what, when, how it ended, how long it took.

Two sources merged: the store's requests and runs (who, outcome, duration, what failed or was restored)
and each deployment's ReplicaSet revisions on the cluster (so a change made with kubectl or by another
tool shows up too, and the current revision is marked). A cluster that cannot be read leaves a note;
the store's side is still shown.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from bot.core.catalog import Catalog
from bot.core.errors import BackendError, UsageError, UserError
from bot.deploys.plan import workload_of
from bot.deploys.progress import rollback_target
from bot.deploys.store import RequestRecord, RunRecord, State, Store
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.insight import kube_facts as rollout
from bot.replies.base import Reply
from bot.replies.deploy import HistoryEntry, HistoryReply

USAGE = "/svc history <service> [env] [--limit N]"
DEFAULT_LIMIT = 15
CHANGE_CAUSE = "kubernetes.io/change-cause"


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise UsageError(f"--limit takes a number from 1 to 100, not {text!r}", usage=USAGE)
    return int(text)


def build_parser() -> CommandParser:
    parser = CommandParser("history", USAGE)
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    parser.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT)
    return parser


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    catalog.service(args.service)
    if args.env:
        catalog.environment(args.env)
        return (args.env,)
    return tuple(catalog.environments)


@dataclass(frozen=True)
class _Revision:
    env: str
    number: int
    image: str
    created: float | None
    cause: str
    current: bool


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    names = envs(args, invocation.catalog)
    store = invocation.deploys.store()
    requests = store.requests(service=args.service, env=args.env, limit=args.limit)
    runs = store.runs_of([request.id for request in requests])
    revisions: list[_Revision] = []
    notes: list[str] = []
    for env in names:
        try:
            revisions.extend(_revisions(invocation, args.service, env))
        except (BackendError, UserError) as exc:
            notes.append(f"{env}: revisions not read ({exc.message})")
    entries = _merge(requests, runs, revisions, _approvals(store, requests, runs))[: args.limit]
    return HistoryReply(service=args.service, env=args.env, entries=tuple(entries), notes=tuple(notes),
                        now=time.time(), public=True)


def _revisions(invocation: Invocation, service: str, env: str) -> list[_Revision]:
    workload = workload_of(invocation.catalog, service, env)
    kube = invocation.backends.kube_for_env(env)
    deadline = time.monotonic() + min(5.0, invocation.remaining())
    deployment = kube.read_deployment(workload.namespace, workload.deployment, deadline=deadline)
    owned = rollout.owned_replicasets(deployment, kube.list_replicasets(
        workload.namespace, rollout.selector_string(deployment), deadline=deadline))
    current = rollout.revision(deployment)
    out = []
    for replicaset in owned:
        metadata = replicaset.get("metadata") or {}
        out.append(_Revision(
            env=env, number=rollout.revision(replicaset),
            image=rollout.template_image(replicaset, workload.container),
            created=rollout.parse_time(metadata.get("creationTimestamp")),
            cause=str((metadata.get("annotations") or {}).get(CHANGE_CAUSE) or ""),
            current=rollout.revision(replicaset) == current))
    return out


def _approvals(store: Store, requests: list[RequestRecord], runs: dict[str, RunRecord]) -> dict[str, str]:
    """'approved by U0CAROL, U0ERIN' for each request that needed approval and was approved (it ran, or
    it is APPROVED and waiting to start)."""
    out: dict[str, str] = {}
    for request in requests:
        if request.approval is None or (request.id not in runs and request.state is not State.APPROVED):
            continue
        approvers = [vote.approver for vote in store.votes(request.id) if vote.vote == "approve"]
        if approvers:
            out[request.id] = f"approved by {', '.join(approvers)}"
    return out


def _merge(requests: list[RequestRecord], runs: dict[str, RunRecord],
           revisions: list[_Revision], approvals: dict[str, str] | None = None) -> list[HistoryEntry]:
    """Newest first. A run names the revision it produced (and the one its automatic rollback restored);
    revisions no run produced are listed on their own."""
    current = {(item.env, item.number) for item in revisions if item.current}
    claimed: set[tuple[str, int]] = set()
    entries: list[HistoryEntry] = []

    def claim(env: str, revision: int | None) -> bool:
        """Whether this (first) claimant of the revision runs now."""
        if revision is None or (env, revision) in claimed:
            return False
        claimed.add((env, revision))
        return (env, revision) in current

    for request in requests:
        record = runs.get(request.id)
        revision = record.to_revision if record is not None else None
        image = record.to_image if record is not None and record.to_image else ""
        version = rollout.image_tag(image) if image else request.version
        if request.kind == "rollback":  # its target as it was resolved when asked: '1.4.2 (revision 3)'
            version = rollback_target(str(request.plan.get("image") or "") or image, request.version)
        if record is not None and record.restored_revision is not None:
            entries.append(HistoryEntry(
                when=record.finished_at or record.started_at, env=request.env,
                version=rollout.image_tag(record.from_image) if record.from_image else "",
                revision=record.restored_revision, action="auto rollback", who=request.requester, outcome="",
                duration=None, request_id=request.id,
                current=claim(request.env, record.restored_revision)))
        entries.append(HistoryEntry(
            when=record.started_at if record is not None else request.created_at, env=request.env,
            version=version, revision=revision, action=request.kind, who=request.requester,
            outcome=request.state.value, duration=record.duration if record is not None else None,
            request_id=request.id, detail="; ".join(dict.fromkeys(part for part in (
                (approvals or {}).get(request.id, ""),
                request.reason or (record.failure if record is not None else "")) if part)),
            current=claim(request.env, revision)))
    for item in revisions:
        if (item.env, item.number) in claimed:
            continue
        entries.append(HistoryEntry(
            when=item.created, env=item.env, version=rollout.image_tag(item.image) if item.image else "",
            revision=item.number, action="outside svcbot", who=item.cause or "?",
            outcome="current" if item.current else "", duration=None, current=item.current))
    entries.sort(key=lambda entry: entry.when or 0.0, reverse=True)
    return entries


COMMAND = Command(
    name="history",
    summary="deploys and rollbacks of a service: who, which version, when, outcome, duration",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    examples=("/svc history payment", "/svc history payment prod --limit 30"),
)
