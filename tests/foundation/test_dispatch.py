"""The command path: text normalisation, parsing, usage errors, help, policy and the deadline."""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import pytest

from bot.clients.backends import Backends
from bot.core.catalog import Catalog, load_catalog
from bot.core.errors import DeadlineExceeded, UsageError
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.dispatch.dispatcher import Dispatcher, split_command_text
from bot.replies.base import HelpReply, Message, Outcome, Reply
from bot.terminal.shell import render_reply, run_once
from commands import registry


def echo_parser() -> CommandParser:
    parser = CommandParser("echo", "/svc echo <service> [env] [--grep TEXT] [--limit N]")
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    parser.add_argument("--grep")
    parser.add_argument("--limit", type=int, default=10)
    return parser


def echo_envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    catalog.service(args.service)
    return (catalog.environment(args.env or catalog.settings.default_env) and (args.env or "prod"),)


def echo_run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    return Message(title=f"{args.service} {args.env} grep={args.grep!r} limit={args.limit} by {invocation.user}")


STALL = threading.Event()


def stall_run(_args: argparse.Namespace, _invocation: Invocation) -> Reply:
    STALL.wait(5)
    return Message(title="late")


RAN_ON: list[threading.Thread] = []


def bounded_run(_args: argparse.Namespace, invocation: Invocation) -> Reply:
    """A verb whose backend call ends by the command deadline, as every real one does (bot/clients/deadlines.py)."""
    RAN_ON.append(threading.current_thread())
    if not STALL.wait(max(0.0, invocation.deadline - time.monotonic())):
        raise DeadlineExceeded("the backend did not answer by the deadline")
    return Message(title="in time")


def crash_run(_args: argparse.Namespace, _invocation: Invocation) -> Reply:
    raise RuntimeError("secret internals: password=hunter2")


ECHO = Command(name="status", summary="echo", usage="/svc status <service> [env]", build_parser=echo_parser,
               run=echo_run, envs=echo_envs)
STALLING = Command(name="probe", summary="stalls", usage="/svc probe", build_parser=lambda: CommandParser("probe", ""),
                   run=stall_run)
BOUNDED = Command(name="logs", summary="waits with the deadline", usage="/svc logs",
                  build_parser=lambda: CommandParser("logs", ""), run=bounded_run)
CRASHING = Command(name="history", summary="crashes", usage="/svc history",
                   build_parser=lambda: CommandParser("history", ""), run=crash_run)


@pytest.fixture(name="dispatcher")
def _dispatcher(example_catalog_path: Path) -> Dispatcher:
    catalog = load_catalog(example_catalog_path)
    table = {**registry(), "status": ECHO, "probe": STALLING, "history": CRASHING, "logs": BOUNDED}
    return Dispatcher(catalog, Backends(catalog), table)


class TestSplitting:
    @pytest.mark.parametrize(("text", "words"), [
        ('logs payment --grep "connection reset"', ["logs", "payment", "--grep", "connection reset"]),
        ("logs payment \u2014grep \u201cconnection reset\u201d", ["logs", "payment", "--grep", "connection reset"]),
        ("logs payment \u2013since 30m", ["logs", "payment", "--since", "30m"]),
        ("reject 12 \u2018not today\u2019", ["reject", "12", "not today"]),
        ("status\u00a0payment", ["status", "payment"]),
        ("   ", []),
        ("logs x --grep '$(id); rm -rf /'", ["logs", "x", "--grep", "$(id); rm -rf /"]),
    ])
    def test_normalises_chat_characters(self, text: str, words: list[str]) -> None:
        """Smart quotes, en/em dashes and no-break spaces become what the user meant; nothing is expanded."""
        assert split_command_text(text) == words

    def test_unbalanced_quote(self) -> None:
        """An unclosed quote is a usage error that says so."""
        with pytest.raises(UsageError, match="close every quote"):
            split_command_text('logs payment --grep "oops')


class TestExecute:
    def test_runs_with_parsed_arguments(self, dispatcher: Dispatcher) -> None:
        """A command is parsed and run with the acting user."""
        reply = dispatcher.execute('status payment prod \u2014grep "a b"', "U01AAA")
        assert isinstance(reply, Message)
        assert reply.title == "payment prod grep='a b' limit=10 by U01AAA"
        assert reply.outcome is Outcome.OK

    def test_empty_text_is_help(self, dispatcher: Dispatcher) -> None:
        """`/svc` alone answers with help."""
        assert isinstance(dispatcher.execute("", "U01AAA"), HelpReply)

    @pytest.mark.parametrize(("text", "expected"), [
        ("status payment --colour red", "unexpected '--colour red': more words than the command takes"),
        ("status payment --limit many", "--limit: invalid int value: 'many'"),
        ("status", "missing <service>"),
        ("status payment --limit", "--limit needs a value, like --limit N (a value that starts with '-' reads as "
                                   "another option)"),
        ("status pay", "unknown service 'pay' (known: orders, payment)"),
        ("status payment qa", "unknown environment 'qa' (known: dev, staging, prod)"),
    ])
    def test_bad_input_says_what_was_wrong(self, dispatcher: Dispatcher, text: str, expected: str) -> None:
        """Unknown verbs, flags, services and environments get a specific message and run nothing."""
        reply = dispatcher.execute(text, "U01AAA")
        assert isinstance(reply, Message)
        assert reply.outcome is Outcome.USER_ERROR
        assert reply.title.replace("\u200b", "") == expected  # Slack syntax in error text is defused

    def test_unknown_verb_lists_known(self, dispatcher: Dispatcher) -> None:
        """An unknown verb lists every known verb, from the registry."""
        reply = dispatcher.execute("nosuch", "U01AAA")
        assert isinstance(reply, Message)
        assert reply.title == f"unknown command 'nosuch' (known: {', '.join(dispatcher.commands)})"
        assert "status" in dispatcher.commands

    def test_usage_shown(self, dispatcher: Dispatcher) -> None:
        """A usage error shows the verb's usage line."""
        reply = dispatcher.execute("status", "U01AAA")
        assert "usage: /svc status <service> [env]" in render_reply(reply)

    def test_internal_error_hides_details(self, dispatcher: Dispatcher) -> None:
        """A crash answers with a reference id only, never the exception text."""
        reply = dispatcher.execute("history", "U01AAA", request_id="abc123")
        assert isinstance(reply, Message)
        assert reply.title == "internal error, ref abc123"
        assert "hunter2" not in render_reply(reply)
        assert reply.outcome is Outcome.INTERNAL_ERROR

    def test_deadline_on_the_worker_thread(self, dispatcher: Dispatcher) -> None:
        """A Slack command runs on the thread that took it (no hand-off) and is answered with the deadline
        message when its backend call ends at the deadline."""
        STALL.clear()
        RAN_ON.clear()
        started = time.monotonic()
        reply = dispatcher.execute("logs", "U01AAA", deadline=time.monotonic() + 0.5)
        elapsed = time.monotonic() - started
        STALL.set()
        assert RAN_ON[0] is threading.current_thread()
        assert isinstance(reply, Message)
        assert reply.title.startswith("no answer within the command deadline")
        assert 0.4 < elapsed < 3.0

    def test_deadline_in_the_terminal(self, dispatcher: Dispatcher) -> None:
        """In the terminal the command runs on the runner pool while the caller waits with the deadline (and
        for Ctrl-C): even a verb that ignores the deadline is answered when it passes."""
        STALL.clear()
        started = time.monotonic()
        reply = dispatcher.execute("probe", "U01AAA", source="terminal", deadline=time.monotonic() + 0.5)
        elapsed = time.monotonic() - started
        STALL.set()
        assert isinstance(reply, Message)
        assert reply.title.startswith("no answer within the command deadline")
        assert 0.4 < elapsed < 3.0


class TestHelp:
    def test_lists_every_verb(self, dispatcher: Dispatcher) -> None:
        """help is generated from the registry."""
        reply = dispatcher.execute("help", "U09NOBODY")
        assert isinstance(reply, HelpReply)
        assert [verb.name for verb in reply.verbs] == list(dispatcher.commands)
        text = render_reply(reply)
        assert "/svc status <service> [env]" in text

    def test_one_verb(self, dispatcher: Dispatcher) -> None:
        """help <verb> shows that verb's usage and examples."""
        text = render_reply(dispatcher.execute("help help", "U01AAA"))
        assert "/svc help [verb]" in text
        assert "/svc help logs" in text

    def test_unknown_verb(self, dispatcher: Dispatcher) -> None:
        """help for an unknown verb lists the known ones."""
        reply = dispatcher.execute("help nope", "U01AAA")
        assert reply.outcome is Outcome.USER_ERROR


def test_run_once_exit_codes(dispatcher: Dispatcher, tmp_path: Path) -> None:
    """svcbot run's exit codes: 0 ok, 1 user error, 2 internal error."""
    out = (tmp_path / "out.txt").open("w")
    assert run_once(dispatcher, "help", "U01AAA", out) == 0
    assert run_once(dispatcher, "nosuch", "U01AAA", out) == 1
    assert run_once(dispatcher, "history", "U01AAA", out) == 2
