"""/svc rollback <service> <env> [--to REVISION]: `kubectl rollout undo` through the deploy machinery.

The same path as a deploy: validated names, the deploy lock, a stored request (PENDING where the
catalog asks for approval), the audit trail, progress, and the wait for the rollout to finish.
Without --to it goes back to the newest revision that differs from what runs now and did not fail under svcbot
(not kubectl's "previous revision", which after an automatic rollback is the version that just failed); the
target is resolved when the request is made, stored with its plan and named everywhere. Nothing to go back to
is a usage error, and no request is stored.
"""

from __future__ import annotations

import argparse

from bot.core.errors import BackendError, UsageError
from bot.deploys.facade import CurrentImage
from bot.deploys.plan import ROLLBACK_TIMEOUT, plan_rollback
from bot.dispatch.command import Command, CommandParser, Invocation, service_in_env
from bot.replies.base import Reply
from bot.replies.deploy import plan_reply, requested_reply

USAGE = "/svc rollback <service> <env> [--to REVISION] [--dry-run]"


def _revision(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 1_000_000:
        raise UsageError(f"--to takes a revision number like 3 (see /svc history), not {text!r}", usage=USAGE)
    return int(text)


def build_parser() -> CommandParser:
    parser = CommandParser("rollback", USAGE)
    parser.add_argument("service")
    parser.add_argument("env")
    parser.add_argument("--to", dest="revision", type=_revision, default=0, metavar="REVISION")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run")
    return parser


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    deploys = invocation.deploys
    settings = deploys.run_settings
    timeout = settings.rollback_timeout if settings is not None else ROLLBACK_TIMEOUT
    plan = plan_rollback(invocation.catalog, args.service, args.env, args.revision, timeout=timeout)
    try:
        plan, current = deploys.rollback_target(plan, deadline=invocation.deadline)
    except BackendError as exc:
        if not args.dry_run:
            raise
        return plan_reply(plan, CurrentImage("", exc.message))  # a dry run still answers with the cluster down
    if args.dry_run:
        return plan_reply(plan, current)
    return requested_reply(plan, invocation.request_deploy(plan, current))


COMMAND = Command(
    name="rollback",
    summary="roll a deployment back to its last good (or a given) revision",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=service_in_env,
    mutates=True,
    waits_for_run=True,
    examples=("/svc rollback payment staging", "/svc rollback payment prod --to 3"),
)
