"""/svc cancel <id>: stop a running deploy between steps (a running Job is deleted), or withdraw a request.

Governed by the request, not by a catalog rule: its requester may cancel it, and so may anyone the
access rules let deploy (or roll back) that service's environment, since on-call must be able to stop
a bad deploy someone else started. A request awaiting approval (PENDING, or APPROVED but not started)
is withdrawn; one past its expiry is refused as expired; its Slack message is updated. A running
deploy stops after (or, while waiting, inside) its current step and applies its target's `on_failure`;
the run ends CANCELLED. Where the frontend follows runs, the command waits for that end when the run
lives in this process.
"""

from __future__ import annotations

import argparse

from bot.deploys.facade import Withdrawn
from bot.dispatch.command import Command, CommandParser, Invocation, request_id_argument
from bot.replies.approvals import WithdrawnReply
from bot.replies.base import Reply
from bot.replies.deploy import CancelReply

USAGE = "/svc cancel <id>"


def build_parser() -> CommandParser:
    parser = CommandParser("cancel", USAGE)
    parser.add_argument("request_id", type=request_id_argument(USAGE), metavar="id")
    return parser


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    outcome = invocation.deploys.cancel(invocation.access(), args.request_id, invocation.user,
                                        follow=invocation.follow)
    request = outcome.request
    if isinstance(outcome, Withdrawn):
        if request.approval is None:
            return CancelReply(request_id=request.id, service=request.service, env=request.env, state="CANCELLED",
                               detail=f"the {request.kind} request was withdrawn before it ran", public=True)
        # A request awaiting approval has a message with buttons: this reply's view has it updated.
        return WithdrawnReply(request_id=request.id, service=request.service, env=request.env, state="CANCELLED",
                              detail=f"the {request.kind} request was withdrawn before it ran; nothing was deployed",
                              action=request.kind, version=request.version, user=invocation.user, public=True)
    if outcome.ended is not None:
        return CancelReply(request_id=request.id, service=request.service, env=request.env,
                           state=outcome.ended.state.value, detail=outcome.ended.request.reason, public=True)
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
    examples=("/svc cancel 3f9a1c2e",),
    policy_exempt=True,
    waits_for_run=True,
)
