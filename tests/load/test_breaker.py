"""The circuit breaker per cluster: it opens after repeated failures, then answers at once (naming the cluster,
since when and how many failures) instead of waiting for timeouts; a half-open probe closes it once the cluster
is back. Its state is in /metrics as svcbot_circuit_state{backend="cluster prod"}."""

from __future__ import annotations

import time
from collections.abc import Callable

from load_world import BREAKER_OPEN, DEADLINE, NO_ANSWER, SLACK_MARGIN, HttpBot, wait_until

from bot.clients.breaker import CLOSED, OPEN
from sandbox.stack import SandboxStack

PROD = 'backend="cluster prod"'


def test_breaker_opens_fails_fast_and_recovers(stack: SandboxStack, start_bot: Callable[..., HttpBot]) -> None:
    """Stalled prod: the first command waits for the deadline, the next fail fast; recovery closes the breaker."""
    bot = start_bot()
    assert stack.kube is not None
    breaker = bot.running.bot.runtime.backends.kube("prod").breaker
    assert bot.metric("svcbot_circuit_state", PROD) == CLOSED
    stack.kube.cluster("prod").faults.set(mode="stall", seconds=30)

    slow_text, slow_seconds = bot.answer_text(bot.send("status payment prod"))
    assert NO_ANSWER.search(slow_text), slow_text
    assert slow_seconds > DEADLINE * 0.5
    wait_until(lambda: breaker.state == "open", timeout=DEADLINE, what="the breaker opening")
    assert bot.metric("svcbot_circuit_state", PROD) == OPEN

    client = bot.running.bot.runtime.backends.kube("prod")
    sent_before = client.request_count
    fast_text, fast_seconds = bot.answer_text(bot.send("status payment prod"))
    match = BREAKER_OPEN.search(fast_text)
    assert match is not None, fast_text
    assert int(match.group(1)) >= breaker.threshold
    assert client.request_count == sent_before  # answered by the breaker: not one request to prod
    assert fast_seconds < slow_seconds / 2  # fails fast: a fraction of the wait for the timeout
    assert (bot.metric("svcbot_circuit_rejected_total", PROD) or 0) >= 1

    stack.kube.clear_faults()
    breaker.reset_after = 0.2  # instead of 30 s: the next call after this is the half-open probe
    time.sleep(0.3)
    answers = []
    for _ in range(3):  # the probe may be one of the command's calls while the others are still refused
        text, seconds = bot.answer_text(bot.send("status payment prod"))
        answers.append(text)
        assert seconds < DEADLINE + SLACK_MARGIN
        if "unreachable" not in text:
            break
    assert "payment-api" in answers[-1]
    assert "unreachable" not in answers[-1]
    assert breaker.state == "closed"
    assert bot.metric("svcbot_circuit_state", PROD) == CLOSED


def test_breaker_reopens_when_the_probe_fails(stack: SandboxStack, start_bot: Callable[..., HttpBot]) -> None:
    """A cluster still down when the half-open probe goes through opens the breaker again at once."""
    bot = start_bot()
    assert stack.kube is not None
    breaker = bot.running.bot.runtime.backends.kube("prod").breaker
    stack.kube.cluster("prod").faults.set(mode="down")
    texts = [bot.answer_text(bot.send("status payment prod"))[0] for _ in range(2)]
    assert "connection refused" in texts[0]
    assert BREAKER_OPEN.search(texts[1]) is not None
    breaker.reset_after = 0.2
    time.sleep(0.3)
    text, seconds = bot.answer_text(bot.send("status payment prod"))
    assert "cluster prod unreachable" in text
    assert seconds < DEADLINE
    assert breaker.state == "open"
    assert bot.metric("svcbot_circuit_state", PROD) == OPEN


def test_breaker_is_per_cluster(stack: SandboxStack, start_bot: Callable[..., HttpBot]) -> None:
    """prod's open breaker does not touch nonprod: staging is answered normally meanwhile."""
    bot = start_bot()
    assert stack.kube is not None
    stack.kube.cluster("prod").faults.set(mode="down")
    for _ in range(2):
        bot.answer_text(bot.send("status payment prod"))
    assert bot.running.bot.runtime.backends.kube("prod").breaker.state == "open"
    text, _ = bot.answer_text(bot.send("status payment staging"))
    assert "payment-api" in text
    assert "unreachable" not in text
    assert bot.metric("svcbot_circuit_state", 'backend="cluster nonprod"') == CLOSED
