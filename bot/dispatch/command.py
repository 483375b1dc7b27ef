"""What a verb is: the `Command` record each commands/<verb>.py exports, and what its run function gets.

A command module builds an argparse parser (errors raise `UsageError`, never `sys.exit`), names the
environments a parsed command touches (so the policy can check each), and runs with an `Invocation`:
the acting user, the deadline, the catalog and lazily created backend clients. It returns a Reply.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from bot.core.errors import DeadlineExceeded, UsageError
from bot.replies.base import Reply

if TYPE_CHECKING:
    from bot.clients.backends import Backends
    from bot.core.catalog import Approval, Catalog
    from bot.core.policy import Policy


class CommandParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting."""

    def __init__(self, verb: str, usage: str) -> None:
        super().__init__(prog=f"/svc {verb}", usage=usage, add_help=False, allow_abbrev=False)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, usage=self.usage or "")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError((message or "invalid arguments").strip(), usage=self.usage or "")


def no_progress(_line: str) -> None:
    """The default progress sink: nothing to report to."""


@dataclass(frozen=True)
class Invocation:
    """Everything a run function may use besides its arguments."""

    catalog: Catalog
    backends: Backends
    user: str  # a Slack user id, or the terminal's acting user
    request_id: str
    deadline: float  # time.monotonic() value by which the command must answer
    source: str = "slack"  # "slack" or "terminal"
    channel: str = ""
    progress: Callable[[str], None] = field(default=no_progress)
    os_user: str = ""  # the terminal's OS user, audited beside `user`
    commands: Mapping[str, Command] = field(default_factory=dict)  # the registry, for help
    approval: Approval | None = None  # set when the strictest matching access rule requires approval
    policy: Policy | None = None  # the dispatcher's policy (it resolves Slack user groups)

    def remaining(self) -> float:
        """Seconds left before the deadline; raises DeadlineExceeded when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the command ran out of time")
        return left


def no_envs(_args: argparse.Namespace, _catalog: Catalog) -> tuple[str, ...]:
    return ()


def service_in_env(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    """`envs` for verbs on `<service> [env]`: both checked against the catalog, the env defaulted."""
    catalog.service(args.service)
    env: str = args.env or catalog.settings.default_env
    catalog.environment(env)
    return (env,)


@dataclass(frozen=True)
class Command:
    """One verb. `envs` names every environment the parsed command touches (validated against the catalog)."""

    name: str
    summary: str
    usage: str
    build_parser: Callable[[], CommandParser]
    run: Callable[[argparse.Namespace, Invocation], Reply]
    envs: Callable[[argparse.Namespace, Catalog], tuple[str, ...]] = no_envs
    mutates: bool = False
    examples: Sequence[str] = ()
    # approve/reject/cancel are governed by the request itself, help by nobody: no catalog rule applies.
    policy_exempt: bool = False
    # In the terminal the command waits for the deploy run it starts or decides (`svcbot run` exits 3 when
    # it ends badly), so the command deadline does not apply there; runs have their own step timeouts.
    waits_for_run: bool = False
