"""/svc approve <id>: approve a PENDING deploy or rollback; the approval that reaches the quorum starts it.

Governed by the request, not by a catalog rule (`policy_exempt`): its approvers may approve it, its
requester only where the rule says `self_approval: true`. The run executes the plan stored with the
request, exactly as its approval message showed it, even if the catalog changed since. In Slack the
answer comes at once and progress goes to the request message's thread; in the terminal the command
waits for the run (`svcbot run` exits 3 when it ends FAILED, ROLLED_BACK or INTERRUPTED).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time

from bot.core.errors import BackendError, Conflict, UsageError
from bot.deploys import approvals
from bot.deploys.pipeline import Plan, TerminalSink
from bot.deploys.store import State
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.replies.approvals import ApprovalReply
from bot.replies.base import Outcome, Reply
from commands.deploy import current_image, run_reply

USAGE = "/svc approve <id>"
WAIT_MARGIN = 0.5  # seconds kept before the command deadline to answer when a run outlasts it
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def request_id(text: str, usage: str = USAGE) -> str:
    """A request id as typed (or carried by a button): letters, digits and dashes only."""
    if not _ID.match(text):
        raise UsageError(f"{text!r} is not a request id (ids look like 3f9a1c2e)", usage=usage)
    return text


def build_parser() -> CommandParser:
    parser = CommandParser("approve", USAGE)
    parser.add_argument("request_id", type=request_id, metavar="id")
    return parser


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    store = invocation.backends.store()
    result = approvals.approve(store, approvals.policy_for(invocation), args.request_id, invocation.user)
    request = result.request
    reply = ApprovalReply(request_id=request.id, action=request.kind, service=request.service, env=request.env,
                          version=request.version, user=invocation.user,
                          decision="started" if result.decision == "start" else result.decision,
                          approvals=result.approvals, quorum=result.quorum, public=True)
    if result.decision == "voted":
        return reply
    return start(reply, invocation)


def start(reply: ApprovalReply, invocation: Invocation) -> ApprovalReply:
    """Run the request's stored plan; the terminal waits for its end."""
    store = invocation.backends.store()
    request = store.request(reply.request_id)
    plan = Plan.from_json(request.plan)
    current, _ = current_image(invocation, plan)
    engine = invocation.backends.runs()
    sink = TerminalSink(invocation.progress) if invocation.source == "terminal" else None
    try:
        handle = engine.start(request.id, sink, actor=invocation.user, from_image=current)
    except (Conflict, BackendError) as exc:
        state = store.request(request.id).state
        if state is not State.APPROVED:  # started (or ended) by someone else meanwhile
            raise Conflict(f"{request.id} is already {state.value}") from exc
        # It stays APPROVED; recorded so that an approver's `/svc approve <id>` may start it later.
        approvals.record_not_started(store, request.id, invocation.user, exc.message)
        outcome = Outcome.USER_ERROR if isinstance(exc, Conflict) else Outcome.INTERNAL_ERROR
        return dataclasses.replace(reply, not_started=exc.message, outcome=outcome)
    if invocation.source != "terminal":
        return dataclasses.replace(reply, run=run_reply(store.snapshot(request.id), waited=False))
    snapshot = handle.wait(max(0.0, invocation.deadline - time.monotonic() - WAIT_MARGIN))
    finished = run_reply(snapshot, waited=True)
    return dataclasses.replace(reply, run=finished, outcome=finished.outcome)


COMMAND = Command(
    name="approve",
    summary="approve a pending deploy or rollback (its approvers; the quorum's last approval starts it)",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    mutates=True,
    examples=("/svc approve 3f9a1c2e",),
    policy_exempt=True,
    waits_for_run=True,
)
