"""/svc cancel <id>: stop a running deploy between steps (a running Job is deleted), or withdraw a request.

Governed by the request, not by a catalog rule: its requester may cancel it, and so may anyone the
access rules let deploy (or roll back) that service's environment, since on-call must be able to stop
a bad deploy someone else started. A request awaiting approval (PENDING, or APPROVED but not started)
is withdrawn; one past its expiry is refused as expired; its Slack message is updated. A running
deploy stops after (or, while waiting, inside) its current step and applies its target's `on_failure`;
the run ends CANCELLED. In the terminal the command waits for that end when the run lives in this process.
"""

from __future__ import annotations

import argparse
import re
import time

from bot.core.errors import Forbidden, UsageError, UserError
from bot.deploys import approvals
from bot.deploys.store import RequestRecord, State
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.replies.approvals import WithdrawnReply
from bot.replies.base import Reply
from bot.replies.deploy import CancelReply

USAGE = "/svc cancel <id>"
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _request_id(text: str) -> str:
    if not _ID.match(text):
        raise UsageError(f"{text!r} is not a request id (ids look like 3f9a1c2e)", usage=USAGE)
    return text


def build_parser() -> CommandParser:
    parser = CommandParser("cancel", USAGE)
    parser.add_argument("request_id", type=_request_id, metavar="id")
    return parser


def _may_cancel(invocation: Invocation, request: RequestRecord) -> None:
    if invocation.user == request.requester:
        return
    decision = approvals.policy_for(invocation).check(request.kind, (request.env,), invocation.user)
    if not decision.allowed:
        raise Forbidden(f"only the requester ({request.requester}) or someone allowed to {request.kind} "
                        f"in {request.env} may cancel {request.id}")


def _withdraw(invocation: Invocation, request: RequestRecord) -> Reply:
    """PENDING or APPROVED (not started) -> CANCELLED, once; a PENDING request past its expiry is refused as
    expired (checked inside the UPDATE, like an approval)."""
    store = invocation.backends.store()
    now = time.time()
    if request.state is State.PENDING:
        approvals.ensure_open(store, request, now)
    withdrawn = store.transition(
        request.id, State.CANCELLED, actor=invocation.user, expected=(request.state,),
        unexpired=request.state is State.PENDING, reason=f"cancelled by {invocation.user}", now=now)
    if not withdrawn:
        current = store.request(request.id)
        if current.state is State.PENDING:
            approvals.ensure_open(store, current, now)  # it expired between the two checks
        raise UserError(f"{request.id} is already {current.state.value}; nothing to cancel")
    if request.approval is None:
        return CancelReply(request_id=request.id, service=request.service, env=request.env, state="CANCELLED",
                           detail=f"the {request.kind} request was withdrawn before it ran", public=True)
    # A request awaiting approval has a message with buttons: this reply's view has it updated.
    return WithdrawnReply(request_id=request.id, service=request.service, env=request.env, state="CANCELLED",
                          detail=f"the {request.kind} request was withdrawn before it ran; nothing was deployed",
                          action=request.kind, version=request.version, user=invocation.user, public=True)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    store = invocation.backends.store()
    request = store.request(args.request_id)
    _may_cancel(invocation, request)
    if request.state in (State.PENDING, State.APPROVED):
        return _withdraw(invocation, request)
    if request.state is not State.RUNNING:
        raise UserError(f"{request.id} already ended {request.state.value}; nothing to cancel")
    engine = invocation.backends.runs()
    if not engine.cancel(request.id, invocation.user):
        request = store.request(request.id)
        raise UserError(f"{request.id} is {request.state.value}; it could not be cancelled "
                        "(it ended meanwhile, or a cancel was already asked for)")
    handle = engine.handle(request.id)
    if handle is not None and invocation.source == "terminal":
        snapshot = handle.wait(max(0.0, invocation.deadline - time.monotonic() - 0.5))
        if handle.done():
            return CancelReply(request_id=request.id, service=request.service, env=request.env,
                               state=snapshot.state.value, detail=snapshot.request.reason, public=True)
    return CancelReply(request_id=request.id, service=request.service, env=request.env, state="RUNNING",
                       detail="cancel requested: the run stops after its current step and applies its on_failure",
                       public=True)


COMMAND = Command(
    name="cancel",
    summary="stop a running deploy or withdraw a pending request",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    mutates=True,
    waits_for_run=True,
    examples=("/svc cancel 3f9a1c2e",),
    policy_exempt=True,
)
