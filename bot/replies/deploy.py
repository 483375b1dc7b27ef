"""Replies of /svc deploy, rollback, history and cancel: facts about plans and runs, no layout
(bot/render/deploy_view.py lays them out)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.deploys.facade import CurrentImage, Pending, Started
from bot.deploys.plan import Plan
from bot.deploys.progress import change_text
from bot.deploys.store import BAD_ENDINGS, Snapshot
from bot.replies.base import Outcome, Reply


@dataclass(frozen=True)
class PlanLine:
    """One step of a plan: its target and its `make -n`-style line."""

    target: str
    line: str
    rollback_on_failure: bool = False


@dataclass(frozen=True)
class DeployPlanReply(Reply):
    """`deploy ... --dry-run`: what would run, with every argument substituted. Nothing was changed."""

    action: str  # "deploy" | "rollback"
    service: str
    env: str
    version: str
    pipeline: str
    namespace: str
    deployment: str
    current_image: str  # "" when the cluster could not be asked
    target_image: str
    steps: tuple[PlanLine, ...]
    note: str = ""  # why current_image is unknown


@dataclass(frozen=True)
class DeployPendingReply(Reply):
    """A request stored PENDING with its exact plan, waiting for approval."""

    request_id: str
    action: str
    service: str
    env: str
    version: str
    requester: str
    current_image: str
    target_image: str
    steps: tuple[PlanLine, ...]
    approvers: tuple[str, ...]
    quorum: int
    expires_at: float | None
    reason: str  # "prod deploys need approval"


@dataclass(frozen=True)
class RunStepFact:
    seq: int
    target: str
    kind: str
    description: str
    state: str  # StepState value
    duration: float | None
    error: str = ""
    output_tail: str = ""


@dataclass(frozen=True)
class DeployRunReply(Reply):
    """A deploy or rollback run: just started (Slack: progress follows in the thread), or finished."""

    request_id: str
    action: str
    service: str
    env: str
    version: str
    requester: str
    state: str  # the request's State value: RUNNING, SUCCEEDED, FAILED, ROLLED_BACK, CANCELLED, ...
    change: str  # "1.4.1 -> 1.4.2"
    from_image: str
    to_image: str
    started_at: float | None
    duration: float | None
    steps: tuple[RunStepFact, ...]
    reason: str = ""  # the one-line account of how it ended
    failure: str = ""
    rollback: str = ""
    waited: bool = False  # the command waited for the end (terminal; it may have run out of time first);
    # False: it answered at once and progress goes to the request's thread (Slack)
    approved_by: tuple[str, ...] = ()  # for a request that needed approval: who approved it

    @property
    def finished(self) -> bool:
        return self.state not in ("RUNNING", "APPROVED", "PENDING")

    @property
    def failed_step(self) -> RunStepFact | None:
        return next((step for step in self.steps if step.state == "FAILED"), None)


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a deployment: a svcbot run, a ReplicaSet revision made outside svcbot, or both."""

    when: float | None  # epoch seconds
    env: str
    version: str  # image tag it went to ("" if unknown)
    revision: int | None
    action: str  # "deploy", "rollback" or "outside svcbot"
    who: str
    outcome: str  # the run's State value, or "current"/"" for revisions without a run
    duration: float | None
    request_id: str = ""
    detail: str = ""  # what failed, what was restored
    current: bool = False  # the revision the deployment runs now


@dataclass(frozen=True)
class HistoryReply(Reply):
    service: str
    env: str | None
    entries: tuple[HistoryEntry, ...]
    notes: tuple[str, ...] = ()  # environments whose cluster could not be read, and why
    now: float = 0.0


@dataclass(frozen=True)
class CancelReply(Reply):
    request_id: str
    service: str
    env: str
    state: str  # the request's state after the command (CANCELLED, or RUNNING while it stops)
    detail: str


# --- from the deploys facade's outcomes --------------------------------------------------------------------

def plan_lines(plan: Plan) -> tuple[PlanLine, ...]:
    return tuple(PlanLine(target=step.target, line=step.describe(plan.workload),
                          rollback_on_failure=step.rollback_on_failure) for step in plan.steps)


def plan_reply(plan: Plan, current: CurrentImage) -> DeployPlanReply:
    """A dry run: the plan like `make -n`, with what runs now."""
    return DeployPlanReply(action=plan.action, service=plan.service, env=plan.env, version=plan.version,
                           pipeline=plan.pipeline, namespace=plan.workload.namespace,
                           deployment=plan.workload.deployment, current_image=current.image, target_image=plan.image,
                           steps=plan_lines(plan), note=current.note)


def pending_reply(plan: Plan, pending: Pending) -> DeployPendingReply:
    """A request stored PENDING, waiting for its approvers."""
    request, approval = pending.request, pending.approval
    return DeployPendingReply(
        request_id=request.id, action=plan.action, service=plan.service, env=plan.env, version=plan.version,
        requester=request.requester, current_image=pending.current_image, target_image=plan.image,
        steps=plan_lines(plan), approvers=approval.approvers, quorum=approval.quorum,
        expires_at=request.expires_at, reason=f"{plan.env} {plan.action}s need approval", public=True)


def requested_reply(plan: Plan, outcome: Pending | Started) -> DeployPendingReply | DeployRunReply:
    """What a deploy or rollback request answers: waiting for approval, or its run."""
    if isinstance(outcome, Pending):
        return pending_reply(plan, outcome)
    return run_reply(outcome.snapshot, waited=outcome.waited)


def run_reply(snapshot: Snapshot, *, waited: bool, approved_by: tuple[str, ...] = ()) -> DeployRunReply:
    """A run as the store has it: RUNNING when the caller does not wait, its outcome when it did."""
    request, record = snapshot.request, snapshot.run
    steps = tuple(RunStepFact(seq=step.seq, target=step.target, kind=step.kind, description=step.description,
                              state=step.state.value, duration=step.duration, error=step.error,
                              output_tail=step.output_tail) for step in snapshot.steps)
    ended_badly = snapshot.state in BAD_ENDINGS
    return DeployRunReply(
        request_id=request.id, action=request.kind, service=request.service, env=request.env,
        version=request.version, requester=request.requester, state=request.state.value,
        change=change_text(snapshot), from_image=record.from_image if record else "",
        to_image=record.to_image if record else "", started_at=record.started_at if record else None,
        duration=record.duration if record else None, steps=steps, reason=request.reason,
        failure=record.failure if record else "", rollback=record.rollback if record else "", waited=waited,
        approved_by=approved_by,
        outcome=Outcome.RUN_FAILED if ended_badly else Outcome.OK, public=True)
