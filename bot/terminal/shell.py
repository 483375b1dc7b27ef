"""The terminal: `svcbot shell` (interactive) and `svcbot run` (one command), on the same dispatcher.

Identity: `--as`/`as USER` only when the catalog says `terminal: {allow_as: true}`; otherwise the acting
user is the OS user mapped through `terminal.users`, or nobody (`terminal:<os user>`, which matches only
rules open to everyone). The OS user is logged beside the acting user on every command.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, get_args

from bot.core.catalog import Catalog, RuleVerb
from bot.core.errors import UsageError
from bot.core.policy import Policy
from bot.dispatch.dispatcher import Dispatcher
from bot.render import text as text_render
from bot.render.views import to_document  # importing bot.render registers every view
from bot.replies.base import Reply

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
PROMPT = "svc> "
SHELL_HELP = """
shell commands
  as USER    act as another user (a terminal user or a Slack user id), where the catalog allows it
  whoami     who you act as, your groups, and what you may do where
  exit       leave the shell (Ctrl-D too)
"""


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return os.environ.get("USER", "unknown")


def default_user(catalog: Catalog, login: str) -> str:
    return catalog.terminal.users.get(login, f"terminal:{login}")


def resolve_as(catalog: Catalog, who: str) -> str:
    """The user id `--as WHO` stands for; refused unless the catalog allows acting as someone else."""
    if not catalog.terminal.allow_as:
        raise UsageError("acting as another user is off in this catalog (terminal.allow_as: false)")
    if who in catalog.terminal.users:
        return catalog.terminal.users[who]
    if _USER_ID.match(who):
        return who
    known = ", ".join(catalog.terminal.users) or "none"
    raise UsageError(f"'{who}' is neither a Slack user id (U...) nor a terminal user (known: {known})")


def render_reply(reply: Reply, width: int | None = None) -> str:
    """The reply as text; with `width` (a terminal's columns) its tables are fitted to it."""
    document = to_document(reply)
    out = text_render.render(document, width)
    if document.attachment is not None:
        handle, name = tempfile.mkstemp(prefix="svcbot-", suffix="-" + document.attachment.filename)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(document.attachment.content)
        out += f"(full output: {name})\n"
    return out


def run_once(dispatcher: Dispatcher, text: str, user: str, out: TextIO = sys.stdout) -> int:
    def progress(line: str) -> None:
        print(line, file=out, flush=True)

    reply = dispatcher.execute(text, user, source="terminal", progress=progress, os_user=os_user(),
                               follow_runs=True)
    out.write(render_reply(reply, terminal_width(out)))
    out.flush()
    return reply.outcome.exit_code


def terminal_width(out: TextIO) -> int | None:
    """The terminal's columns when `out` is one; None (no fitting: scripts get every column) otherwise."""
    try:
        return shutil.get_terminal_size().columns if out.isatty() else None
    except (AttributeError, ValueError, OSError):
        return None


def who_is(policy: Policy, user: str) -> str:
    """`whoami`: the acting user, their groups, what they may do in which environment, and what they approve."""
    catalog = policy.catalog
    names = [name for name, uid in catalog.terminal.users.items() if uid == user]
    lines = [f"acting as {names[0] + ' (' + user + ')' if names else user}; OS user {os_user()}"]
    groups = [f"@{group}" for group in catalog.access.groups if user in policy.members(group)]
    lines.append(f"groups: {', '.join(groups) if groups else 'none'}")
    envs = list(catalog.environments)
    may: dict[tuple[str, ...], list[str]] = {}
    for verb in get_args(RuleVerb):
        where = []
        for env in envs:
            decision = policy.check(verb, (env,), user)
            if decision.allowed:
                where.append(f"{env} (with approval)" if decision.approval is not None else env)
        if where:
            may.setdefault(tuple(where), []).append(verb)
    if may:
        lines.append("may:")
        lines.extend(f"  {', '.join(verbs)} in {', '.join(where)}" for where, verbs in may.items())
    else:
        lines.append("may: only help (no access rule names you)")
    approves = sorted({f"{'/'.join(rule.verbs)} in {', '.join(rule.envs)}" for rule in catalog.access.rules
                       if rule.approval is not None and policy.matches(user, rule.approval.approvers)})
    if approves:
        lines.append(f"approves: {'; '.join(approves)}")
    return "\n".join(lines) + "\n"


class Shell:
    def __init__(self, dispatcher: Dispatcher, user: str, out: TextIO = sys.stdout,
                 read: Callable[[str], str] = input, banner: str = "") -> None:
        self.dispatcher = dispatcher
        self.catalog = dispatcher.catalog
        self.user = user
        self.out = out
        self.read = read
        self.banner = banner

    def handle(self, line: str) -> bool:
        """Handle one line; False when the session should end."""
        line = line.strip()
        if line.startswith("/svc"):
            line = line[4:].strip()
        if not line:
            return True
        word, _, rest = line.partition(" ")
        if word in {"exit", "quit"}:
            return False
        if word == "whoami":
            self.out.write(who_is(self.dispatcher.policy, self.user))
            return True
        if word == "as":
            try:
                self.user = resolve_as(self.catalog, rest.strip())
            except UsageError as exc:
                self.out.write(f"✗ {exc.message}\n")
            else:
                self.out.write(f"now acting as {self.user}\n")
            return True
        run_once(self.dispatcher, line, self.user, self.out)
        if word == "help" and not rest.strip():
            self.out.write(SHELL_HELP)
        return True

    def loop(self) -> None:
        history = _enable_history()
        if self.banner:
            self.out.write(self.banner)
        self.out.write(f"svcbot shell: acting as {self.user}. Type help, `as USER`, whoami, or exit.\n")
        try:
            while True:
                try:
                    line = self.read(PROMPT)
                except EOFError:
                    self.out.write("\n")
                    break
                except KeyboardInterrupt:
                    self.out.write("\n")
                    continue
                if not self.handle(line):
                    break
        finally:
            history()


def _enable_history() -> Callable[[], None]:
    """Line editing and a history file when readline exists; returns the function that saves it."""
    try:
        import readline  # noqa: PLC0415 - optional, absent on some platforms
    except ImportError:
        return lambda: None
    path = Path(os.environ.get("SVCBOT_HISTORY", Path.home() / ".svcbot_history"))
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(1000)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(path)

    return save
