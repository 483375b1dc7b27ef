"""The Kubernetes API misbehaving (500, 403, stalling past the deadline, refusing or dropping connections):
each command over signed HTTP is acked at once and answered at its response_url with a message that says
what went wrong, within the command's deadline, and no command goes unanswered."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from load_world import ACK_DEADLINE, DEADLINE, NO_ANSWER, SLACK_MARGIN, HttpBot, Sent, wait_until

from sandbox.stack import SandboxStack

# mode -> words the answer must contain (the sandbox's own texts for 500 and 403)
SPECIFIC = {
    "500": "cluster prod answered 500 to get deployments.apps in prod (namespace prod): Internal error occurred",
    "403": "svcbot may not get deployments.apps in prod (namespace prod): missing RBAC permission verb=get "
           "resource=deployments apiGroup=apps",
    "down": "cluster prod unreachable: connection refused",
}


def assert_acked_at_once(sent: Sent) -> None:
    """Acked, and within Slack's limit (at once, whatever the cluster does)."""
    assert sent.status == 200
    assert sent.ack_seconds < ACK_DEADLINE


@pytest.mark.parametrize("mode", ["500", "403", "down"])
def test_failing_cluster_answered_specifically(stack: SandboxStack, start_bot: Callable[..., HttpBot],
                                               mode: str) -> None:
    """A cluster answering 500 or 403, or refusing connections, is named with the reason well within the deadline."""
    bot = start_bot()
    assert stack.kube is not None
    stack.kube.cluster("prod").faults.set(mode=mode)
    sent = bot.send("status payment prod")
    assert_acked_at_once(sent)
    text, seconds = bot.answer_text(sent)
    assert SPECIFIC[mode] in text
    assert seconds < DEADLINE
    assert len(bot.answers(sent)) == 1


def test_stalled_cluster_answered_before_the_deadline(stack: SandboxStack,
                                                      start_bot: Callable[..., HttpBot]) -> None:
    """A cluster that never answers is reported as not answering, by the deadline and not long before it."""
    bot = start_bot()
    assert stack.kube is not None
    stack.kube.cluster("prod").faults.set(mode="stall", seconds=30)
    sent = bot.send("status payment prod")
    assert_acked_at_once(sent)
    text, seconds = bot.answer_text(sent)
    assert NO_ANSWER.search(text), text
    assert DEADLINE * 0.5 < seconds < DEADLINE + SLACK_MARGIN


def test_stalled_cluster_leaves_the_others_answering(stack: SandboxStack,
                                                     start_bot: Callable[..., HttpBot]) -> None:
    """With prod stalled, `status payment` still shows staging (another cluster) and marks only prod."""
    bot = start_bot()
    assert stack.kube is not None
    bot.answer_text(bot.send("status payment"))  # the bot has seen the service once
    stack.kube.cluster("prod").faults.set(mode="stall", seconds=30)
    sent = bot.send("status payment")
    text, seconds = bot.answer_text(sent)
    assert "staging 2/2 ready, prod unreachable" in text
    assert seconds < DEADLINE + SLACK_MARGIN


def test_stalled_cluster_first_look_at_a_service(stack: SandboxStack, start_bot: Callable[..., HttpBot],
                                                 fresh_service: str) -> None:
    """The first `status` of a service with prod stalled still shows its other environments."""
    bot = start_bot(extra_services=[fresh_service])
    assert stack.kube is not None
    stack.kube.cluster("prod").faults.set(mode="stall", seconds=30)
    text, _ = bot.answer_text(bot.send(f"status {fresh_service}"))
    assert "prod unreachable" in text
    assert "staging unreachable" not in text


def test_connections_dropped_mid_request(stack: SandboxStack, start_bot: Callable[..., HttpBot]) -> None:
    """Requests in flight when the API server goes away end with 'unreachable', not a hang or a traceback."""
    bot = start_bot()
    assert stack.kube is not None
    prod = stack.kube.cluster("prod")
    prod.faults.set(mode="stall", seconds=30)
    held = prod.faults.hits
    sent = bot.send("status payment prod")
    assert_acked_at_once(sent)
    wait_until(lambda: prod.faults.hits > held, what="the command's requests held by the stalled server")
    prod.faults.set(mode="down")
    text, seconds = bot.answer_text(sent)
    assert "cluster prod unreachable" in text
    assert "internal error" not in text
    assert seconds < DEADLINE + SLACK_MARGIN


def test_burst_under_faults_loses_nothing(stack: SandboxStack, start_bot: Callable[..., HttpBot]) -> None:
    """30 commands sent at once while prod answers 500 are all acked at once and each answered exactly once."""
    bot = start_bot()
    assert stack.kube is not None
    stack.kube.cluster("prod").faults.set(mode="500")
    sent: list[Sent] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        for text in ("status payment", "status orders prod", "help"):
            one = bot.send(text, user=f"U0LOAD{index:02d}")
            with lock:
                sent.append(one)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(sent) == 30
    assert all(one.status == 200 for one in sent)
    assert max(one.ack_seconds for one in sent) < ACK_DEADLINE
    for one in sent:
        bot.wait_answer(one, timeout=DEADLINE * 4)
    # A command is answered by the worker that runs it: once every command was answered and no worker is
    # busy, every command's work is over, and no second answer can still come.
    wait_until(lambda: bot.running.bot.pool.busy == 0, what="every worker done")
    assert sorted(len(bot.answers(one)) for one in sent) == [1] * 30
