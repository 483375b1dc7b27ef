"""Text -> verb + args -> policy check -> run under a deadline -> Reply.

The Slack listener and the terminal both feed this dispatcher, so a command behaves the same everywhere.
The canonical `command.finished` log line is written here.
"""

from __future__ import annotations

import argparse
import contextvars
import random
import re
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import structlog

from bot.clients import deadlines
from bot.clients.backends import Backends
from bot.core import metrics
from bot.core.catalog import Catalog
from bot.core.errors import BackendError, DeadlineExceeded, Forbidden, RateLimited, UsageError, UserError
from bot.core.policy import Decision, Policy
from bot.core.ratelimit import RateLimiter, describe_wait
from bot.deploys.facade import Deploys, Follow
from bot.dispatch.command import Command, Invocation, no_progress
from bot.insight.secrets import mask_text
from bot.replies.base import Reply, error_message
from bot.replies.untrusted import clean_reply

log = structlog.get_logger("svcbot.dispatch")

# What Slack clients (and phones) turn our characters into.
_REPLACEMENTS = {
    "\u2014": "--",  # em dash (Slack turns -- into —)
    "\u2013": "--",  # en dash
    "\u2212": "-",  # minus sign
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2018": "'", "\u2019": "'", "\u201a": "'",
    "\u00a0": " ",  # no-break space
}
_TRANSLATION = str.maketrans(_REPLACEMENTS)


MAX_TEXT = 4000  # characters of command text read; Slack's own advice for a message's length
QUOTED = 40  # characters of an overlong text quoted back


def quote_user_text(text: str, limit: int = QUOTED) -> str:
    """A short, harmless piece of what someone typed, for a message: cut, on one line, Slack syntax broken."""
    piece = " ".join(text.split())
    piece = piece if len(piece) <= limit else piece[: limit - 1] + "…"
    return defuse(piece)


def split_command_text(text: str) -> list[str]:
    """Normalise what chat clients insert, then split like a POSIX shell (no expansion, ever).

    Text over MAX_TEXT characters is refused before it is split: shlex is quadratic in the length of one
    word (a 1 MB word took 83 s of CPU), and no command needs more."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"the command is {len(text):,} characters long; svcbot reads at most {MAX_TEXT:,} "
                         f"(it starts {quote_user_text(text)!r})", usage="/svc help")
    normalised = text.translate(_TRANSLATION).strip()
    try:
        return shlex.split(normalised, posix=True)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"cannot read the command: {exc} (close every quote you open)") from None


# Slack's syntax that svcbot's own error words may use: user and user-group mentions (a denial names who may
# approve). Everything else in angle brackets (<!here>, <!channel>, <http://x|label>, <#C1>) is broken.
_OWN_MENTION = re.compile(r"<(?:@[UW][A-Z0-9]+|!subteam\^S[A-Z0-9]+)>")


def defuse(text: str) -> str:
    """Break Slack's special syntax in untrusted text (a zero-width space after `<`), as log lines are."""
    return text.replace("<", "<\u200b") if "<" in text else text


def untrusted_error(text: str, patterns: tuple[str, ...]) -> str:
    """An error message that may carry backend or user text: secrets masked as in answers, and no Slack
    syntax but user and group mentions (a proxy's HTML page must not become a live link)."""
    text = mask_text(text, patterns)
    if "<" not in text:
        return text
    kept = _OWN_MENTION.findall(text)
    parts = _OWN_MENTION.split(text)
    out = [defuse(parts[0])]
    for mention, part in zip(kept, parts[1:], strict=True):
        out.extend((mention, defuse(part)))
    return "".join(out)


@dataclass(frozen=True)
class ParsedCommand:
    command: Command
    args: argparse.Namespace
    envs: tuple[str, ...]
    text: str


TERMINAL_RUN_WAIT = 24 * 3600.0  # seconds; a finite bound (Event.wait overflows on inf)
WAIT_MARGIN = 0.5  # seconds kept before the command deadline to answer when a run outlasts it


_ids = random.Random()  # noqa: S311 - request ids correlate log lines; they guard nothing


def new_request_id() -> str:
    """12 hex digits (from the process's PRNG: uuid4 costs a system call on every ack)."""
    return f"{_ids.getrandbits(48):012x}"


class Dispatcher:
    def __init__(
        self,
        catalog: Catalog,
        backends: Backends,
        commands: Mapping[str, Command],
        policy: Policy | None = None,
        deploys: Deploys | None = None,
    ) -> None:
        self.catalog = catalog
        self.backends = backends
        self.deploys = deploys or Deploys(catalog, backends)
        self.commands = dict(commands)
        self.policy = policy or Policy(catalog)
        # Whether the bot may post in a channel (Slack: conversations.info's is_member); None: cannot tell.
        # Set by the Slack frontend; /svc watch refuses a channel it would not be able to post in.
        self.channel_member: Callable[[str], bool | None] | None = None
        limit, window = catalog.settings.rate_limit.per_user_window
        self.rate_limiter = RateLimiter(limit, window)
        # One parser per verb, built once: building one costs more than parsing (argparse looks up gettext
        # catalogs on disk for its messages) and every Slack command is parsed in its ack.
        self._parsers: dict[str, tuple[argparse.ArgumentParser, threading.Lock]] = {}
        self._parsers_lock = threading.Lock()
        # Terminal commands run here while the main thread waits with the deadline (and for Ctrl-C). Slack
        # commands run on their worker thread (`_run_with_deadline`). Twice the workers: a command abandoned
        # at its deadline keeps its thread until its own timeouts end it.
        self._runner = ThreadPoolExecutor(max_workers=2 * catalog.settings.workers + 2,
                                          thread_name_prefix="svc-command")

    # --- parsing ----------------------------------------------------------------------------------------

    def parse(self, text: str) -> ParsedCommand:
        words = split_command_text(text)
        if not words:
            words = ["help"]
        verb, rest = words[0].lower(), words[1:]
        command = self.commands.get(verb)
        if command is None:
            known = ", ".join(self.commands)
            raise UsageError(f"unknown command '{verb}' (known: {known})", usage="/svc help")
        parser, lock = self._parser(command)
        try:
            with lock:  # argparse does not promise thread safety; a parse takes microseconds
                args = parser.parse_args(rest)
        except UsageError as exc:
            raise UsageError(exc.message, usage=command.usage) from None
        envs = command.envs(args, self.catalog)
        return ParsedCommand(command=command, args=args, envs=envs, text=" ".join(words))

    def _parser(self, command: Command) -> tuple[argparse.ArgumentParser, threading.Lock]:
        with self._parsers_lock:
            if command.name not in self._parsers:
                self._parsers[command.name] = (command.build_parser(), threading.Lock())
            return self._parsers[command.name]

    def authorize(self, parsed: ParsedCommand, user: str) -> Decision:
        if parsed.command.policy_exempt:
            return Decision(True)
        decision = self.policy.check(parsed.command.name, parsed.envs, user)
        if not decision.allowed:
            log.warning("audit.denied", verb=parsed.command.name, envs=list(parsed.envs), user=user,
                        reason=decision.reason)
        return decision

    # --- running ----------------------------------------------------------------------------------------

    def execute(
        self,
        text: str,
        user: str,
        *,
        source: str = "slack",
        channel: str = "",
        request_id: str | None = None,
        progress: Callable[[str], None] = no_progress,
        os_user: str = "",
        deadline: float | None = None,
        follow_runs: bool = False,
    ) -> Reply:
        """Parse, authorize and run one command; never raises. Logs one `command.finished` line.

        `follow_runs`: the frontend follows the deploy runs a command starts (waits for them, their progress
        lines to `progress`); without a `deadline` such commands then wait as long as the run takes."""
        request_id = request_id or new_request_id()
        started = time.monotonic()
        explicit_deadline = deadline is not None
        deadline = deadline or started + self.catalog.settings.command_deadline
        verb = "?"
        context = {"request_id": request_id, "user": user, "channel": channel, "source": source}
        if os_user:
            context["os_user"] = os_user  # terminal commands are audited with the OS user too
        with structlog.contextvars.bound_contextvars(**context):
            try:
                parsed = self.parse(text)
                verb = parsed.command.name
                structlog.contextvars.bind_contextvars(verb=verb)
                self._check_rate(parsed, user)
                decision = self.authorize(parsed, user)
                if not decision.allowed:
                    raise Forbidden(decision.reason)
                follow = None
                if follow_runs:
                    if parsed.command.waits_for_run and not explicit_deadline:
                        deadline = time.monotonic() + TERMINAL_RUN_WAIT
                    follow = Follow(progress, until=deadline - WAIT_MARGIN)
                invocation = Invocation(
                    catalog=self.catalog, backends=self.backends, deploys=self.deploys, user=user,
                    request_id=request_id, deadline=deadline, source=source, channel=channel, progress=progress,
                    follow=follow, os_user=os_user, commands=self.commands, approval=decision.approval,
                    policy=self.policy, channel_member=self.channel_member,
                )
                # Backend text inside the answer (a cluster's error in one environment, a pod's answer) is
                # cleaned like an error the command answers with (bot/replies/untrusted.py).
                reply = clean_reply(self._run_with_deadline(parsed, invocation), self._safe)
            except UsageError as exc:
                usage = (f"usage: {exc.usage}",) if exc.usage else ()
                reply = error_message(self._safe(exc.message), *usage, hint="/svc help lists every command")
            except UserError as exc:
                reply = error_message(self._safe(exc.message))
            except DeadlineExceeded:
                seconds = self.catalog.settings.command_deadline
                reply = error_message(
                    f"no answer within the command deadline ({seconds:g}s)",
                    "a backend is slow or not answering; the command was abandoned",
                    hint="try again in a minute, or ask about one environment at a time",
                    internal=True,
                )
            except BackendError as exc:
                reply = error_message(self._safe(exc.message), internal=True)
            except Exception:
                log.exception("command.crashed")  # without locals (bot/core/logging.py): they can hold secrets
                reply = error_message(f"internal error, ref {request_id}", internal=True)
            elapsed = time.monotonic() - started
            log.info("command.finished", verb=verb, outcome=reply.outcome.value,
                     duration_ms=round(elapsed * 1000, 1))
            metrics.COMMANDS.labels(verb=verb, outcome=reply.outcome.value).inc()
            metrics.COMMAND_SECONDS.labels(verb=verb).observe(elapsed)
            return reply

    def _safe(self, message: str) -> str:
        return untrusted_error(message, self.catalog.secrets.key_patterns)

    def _check_rate(self, parsed: ParsedCommand, user: str) -> None:
        if parsed.command.name == "help":
            return
        wait = self.rate_limiter.acquire(user)
        if wait:
            limit = self.catalog.settings.rate_limit.per_user
            raise RateLimited(f"too many commands ({limit} per user): try again in {describe_wait(wait)}")

    def _run_with_deadline(self, parsed: ParsedCommand, invocation: Invocation) -> Reply:
        """Run the verb so that its answer comes by the deadline.

        Every backend call a verb makes ends by the command's deadline: Kubernetes and Loki calls take it
        (bot/clients/deadlines.py), and the store's waits and Slack user-group lookups are cut to it while
        `command_deadline` is set (issue 17, docs/design-notes.md "CPU per answer"). So a Slack command runs
        on the worker thread that took it: no hand-off to another thread and back for every command.

        The terminal keeps the hand-off: its main thread waits with the deadline, where Ctrl-C reaches it,
        and a run the command follows can be left to its thread.
        """
        if invocation.source != "terminal":
            started = time.monotonic()
            reply = self._run(parsed, invocation)
            late = time.monotonic() - invocation.deadline
            if late > 1.0:  # a call not bounded by the deadline: visible, so it gets fixed
                log.warning("command.overran_deadline", seconds_late=round(late, 1),
                            seconds=round(time.monotonic() - started, 1))
            return reply
        future = self._runner.submit(contextvars.copy_context().run, self._run, parsed, invocation)
        try:
            return future.result(timeout=max(0.0, invocation.deadline - time.monotonic()))
        except FutureTimeout:
            future.cancel()  # if it never started (every runner busy), it never will
            raise DeadlineExceeded("deadline passed") from None

    @staticmethod
    def _run(parsed: ParsedCommand, invocation: Invocation) -> Reply:
        with deadlines.command_deadline(invocation.deadline):
            return parsed.command.run(parsed.args, invocation)
