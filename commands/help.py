"""/svc help [verb]: generated from the registry, so it never drifts from what the bot accepts."""

from __future__ import annotations

import argparse

from bot.core.errors import UsageError
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.replies.base import HelpReply, Reply, VerbHelp

USAGE = "/svc help [verb]"


def build_parser() -> CommandParser:
    parser = CommandParser("help", USAGE)
    parser.add_argument("verb", nargs="?")
    return parser


def _describe(command: Command) -> VerbHelp:
    return VerbHelp(name=command.name, summary=command.summary, usage=command.usage,
                    examples=tuple(command.examples), mutates=command.mutates)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    table = invocation.commands
    if args.verb:
        command = table.get(args.verb.lower())
        if command is None:
            raise UsageError(f"no command '{args.verb}' (known: {', '.join(table)})", usage=USAGE)
        return HelpReply(verbs=(_describe(command),), detailed=True)
    return HelpReply(verbs=tuple(_describe(command) for command in table.values()))


COMMAND = Command(
    name="help",
    summary="list the commands, or explain one",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    examples=("/svc help", "/svc help logs"),
    policy_exempt=True,
)
