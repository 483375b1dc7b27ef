"""/svc watches: what this channel watches, and the incidents open for it."""

from __future__ import annotations

import argparse
import time

from bot.dispatch.command import Command, CommandParser, Invocation
from bot.replies.base import Reply
from bot.replies.watch import WatchesReply
from bot.watch.book import Book, terminal_channel

USAGE = "/svc watches"


def build_parser() -> CommandParser:
    return CommandParser("watches", USAGE)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    book = Book(invocation.deploys.store())
    terminal = not (invocation.source == "slack" and invocation.channel)
    channel = terminal_channel(invocation.os_user or invocation.user or "terminal") if terminal else invocation.channel
    subscriptions = tuple(book.subscriptions(channel))
    incidents = tuple(incident for incident in book.incidents()
                      if any(sub.covers(incident.service, incident.env) for sub in subscriptions))
    return WatchesReply(channel=channel, subscriptions=subscriptions, incidents=incidents, now=time.time())


COMMAND = Command(
    name="watches",
    summary="what this channel watches, and its open incidents",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=lambda _args, catalog: tuple(catalog.environments),
    examples=("/svc watches",),
)
