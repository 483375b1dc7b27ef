"""/svc deploy <service> <env> <version> [--dry-run]: run the service's pipeline for one version.

Everything the user typed is validated before anything runs (service and environment from the catalog,
the version against the service's pattern). A dry run prints the plan like `make -n` and changes nothing.
Otherwise the request is stored through the deploys facade: PENDING when the access rule asks for
approval, else the run starts; the frontend decides whether to follow it (the terminal waits and prints
progress; in Slack progress goes to the request's thread).
"""

from __future__ import annotations

import argparse

from bot.deploys.plan import plan_deploy
from bot.dispatch.command import Command, CommandParser, Invocation, service_in_env
from bot.replies.base import Reply
from bot.replies.deploy import plan_reply, requested_reply

USAGE = "/svc deploy <service> <env> <version> [--dry-run]"


def build_parser() -> CommandParser:
    parser = CommandParser("deploy", USAGE)
    parser.add_argument("service")
    parser.add_argument("env")
    parser.add_argument("version")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run")
    return parser


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    plan = plan_deploy(invocation.catalog, args.service, args.env, args.version)
    current = invocation.deploys.current_image(plan, deadline=invocation.deadline)
    if args.dry_run:
        return plan_reply(plan, current)
    return requested_reply(plan, invocation.request_deploy(plan, current))


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
