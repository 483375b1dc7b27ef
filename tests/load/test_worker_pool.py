"""A full worker pool and the per-user rate limit: commands are still acked at once, told where they stand
(queued with their position, or busy, or when to try again), and every accepted command is answered."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from load_world import ACK_DEADLINE, DEADLINE, HttpBot, Sent, wait_until

from sandbox.stack import SandboxStack

BUSY = "svcbot is busy with too many commands; please try again in a minute."


def test_full_pool_queues_then_refuses_and_answers_all(stack: SandboxStack,
                                                       start_bot: Callable[..., HttpBot]) -> None:
    """One worker held by a stalled cluster: the next two are queued with their position, the fourth is busy."""
    bot = start_bot(workers=1, queue_limit=2)
    assert stack.kube is not None
    stack.kube.cluster("prod").faults.set(mode="stall", seconds=30)
    running = bot.send("status payment prod")
    wait_until(lambda: bot.running.bot.pool.busy == 1, timeout=5, what="the worker taking the first command")
    second = bot.send("status payment prod")
    third = bot.send("help")
    refused = bot.send("status payment prod")
    for sent in (running, second, third, refused):
        assert sent.status == 200
        assert sent.ack_seconds < ACK_DEADLINE
    assert running.ack_text == ""
    assert second.ack_text == ":hourglass: queued: 1 command(s) ahead of yours."
    assert third.ack_text == ":hourglass: queued: 2 command(s) ahead of yours."
    assert refused.ack_text == ":hourglass: " + BUSY
    assert (bot.metric("svcbot_commands_rejected_total") or 0) >= 1
    assert bot.metric("svcbot_queue_depth") == 2

    stack.kube.clear_faults()  # the stalled requests are answered now: the queue drains
    for sent in (running, second, third):
        bot.wait_answer(sent, timeout=DEADLINE * 3)
    assert [len(bot.answers(sent)) for sent in (running, second, third, refused)] == [1, 1, 1, 0]
    assert "/svc help [verb]" in bot.answer_text(third)[0]


def test_pool_under_a_burst_answers_or_refuses_every_command(stack: SandboxStack,
                                                            start_bot: Callable[..., HttpBot]) -> None:
    """40 commands at once on 2 workers and a queue of 10: each is answered once, or refused in its ack."""
    bot = start_bot(workers=2, queue_limit=10)
    assert stack.kube is not None
    stack.kube.cluster("prod").faults.set(mode="stall", seconds=0.5)
    sent: list[Sent] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        for _ in range(4):
            one = bot.send("status payment prod", user=f"U0BURST{index}")
            with lock:
                sent.append(one)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    refused = [one for one in sent if BUSY in one.ack_text]
    accepted = [one for one in sent if BUSY not in one.ack_text]
    assert len(sent) == 40
    assert refused
    assert all(one.ack_seconds < ACK_DEADLINE for one in sent)
    for one in accepted:
        bot.wait_answer(one, timeout=DEADLINE * 6)
    assert [len(bot.answers(one)) for one in accepted] == [1] * len(accepted)
    assert [len(bot.answers(one)) for one in refused] == [0] * len(refused)


def test_rate_limit_over_http(start_bot: Callable[..., HttpBot]) -> None:
    """The 21st command of one user within a minute is answered with when to try again; others still run."""
    bot = start_bot(rate_limit={"per_user": "20/min"})
    bot.answer_text(bot.send("status payment staging", user="U0WARM"))  # see test_concurrent_first_looks
    sent = [bot.send("status payment staging", user="U0HASTY") for _ in range(21)]
    texts = [bot.answer_text(one)[0] for one in sent]
    limited = [text for text in texts if "too many commands" in text]
    assert len(limited) == 1
    match = re.search(r"too many commands \(20/min per user\): try again in (\d+) s", limited[0])
    assert match is not None, limited[0]
    assert 50 <= int(match.group(1)) <= 60
    assert sum("payment-api" in text for text in texts) == 20
    other, _ = bot.answer_text(bot.send("status payment staging", user="U0CALM"))
    assert "payment-api" in other


def test_concurrent_first_looks(stack: SandboxStack, start_bot: Callable[..., HttpBot], fresh_service: str) -> None:
    """Four `status` commands for a service nobody has looked at yet, at once, all show its deployment."""
    bot = start_bot(extra_services=[fresh_service])
    assert stack.kube is not None
    stack.kube.cluster("nonprod").faults.set(mode="stall", seconds=0.8)  # their first reads overlap
    sent = [bot.send(f"status {fresh_service} staging", user=f"U0FIRST{index}") for index in range(4)]
    texts = [bot.answer_text(one)[0] for one in sent]
    assert [("internal error" in text) for text in texts] == [False] * 4
    assert all(fresh_service in text for text in texts)
