"""/svc deploy <service> <env> <version> [--dry-run]: run the service's pipeline for one version.

Everything the user typed is validated before anything runs (service and environment from the catalog,
the version against the service's pattern). A dry run prints the plan like `make -n` and changes nothing.
Otherwise the plan is stored with a request: PENDING when the access rule asks for approval (issue 8
adds the buttons), else the deploy lock is taken and the run starts on the deploy engine's executor.
In the terminal the command waits for the run and prints progress; in Slack progress goes to the
request's thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from bot.core.catalog import Approval
from bot.core.errors import BackendError, Conflict, UserError
from bot.deploys.pipeline import Plan, TerminalSink, change_text, plan_deploy
from bot.deploys.store import BAD_ENDINGS, NewRequest, Snapshot, State, new_id
from bot.dispatch.command import Command, CommandParser, Invocation, service_in_env
from bot.insight.kube_facts import template_image
from bot.replies.base import Outcome, Reply
from bot.replies.deploy import DeployPendingReply, DeployPlanReply, DeployRunReply, PlanLine, RunStepFact

USAGE = "/svc deploy <service> <env> <version> [--dry-run]"
WAIT_MARGIN = 0.5  # seconds kept before the command deadline to answer when a run outlasts it


def build_parser() -> CommandParser:
    parser = CommandParser("deploy", USAGE)
    parser.add_argument("service")
    parser.add_argument("env")
    parser.add_argument("version")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run")
    return parser


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    plan = plan_deploy(invocation.catalog, args.service, args.env, args.version)
    current, note = current_image(invocation, plan)
    if args.dry_run:
        return plan_reply(plan, current, note)
    return launch(plan, invocation, current)


# --- shared with rollback -----------------------------------------------------------------------------

def plan_lines(plan: Plan) -> tuple[PlanLine, ...]:
    return tuple(PlanLine(target=step.target, line=step.describe(plan.workload),
                          rollback_on_failure=step.rollback_on_failure) for step in plan.steps)


def plan_reply(plan: Plan, current: str, note: str = "") -> DeployPlanReply:
    return DeployPlanReply(action=plan.action, service=plan.service, env=plan.env, version=plan.version,
                           pipeline=plan.pipeline, namespace=plan.workload.namespace,
                           deployment=plan.workload.deployment, current_image=current, target_image=plan.image,
                           steps=plan_lines(plan), note=note)


def current_image(invocation: Invocation, plan: Plan) -> tuple[str, str]:
    """The image the deployment runs now, or ("", why not): a dry run still answers with the cluster down."""
    workload = plan.workload
    try:
        kube = invocation.backends.kube_for_env(plan.env)
        deployment = kube.read_deployment(workload.namespace, workload.deployment,
                                          deadline=time.monotonic() + min(5.0, invocation.remaining()))
    except (BackendError, UserError) as exc:
        return "", exc.message
    return template_image(deployment, workload.container), ""


def approval_for(invocation: Invocation, plan: Plan) -> Approval | None:
    """The approval the strictest matching rule asks for (a protected environment always asks for one)."""
    catalog = invocation.catalog
    if invocation.approval is not None:  # the dispatcher's policy decision (user groups resolved)
        return invocation.approval
    if not catalog.environment(plan.env).protected:
        return None
    covering = [rule.approval for rule in catalog.access.rules
                if plan.action in rule.verbs and ("*" in rule.envs or plan.env in rule.envs) and rule.approval]
    if not covering:
        raise UserError(f"{plan.env} is protected but no access rule names its approvers; "
                        "nothing can be deployed there until the catalog says who approves")
    return max(covering, key=lambda approval: (approval.quorum, not approval.self_approval))


def launch(plan: Plan, invocation: Invocation, current: str) -> Reply:
    """Store the request; run it now unless it needs approval. The terminal waits for the end."""
    store = invocation.backends.store()
    approval = approval_for(invocation, plan)
    base = NewRequest(kind=plan.action, service=plan.service, env=plan.env, version=plan.version,
                      requester=invocation.user, plan=plan.to_json(), os_user=invocation.os_user,
                      source=invocation.source, channel=invocation.channel)
    if approval is not None:
        return _pending(plan, invocation, base, approval, current)
    engine = invocation.backends.runs()
    run_id = new_id()
    try:
        lock = engine.acquire_lock(plan, run_id, invocation.user)
    except Conflict as exc:
        store.record(invocation.user, f"{plan.action}.refused",
                     detail={"service": plan.service, "env": plan.env, "version": plan.version,
                             "reason": exc.message})
        raise
    try:
        store.create_request(dataclasses.replace(base, id=run_id, state=State.APPROVED))
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    sink = TerminalSink(invocation.progress) if invocation.source == "terminal" else None
    handle = engine.start(run_id, sink, lock=lock, actor=invocation.user, from_image=current)
    if invocation.source != "terminal":
        return run_reply(invocation.backends.store().snapshot(run_id), waited=False)
    # The terminal waits for the end (`svcbot run` exits 3 on a bad one), within the command's deadline.
    snapshot = handle.wait(max(0.0, invocation.deadline - time.monotonic() - WAIT_MARGIN))
    return run_reply(snapshot, waited=True)


def _pending(plan: Plan, invocation: Invocation, base: NewRequest, approval: Approval, current: str) -> Reply:
    expires_at = time.time() + approval.expires
    request = invocation.backends.store().create_request(dataclasses.replace(
        base, state=State.PENDING, expires_at=expires_at,
        approval={"approvers": list(approval.approvers), "quorum": approval.quorum,
                  "self_approval": approval.self_approval, "expires": approval.expires}))
    return DeployPendingReply(
        request_id=request.id, action=plan.action, service=plan.service, env=plan.env, version=plan.version,
        requester=invocation.user, current_image=current, target_image=plan.image, steps=plan_lines(plan),
        approvers=approval.approvers, quorum=approval.quorum, expires_at=expires_at,
        reason=f"{plan.env} {plan.action}s need approval", public=True)


def run_reply(snapshot: Snapshot, *, waited: bool, approved_by: tuple[str, ...] = ()) -> DeployRunReply:
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


COMMAND = Command(
    name="deploy",
    summary="deploy a version through the service's pipeline (approval where the catalog asks for it)",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=service_in_env,
    mutates=True,
    waits_for_run=True,
    examples=("/svc deploy payment staging 1.4.2 --dry-run", "/svc deploy payment staging 1.4.2"),
)
