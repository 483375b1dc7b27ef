"""The terminal: `svcbot shell` (interactive) and `svcbot run` (one command), on the same dispatcher.

Identity: `--as`/`as USER` only when the catalog says `terminal: {allow_as: true}`; otherwise the acting
user is the OS user mapped through `terminal.users`, or nobody (`terminal:<os user>`, which matches only
rules open to everyone). The OS user is logged beside the acting user on every command.

Ctrl-C and the runs this process executes (a deploy started in the terminal runs here, in this process):
- in the shell, Ctrl-C while a command waits stops watching at once and returns to the prompt, naming the
  runs that go on and how to cancel them; leaving the shell (exit, Ctrl-D) with runs going asks first, then
  cancels them (each rolls back as its target says) and waits for that, so nothing shuts down under a
  rollout (in `svcbot demo`: the sandbox); a Ctrl-C during that wait leaves them marked INTERRUPTED;
- `svcbot run` owns its run: Ctrl-C cancels it and waits for the rollback (exit 3, CANCELLED), a second
  Ctrl-C leaves it marked INTERRUPTED (exit 3). Never a traceback.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, get_args

from bot.core.catalog import Catalog, RuleVerb
from bot.core.errors import UsageError
from bot.core.policy import Policy
from bot.deploys.progress import final_line
from bot.deploys.store import Snapshot
from bot.dispatch.dispatcher import Dispatcher
from bot.render import text as text_render
from bot.render.views import to_document  # importing bot.render registers every view
from bot.replies.base import Reply
from bot.terminal.watching import TerminalWatch

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
PROMPT = "svc> "
STOP_WAIT = 600.0  # seconds leaving waits for cancelled runs to roll back (their own step timeouts bound it)
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
        content = document.attachment.content
        handle, name = tempfile.mkstemp(prefix="svcbot-", suffix="-" + document.attachment.filename)
        if isinstance(content, bytes):  # a chart
            with os.fdopen(handle, "wb") as binary:
                binary.write(content)
            out += f"(chart: {name})\n"
        else:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(content)
            out += f"(full output: {name})\n"
    return out


class Gate:
    """A text stream that stops passing writes on once closed: a command the user stopped watching keeps
    running on its thread, and must not print over the prompt."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            if self._open.is_set():
                self.out.write(text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._open.is_set():
                self.out.flush()

    def isatty(self) -> bool:
        return self.out.isatty()

    def close(self) -> None:
        with self._lock:
            self._open.clear()


def run_once(dispatcher: Dispatcher, text: str, user: str, out: TextIO | Gate = sys.stdout) -> int:
    def progress(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    reply = dispatcher.execute(text, user, source="terminal", progress=progress, os_user=os_user(),
                               follow_runs=True)
    out.write(render_reply(reply, terminal_width(out)))
    out.flush()
    return reply.outcome.exit_code


def run_watched(dispatcher: Dispatcher, text: str, user: str, out: TextIO, err: TextIO) -> tuple[int, bool]:
    """`svcbot run`: one command on a thread of its own, so that Ctrl-C reaches this one. The first Ctrl-C
    cancels the runs it started (they roll back) and waits for them; the second leaves them marked
    INTERRUPTED. Returns the exit code (3 for a run that was cancelled or left) and whether work was left
    behind on other threads (the process should then leave without waiting for them)."""
    deploys = dispatcher.deploys
    result: dict[str, int] = {}
    done = _in_thread(lambda: result.setdefault("code", run_once(dispatcher, text, user, out)), "svcbot-run")
    try:
        _wait(done)
        return result.get("code", 2), False
    except KeyboardInterrupt:
        running = deploys.running_here()
        if not running:
            err.write("\ninterrupted\n")
            return 130, True
    try:
        # Said inside this block: a second Ctrl-C as soon as the words are out is the one that leaves the runs.
        err.write("\n" + "".join(f"cancelling {_name(run)}: it stops and rolls back; Ctrl-C again leaves it "
                                 f"to be marked INTERRUPTED\n" for run in running))
        err.flush()
        for run in running:
            deploys.cancel_here(run.id, user)
        _wait(done)  # the command follows its run to the end, and prints it
        return result.get("code", 3), False
    except KeyboardInterrupt:
        # The person asked to leave now: whatever below blocks (a rollback's thread holding a client), the
        # process is gone within LEAVE_WITHIN seconds.
        threading.Thread(target=_leave_after, args=(LEAVE_WITHIN, 3), name="svcbot-leave", daemon=True).start()
        for request_id in deploys.interrupt_here():
            err.write(f"\nleft {request_id}: marked INTERRUPTED (not rolled back); its deploy lock expires by "
                      "itself\n")
        err.flush()
        return 3, True


def _in_thread(work: Callable[[], object], name: str) -> threading.Event:
    """Run `work` on a daemon thread; the event is set when it has ended (however it ended)."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    return done


LEAVE_WITHIN = 15.0  # seconds a second Ctrl-C gives the way out before the process leaves regardless


def _leave_after(seconds: float, code: int) -> None:
    time.sleep(seconds)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait(done: threading.Event) -> None:
    """Wait for the event in the main thread, where Ctrl-C's KeyboardInterrupt arrives (an Event's wait may be
    interrupted safely; a Thread.join interrupted by it can report a live thread as ended)."""
    while not done.wait(0.2):
        pass


def _name(run: Snapshot) -> str:
    request = run.request
    return f"{request.kind} {request.id} ({request.service} in {request.env}, {request.version})"


def terminal_width(out: TextIO | Gate) -> int | None:
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
        # `watch` in the terminal: incidents printed between prompts (bot/terminal/watching.py).
        self.incidents = TerminalWatch(dispatcher, os_user(), out, prompt=PROMPT)

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
        if not self._watch(line):
            return True
        if word in {"watch", "unwatch"}:
            self.incidents.sync()
        if word == "help" and not rest.strip():
            self.out.write(SHELL_HELP)
        return True

    def _watch(self, line: str) -> bool:
        """Run one command on its own thread and watch it; Ctrl-C stops watching (False) and says which runs
        go on here and how to cancel them."""
        deploys = self.dispatcher.deploys
        before = {run.id for run in deploys.running_here()}
        gate = Gate(self.out)
        done = _in_thread(lambda: run_once(self.dispatcher, line, self.user, gate), "svcbot-command")
        try:
            _wait(done)
            return True
        except KeyboardInterrupt:
            gate.close()
        going = [run for run in deploys.running_here() if run.id not in before] or deploys.running_here()
        self.out.write("\n^C stopped watching.")
        for run in going:
            self.out.write(f" {_name(run)} goes on here: `cancel {run.id}` stops it and rolls back.")
        if going:
            self.out.write(" Leaving the shell asks first.")
        self.out.write("\n")
        self.out.flush()
        return False

    def may_leave(self) -> bool:
        """Leaving with runs going here: ask, then cancel them (they roll back) and wait; False to stay."""
        deploys = self.dispatcher.deploys
        running = deploys.running_here()
        if not running:
            return True
        self.out.write("".join(f"{_name(run)} is still running here.\n" for run in running))
        try:
            answer = self.read("Cancel (rolling back) and leave? [y/N] ")
        except EOFError:
            answer = "y"  # nobody left to ask: the safe way out
            self.out.write("\n")
        except KeyboardInterrupt:
            self.out.write("\n")
            return False
        if answer.strip().lower() not in {"y", "yes"}:
            self.out.write("staying; `cancel <id>` stops a run.\n")
            return False
        try:
            # Said inside this block: a Ctrl-C as soon as the words are out leaves the runs, as they say.
            self.out.write("cancelling; waiting for the rollback (Ctrl-C leaves them to be marked INTERRUPTED)\n")
            self.out.flush()
            ended = deploys.stop_here(self.user, wait=STOP_WAIT)
        except KeyboardInterrupt:
            for request_id in deploys.interrupt_here():
                self.out.write(f"left {request_id}: marked INTERRUPTED (not rolled back); its deploy lock expires "
                               "by itself\n")
            return True
        self.out.write("".join(final_line(run) + "\n" for run in ended))
        return True

    def loop(self) -> None:
        history = _enable_history()
        if self.banner:
            self.out.write(self.banner)
        self.out.write(f"svcbot shell: acting as {self.user}. Type help, `as USER`, whoami, or exit.\n")
        self.incidents.sync()  # this terminal's subscriptions outlive a session
        try:
            while True:
                try:
                    line = self.read(PROMPT)
                except EOFError:
                    self.out.write("\n")
                    if self.may_leave():
                        break
                    continue
                except KeyboardInterrupt:
                    self.out.write("\n")
                    continue
                if not self.handle(line) and self.may_leave():
                    break
        finally:
            self.incidents.stop()
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
