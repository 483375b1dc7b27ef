"""/svc reject <id> [reason]: reject a PENDING deploy or rollback; one approver's reject ends it.

Governed by the request (`policy_exempt`): any of its approvers may reject it. The reason, if given, is
recorded with the vote and shown on the request's message (escaped: it is what a person typed).
"""

from __future__ import annotations

import argparse

from bot.deploys.approvals import clean_reason
from bot.dispatch.command import Command, CommandParser, Invocation, request_id_argument
from bot.replies.approvals import ApprovalReply
from bot.replies.base import Reply

USAGE = "/svc reject <id> [reason]"


def build_parser() -> CommandParser:
    parser = CommandParser("reject", USAGE)
    parser.add_argument("request_id", type=request_id_argument(USAGE), metavar="id")
    parser.add_argument("reason", nargs="*", help="why (recorded and shown on the request)")
    return parser


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    reason = clean_reason(" ".join(args.reason))
    result = invocation.deploys.reject(invocation.access(), args.request_id, invocation.user, reason)
    request = result.request
    return ApprovalReply(request_id=request.id, action=request.kind, service=request.service, env=request.env,
                         version=request.version, user=invocation.user, decision=result.decision,
                         approvals=result.approvals, quorum=result.quorum, reason=reason, public=True)


COMMAND = Command(
    name="reject",
    summary="reject a pending deploy or rollback (its approvers; one reject ends it)",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    mutates=True,
    examples=("/svc reject 3f9a1c2e", "/svc reject 3f9a1c2e not during the sale"),
    policy_exempt=True,
)
