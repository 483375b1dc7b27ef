"""Text -> verb + args -> policy check -> run under a deadline -> Reply.

The Slack listener and the terminal both feed this dispatcher, so a command behaves the same everywhere.
The canonical `command.finished` log line is written here.
"""

from __future__ import annotations

import argparse
import contextvars
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from bot import metrics
from bot.backends import Backends
from bot.catalog import Catalog
from bot.command import Command, Invocation, no_progress
from bot.errors import BackendError, DeadlineExceeded, Forbidden, RateLimited, UsageError, UserError
from bot.policy import Decision, Policy
from bot.ratelimit import RateLimiter, describe_wait
from bot.reply import Reply, error_message

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


def split_command_text(text: str) -> list[str]:
    """Normalise what chat clients insert, then split like a POSIX shell (no expansion, ever)."""
    normalised = text.translate(_TRANSLATION).strip()
    try:
        return shlex.split(normalised, posix=True)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"cannot read the command: {exc} (close every quote you open)") from None


@dataclass(frozen=True)
class ParsedCommand:
    command: Command
    args: argparse.Namespace
    envs: tuple[str, ...]
    text: str


TERMINAL_RUN_WAIT = 24 * 3600.0  # seconds; a finite bound (Event.wait overflows on inf)


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


class Dispatcher:
    def __init__(
        self,
        catalog: Catalog,
        backends: Backends,
        commands: Mapping[str, Command],
        policy: Policy | None = None,
    ) -> None:
        self.catalog = catalog
        self.backends = backends
        self.commands = dict(commands)
        self.policy = policy or Policy(catalog)
        limit, window = catalog.settings.rate_limit.per_user_window
        self.rate_limiter = RateLimiter(limit, window)

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
        try:
            args = command.build_parser().parse_args(rest)
        except UsageError as exc:
            raise UsageError(exc.message, usage=command.usage) from None
        envs = command.envs(args, self.catalog)
        return ParsedCommand(command=command, args=args, envs=envs, text=" ".join(words))

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
    ) -> Reply:
        """Parse, authorize and run one command; never raises. Logs one `command.finished` line."""
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
                if source == "terminal" and parsed.command.waits_for_run and not explicit_deadline:
                    deadline = time.monotonic() + TERMINAL_RUN_WAIT
                invocation = Invocation(
                    catalog=self.catalog, backends=self.backends, user=user, request_id=request_id,
                    deadline=deadline, source=source, channel=channel, progress=progress, os_user=os_user,
                    commands=self.commands, approval=decision.approval, policy=self.policy,
                )
                reply = self._run_with_deadline(parsed, invocation)
            except UsageError as exc:
                usage = (f"usage: {exc.usage}",) if exc.usage else ()
                reply = error_message(exc.message, *usage, hint="/svc help lists every command")
            except UserError as exc:
                reply = error_message(exc.message)
            except DeadlineExceeded:
                seconds = self.catalog.settings.command_deadline
                reply = error_message(
                    f"no answer within the command deadline ({seconds:g}s)",
                    "a backend is slow or not answering; the command was abandoned",
                    hint="try again in a minute, or ask about one environment at a time",
                    internal=True,
                )
            except BackendError as exc:
                reply = error_message(exc.message, internal=True)
            except Exception:
                log.exception("command.crashed")
                reply = error_message(f"internal error, ref {request_id}", internal=True)
            elapsed = time.monotonic() - started
            log.info("command.finished", verb=verb, outcome=reply.outcome.value,
                     duration_ms=round(elapsed * 1000, 1))
            metrics.COMMANDS.labels(verb=verb, outcome=reply.outcome.value).inc()
            metrics.COMMAND_SECONDS.labels(verb=verb).observe(elapsed)
            return reply

    def _check_rate(self, parsed: ParsedCommand, user: str) -> None:
        if parsed.command.name == "help":
            return
        wait = self.rate_limiter.acquire(user)
        if wait:
            limit = self.catalog.settings.rate_limit.per_user
            raise RateLimited(f"too many commands ({limit} per user): try again in {describe_wait(wait)}")

    def _run_with_deadline(self, parsed: ParsedCommand, invocation: Invocation) -> Reply:
        """Run in a helper thread so a stalled backend cannot hold the answer past the deadline.

        The thread cannot be killed; it ends when its own client timeouts fire. The user is answered
        when the deadline passes either way.
        """
        result: list[Reply] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def target() -> None:
            try:
                result.append(parsed.command.run(parsed.args, invocation))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
            finally:
                done.set()

        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(target,), daemon=True,
                                  name=f"svc-{parsed.command.name}-{invocation.request_id}")
        thread.start()
        if not done.wait(max(0.0, invocation.deadline - time.monotonic())):
            raise DeadlineExceeded("deadline passed")
        if failure:
            raise failure[0]
        return result[0]

