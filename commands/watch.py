"""/svc watch <service|all> [env]: this channel hears about that service's incidents (bot/watch/).

The env defaults to every environment. The access rules govern it like any verb (the catalog's `watch`),
checked against every environment it covers. The bot must be able to post in the channel: a channel it is not
a member of is refused with "invite @svcbot first". In the terminal the subscription is the terminal user's
(channel `terminal:<user>`): `svcbot shell` prints its incidents between prompts; Slack never posts there.
"""

from __future__ import annotations

import argparse
import time

from bot.core.catalog import Catalog
from bot.core.errors import UserError
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.replies.base import Reply
from bot.replies.watch import WatchesReply, scope
from bot.watch.book import ALL, TERMINAL, Book, terminal_channel

USAGE = "/svc watch <service|all> [env]"
INVITE = "invite @svcbot first: I can only post incidents in a channel I am a member of (/invite @svcbot)"


def build_parser() -> CommandParser:
    parser = CommandParser("watch", USAGE)
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    return parser


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    """Every environment the subscription covers (the policy checks each)."""
    if args.service != "all":
        catalog.service(args.service)
    if args.env:
        catalog.environment(args.env)
        return (args.env,)
    return tuple(catalog.environments)


def subscribing_channel(invocation: Invocation) -> str:
    """The Slack channel asked in, or the terminal's own "channel" (terminal:<user>: the shell prints it)."""
    if invocation.source == "slack" and invocation.channel:
        return invocation.channel
    return terminal_channel(invocation.os_user or invocation.user or "terminal")


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    channel = subscribing_channel(invocation)
    terminal = channel.startswith(TERMINAL)
    member = invocation.channel_member(channel) if invocation.channel_member is not None and not terminal else None
    if member is False:
        raise UserError(INVITE)
    service = ALL if args.service == "all" else args.service
    env = args.env or ALL
    book = Book(invocation.deploys.store())
    added = book.subscribe(channel, service, env, invocation.user)
    what = scope(service, env)
    where = "this terminal" if terminal else "this channel"
    changed = f"{where} now watches {what}" if added else f"{where} already watches {what}"
    if terminal:
        changed += " (`svcbot shell` prints its incidents between prompts, while svcbot watches the clusters)"
    subscriptions = tuple(book.subscriptions(channel))
    incidents = tuple(incident for incident in book.incidents()
                      if any(sub.covers(incident.service, incident.env) for sub in subscriptions))
    return WatchesReply(channel=channel, subscriptions=subscriptions, incidents=incidents, now=time.time(),
                        changed=changed, public=True)


COMMAND = Command(
    name="watch",
    summary="post this service's incidents (crash loops, OOMKills, failing rollouts...) in this channel",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    mutates=True,
    examples=("/svc watch payment", "/svc watch payment prod", "/svc watch all prod"),
)
