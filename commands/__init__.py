"""The registry: every verb svcbot knows, in the order `/svc help` lists them. No auto-discovery."""

from __future__ import annotations

from bot.command import Command
from commands import help as help_command

ALL: tuple[Command, ...] = (
    help_command.COMMAND,
    # one line per verb, in help order
)


def registry(commands: tuple[Command, ...] = ALL) -> dict[str, Command]:
    """Verb name -> Command."""
    return {command.name: command for command in commands}
