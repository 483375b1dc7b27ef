"""/svc unwatch <service|all> [env]: this channel stops hearing about that service (without env: in every
environment). Open incidents stay open and are still resolved in their threads."""

from __future__ import annotations

import argparse
import time

from bot.core.catalog import Catalog
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.replies.base import Reply
from bot.replies.watch import WatchesReply, scope
from bot.watch.book import ALL, Book, terminal_channel

USAGE = "/svc unwatch <service|all> [env]"


def build_parser() -> CommandParser:
    parser = CommandParser("unwatch", USAGE)
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    return parser


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    if args.service != "all":
        catalog.service(args.service)
    if args.env:
        catalog.environment(args.env)
        return (args.env,)
    return tuple(catalog.environments)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    terminal = not (invocation.source == "slack" and invocation.channel)
    channel = terminal_channel(invocation.os_user or invocation.user or "terminal") if terminal else invocation.channel
    service = ALL if args.service == "all" else args.service
    env = args.env or ALL
    book = Book(invocation.deploys.store())
    removed = book.unsubscribe(channel, service, env)
    where = "this terminal" if terminal else "this channel"
    changed = (f"{where} no longer watches {scope(service, env)}" if removed
               else f"{where} was not watching {scope(service, env)}: nothing to stop")
    subscriptions = tuple(book.subscriptions(channel))
    return WatchesReply(channel=channel, subscriptions=subscriptions, incidents=(), now=time.time(),
                        changed=changed, public=not terminal)


COMMAND = Command(
    name="unwatch",
    summary="stop posting a service's incidents in this channel",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    mutates=True,
    examples=("/svc unwatch payment", "/svc unwatch all prod"),
)
