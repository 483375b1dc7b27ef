"""Loki misbehaving: busy (429) then fine is retried and answered; a gateway timeout (504) or a stall is
answered with what went wrong and what to try, within the command's deadline."""

from __future__ import annotations

from collections.abc import Callable

from load_world import DEADLINE, SLACK_MARGIN, HttpBot

from sandbox.loki import LokiSandbox

LOGS = "logs payment prod --since 1h --limit 5"
QUERY_RANGE = "/loki/api/v1/query_range"


def test_busy_loki_is_retried(loki: LokiSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """Two 429s (one per query of /svc logs) are retried and the user gets the log lines."""
    bot = start_bot()
    before = len(loki.requests_to(QUERY_RANGE))
    loki.fail_next(429, times=2)
    text, seconds = bot.answer_text(bot.send(LOGS))
    assert "charge authorized" in text  # a seeded payment log line (the lines query)
    assert "peak" in text  # the level sparkline (the metric query)
    assert "busy" not in text
    # Both queries were answered 429 and asked again (a fast retry may meet the second 429 itself).
    assert 4 <= len(loki.requests_to(QUERY_RANGE)) - before <= 5
    assert seconds < DEADLINE


def test_gateway_timeout_explained(loki: LokiSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """Loki answering 504 every time is reported as a query timeout with how to narrow the query."""
    bot = start_bot()
    loki.fail_next(504, times=50)
    text, seconds = bot.answer_text(bot.send(LOGS))
    assert "Loki timed out running the query" in text
    assert "try a shorter --since" in text
    assert seconds < DEADLINE + SLACK_MARGIN


def test_stalled_loki_named_before_the_deadline(loki: LokiSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """A Loki that holds the query is named, with how long it was given, before the command's deadline."""
    bot = start_bot()
    loki.stall(30)
    text, seconds = bot.answer_text(bot.send(LOGS))
    assert f"Loki at {loki.url} did not answer within" in text
    assert "no answer within the command deadline" not in text
    assert seconds < DEADLINE + SLACK_MARGIN


def test_loki_breaker_fails_fast(loki: LokiSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """After Loki failed repeatedly its breaker answers at once, and the status verbs are not affected."""
    bot = start_bot()
    loki.fail_next(503, times=100)
    first, _ = bot.answer_text(bot.send(LOGS))
    bot.answer_text(bot.send(LOGS))  # more failures (or already the breaker's answer)
    assert "is unavailable (503" in first
    assert bot.metric("svcbot_circuit_state", 'backend="Loki"') == 2  # open after those failures
    asked_before = len(loki.requests_to(QUERY_RANGE))
    sent = bot.send(LOGS)
    text, seconds = bot.answer_text(sent)
    assert "Loki unreachable since" in text
    assert len(loki.requests_to(QUERY_RANGE)) == asked_before  # answered by the breaker, Loki not asked
    assert seconds < DEADLINE
    assert bot.metric("svcbot_circuit_state", 'backend="Loki"') == 2
    status, _ = bot.answer_text(bot.send("status payment staging"))
    assert "payment-api" in status
