"""What a verb is: the `Command` record each commands/<verb>.py exports, and what its run function gets.

A command module builds an argparse parser (errors raise `UsageError`, never `sys.exit`), names the
environments a parsed command touches (so the policy can check each), and runs with an `Invocation`:
the acting user, the deadline, the catalog and lazily created backend clients. It returns a Reply.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from bot.core.errors import DeadlineExceeded, UsageError
from bot.core.policy import Policy
from bot.replies.base import Reply

if TYPE_CHECKING:
    from bot.clients.backends import Backends
    from bot.core.catalog import Approval, Catalog
    from bot.deploys.facade import CurrentImage, Deploys, Follow, Pending, Started
    from bot.deploys.plan import Plan


class CommandParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting, in the words of the verb's usage line."""

    def __init__(self, verb: str, usage: str) -> None:
        super().__init__(prog=f"/svc {verb}", usage=usage, add_help=False, allow_abbrev=False)

    def error(self, message: str) -> NoReturn:
        raise UsageError(usage_words(message, self.usage or ""), usage=self.usage or "")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError((message or "invalid arguments").strip(), usage=self.usage or "")


_REQUIRED = re.compile(r"^the following arguments are required: (.+)$")
_NO_VALUE = re.compile(r"^argument (--[a-z-]+): expected one argument$")
_UNRECOGNIZED = re.compile(r"^unrecognized arguments: (.+)$")
_ARGUMENT = re.compile(r"^argument ([^:]+): (.+)$")


def _squashed(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _usage_name(dest: str, usage: str) -> str:
    """argparse's name of an argument (`env_b`, `trace_id`) -> the usage line's (`<envB>`, `<trace-id>`)."""
    for token in re.findall(r"<([^>]+)>", usage):
        if any(_squashed(part) == _squashed(dest) for part in [token, *token.split("|")]):
            return f"<{token}>"
    return f"<{dest}>"


def usage_words(message: str, usage: str) -> str:
    """argparse's error messages said in the words of the verb's usage line (README's words)."""
    if match := _REQUIRED.match(message):
        names = [_usage_name(name.strip(), usage) for name in match.group(1).split(",")]
        return f"missing {' and '.join(names)}"
    if match := _NO_VALUE.match(message):
        flag = match.group(1)
        example = re.search(rf"\[{re.escape(flag)} ([^\]]+)\]", usage)
        like = f", like {flag} {example.group(1)}" if example else ""
        return f"{flag} needs a value{like} (a value that starts with '-' reads as another option)"
    if match := _UNRECOGNIZED.match(message):
        extra = match.group(1)
        shown = extra if len(extra) <= 60 else extra[:59] + "…"
        return f"unexpected {shown!r}: more words than the command takes"
    if match := _ARGUMENT.match(message):
        name = match.group(1)
        name = name if name.startswith("-") else _usage_name(name.split("/")[0], usage)
        return f"{name}: {match.group(2)}"
    return message


def no_progress(_line: str) -> None:
    """The default progress sink: nothing to report to."""


@dataclass(frozen=True)
class Invocation:
    """Everything a run function may use besides its arguments."""

    catalog: Catalog
    backends: Backends
    deploys: Deploys
    user: str  # a Slack user id, or the terminal's acting user
    request_id: str
    deadline: float  # time.monotonic() value by which the command must answer
    source: str = "slack"  # where the command came from, recorded with deploy requests ("slack", "terminal")
    channel: str = ""
    progress: Callable[[str], None] = field(default=no_progress)
    # Set by the frontend that follows the runs a command starts (the terminal waits for them and prints
    # their progress); None where runs report elsewhere (Slack: the request's thread) and the answer is at once.
    follow: Follow | None = None
    os_user: str = ""  # the terminal's OS user, audited beside `user`
    commands: Mapping[str, Command] = field(default_factory=dict)  # the registry, for help
    approval: Approval | None = None  # set when the strictest matching access rule requires approval
    policy: Policy | None = None  # the dispatcher's policy (it resolves Slack user groups)
    # Whether the bot is a member of a channel (None: the frontend cannot tell); set where Slack is the frontend.
    channel_member: Callable[[str], bool | None] | None = None

    def remaining(self) -> float:
        """Seconds left before the deadline; raises DeadlineExceeded when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the command ran out of time")
        return left

    def access(self) -> Policy:
        """The dispatcher's policy when there is one (it resolves Slack user groups through
        usergroups.users.list); otherwise the catalog's own, where user groups have no members."""
        return self.policy or Policy(self.catalog)

    def request_deploy(self, plan: Plan, current: CurrentImage) -> Pending | Started:
        """Store a deploy or rollback request for this invocation's user (PENDING where the access rule asks for
        approval, else started, followed where the frontend follows runs)."""
        deploys = self.deploys
        return deploys.request(plan, current, user=self.user, approval=deploys.approval_for(plan, self.approval),
                               os_user=self.os_user, source=self.source, channel=self.channel, follow=self.follow)

    def answer_deadline(self) -> float:
        """When backend calls must be done: a margin before the command's deadline, to still answer."""
        left = self.remaining()
        return time.monotonic() + left - min(1.0, left * 0.1)


_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def request_id_argument(usage: str) -> Callable[[str], str]:
    """The argparse type of a request id as typed (or carried by a button): letters, digits and dashes."""

    def request_id(text: str) -> str:
        if not _REQUEST_ID.match(text):
            raise UsageError(f"{text!r} is not a request id (ids look like 3f9a1c2e)", usage=usage)
        return text

    return request_id


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
    # Where the frontend follows runs (the terminal), the command waits for the deploy run it starts or
    # decides (`svcbot run` exits 3 when it ends badly), so the command deadline does not apply there; runs
    # have their own step timeouts.
    waits_for_run: bool = False
