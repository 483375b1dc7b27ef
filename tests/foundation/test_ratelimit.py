"""Per-user rate limit: the next command is refused with when to try again; other users are unaffected."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.clients.backends import Backends
from bot.core.catalog import parse_catalog
from bot.core.ratelimit import RateLimiter
from bot.dispatch.command import Command, CommandParser
from bot.dispatch.dispatcher import Dispatcher
from bot.replies.base import Message, Outcome
from commands import registry


def test_window_slides() -> None:
    """After `limit` commands the wait is the time until the oldest leaves the window."""
    now = [0.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    assert limiter.acquire("U1") == 0
    now[0] = 10
    assert limiter.acquire("U1") == 0
    assert limiter.acquire("U1") == 50
    assert limiter.acquire("U2") == 0
    now[0] = 60
    assert limiter.acquire("U1") == 0


def test_dispatcher_refuses_over_the_limit(example_catalog_path: Path, tmp_path: Path) -> None:
    """The catalog's per_user limit applies to commands (help excepted) with a clear message."""
    raw = yaml.safe_load(example_catalog_path.read_text())
    raw["settings"]["rate_limit"] = {"per_user": "2/min"}
    catalog = parse_catalog(yaml.safe_dump(raw))
    ping = Command(name="status", summary="ping", usage="/svc status",
                   build_parser=lambda: CommandParser("status", "/svc status"),
                   run=lambda _args, _inv: Message(title="pong"))
    dispatcher = Dispatcher(catalog, Backends(catalog), {**registry(), "status": ping})
    for _ in range(2):
        assert dispatcher.execute("status", "U01AAA").outcome is Outcome.OK
    refused = dispatcher.execute("status", "U01AAA")
    assert isinstance(refused, Message)
    assert refused.outcome is Outcome.USER_ERROR
    assert refused.title.startswith("too many commands (2/min per user): try again in ")
    assert dispatcher.execute("help", "U01AAA").outcome is Outcome.OK
    assert dispatcher.execute("status", "U01BBB").outcome is Outcome.OK
