"""/svc approve <id>: approve a PENDING deploy or rollback; the approval that reaches the quorum starts it.

Governed by the request, not by a catalog rule (`policy_exempt`): its approvers may approve it, its
requester only where the rule says `self_approval: true`. The run executes the plan stored with the
request, exactly as its approval message showed it, even if the catalog changed since. Where the frontend
follows runs (the terminal) the command waits for the run (`svcbot run` exits 3 when it ends badly);
in Slack the answer comes at once and progress goes to the request message's thread.
"""

from __future__ import annotations

import argparse
import dataclasses

from bot.deploys.approvals import Decision
from bot.dispatch.command import Command, CommandParser, Invocation, request_id_argument
from bot.replies.approvals import ApprovalReply
from bot.replies.base import Outcome, Reply
from bot.replies.deploy import run_reply

USAGE = "/svc approve <id>"


def build_parser() -> CommandParser:
    parser = CommandParser("approve", USAGE)
    parser.add_argument("request_id", type=request_id_argument(USAGE), metavar="id")
    return parser


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    voted = invocation.deploys.approve(invocation.access(), args.request_id, invocation.user,
                                       follow=invocation.follow)
    result = voted.result
    request = result.request
    decision = Decision.STARTED if result.decision is Decision.START_AGAIN else result.decision
    reply = ApprovalReply(request_id=request.id, action=request.kind, service=request.service, env=request.env,
                          version=request.version, target_image=str(request.plan.get("image") or ""),
                          user=invocation.user, decision=decision,
                          approvals=result.approvals, quorum=result.quorum, public=True)
    if voted.superseded:
        return dataclasses.replace(reply, superseded=voted.superseded, outcome=Outcome.USER_ERROR)
    if voted.not_started:
        outcome = Outcome.USER_ERROR if voted.not_started_by_conflict else Outcome.INTERNAL_ERROR
        return dataclasses.replace(reply, not_started=voted.not_started, outcome=outcome)
    if voted.started is None:
        return reply
    started = run_reply(voted.started.snapshot, waited=voted.started.waited)
    outcome = started.outcome if voted.started.waited else reply.outcome
    return dataclasses.replace(reply, run=started, outcome=outcome)


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
