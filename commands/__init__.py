"""The registry: every verb svcbot knows, in the order `/svc help` lists them. No auto-discovery."""

from __future__ import annotations

from bot.dispatch.command import Command
from commands import approve as approve_command
from commands import cancel as cancel_command
from commands import deploy as deploy_command
from commands import diff as diff_command
from commands import help as help_command
from commands import history as history_command
from commands import logs as logs_command
from commands import metrics as metrics_command
from commands import probe as probe_command
from commands import reject as reject_command
from commands import rollback as rollback_command
from commands import status as status_command
from commands import trace as trace_command
from commands import unwatch as unwatch_command
from commands import watch as watch_command
from commands import watches as watches_command

ALL: tuple[Command, ...] = (
    help_command.COMMAND,
    status_command.COMMAND, probe_command.COMMAND,
    logs_command.COMMAND, trace_command.COMMAND, metrics_command.COMMAND,
    diff_command.COMMAND,
    deploy_command.COMMAND, rollback_command.COMMAND, history_command.COMMAND, cancel_command.COMMAND,
    approve_command.COMMAND, reject_command.COMMAND,
    watch_command.COMMAND, unwatch_command.COMMAND, watches_command.COMMAND,
    # one line per verb, in help order
)


def registry(commands: tuple[Command, ...] = ALL) -> dict[str, Command]:
    """Verb name -> Command."""
    return {command.name: command for command in commands}
