"""Socket Mode under faults: Slack's refresh disconnect is survived (the client comes back, /readyz says ready
again, commands are acked and answered), and a stalled backend never delays the ack. (A close frame or a
dropped connection takes Bolt's ping interval to notice; bench/ack_bench.py measures those.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from load_world import ACK_DEADLINE, DEADLINE, NO_ANSWER, SLACK_MARGIN, http_get, message_text, wait_until

from bot.core import acks
from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox
from sandbox.stack import SandboxStack


@pytest.fixture(name="socket_bot")
def _socket_bot(stack: SandboxStack, slack: SlackSandbox,
                catalog: Callable[..., Path]) -> Iterator[bot_app.Running]:
    slack.reset()
    running = bot_app.start(catalog(), port=0, health_port=0, environ=slack.env())
    slack.wait_for_connections(1, timeout=10)
    yield running
    assert stack.kube is not None
    stack.kube.clear_faults()
    assert running.socket_handler is not None
    slack.close_socket_mode_client(running.socket_handler.client)
    running.socket_handler = None
    running.stop(grace=5)


def readyz(running: bot_app.Running) -> int:
    return http_get(f"http://127.0.0.1:{running.health_server.port}/readyz")[0]


def ask(slack: SlackSandbox, text: str) -> tuple[float, str]:
    """Send a slash command envelope: (seconds to its ack, the text of its answer at the response_url)."""
    response_url = slack.response_url(channel_id="C0SANDBOX", user_id="U0DAVE")
    rid = response_url.rsplit("/", 1)[-1]
    ack = slack.wait_for_ack(slack.send_slash_command(text, user_id="U0DAVE", response_url=response_url),
                             timeout=5)
    answer = slack.wait_for("response_url", timeout=DEADLINE + SLACK_MARGIN + 2,
                            predicate=lambda call: call.target == rid and call.status == 200)[0]
    assert ack.latency is not None
    return ack.latency, message_text(answer.args)


def test_reconnects_after_a_refresh(slack: SlackSandbox, socket_bot: bot_app.Running) -> None:
    """After Slack's routine refresh (a disconnect message, then a close) the bot reconnects and answers again."""
    opened = slack.connections_opened()
    slack.disconnect_all("disconnect", grace=0.2)
    wait_until(lambda: slack.connections_opened() > opened and slack.connection_count() >= 1, timeout=20,
               what="a new Socket Mode connection")
    wait_until(lambda: readyz(socket_bot) == 200, timeout=10, what="/readyz ready again")
    latency, text = ask(slack, "help")
    assert latency < ACK_DEADLINE
    assert "/svc help [verb]" in text


def test_stalled_backend_never_delays_the_ack(stack: SandboxStack, slack: SlackSandbox,
                                              socket_bot: bot_app.Running) -> None:
    """With every cluster stalled, envelopes are acked at once and answered by the deadline."""
    assert stack.kube is not None
    for cluster in stack.kube.clusters.values():
        cluster.faults.set(mode="stall", seconds=30)
    latency, text = ask(slack, "status payment")
    assert latency < ACK_DEADLINE
    assert NO_ANSWER.search(text), text
    assert json.dumps(slack.acks()[-1].payload or {}) == "{}"


def test_acks_are_counted_until_written(slack: SlackSandbox, socket_bot: bot_app.Running) -> None:
    """Every envelope counts as an ack in flight from its arrival until its ack is written (so command work
    steps aside meanwhile, bot/core/acks.py), and none is left counted afterwards."""
    seen: list[int] = []

    def count(next: Callable[[], object]) -> object:
        seen.append(acks.in_flight())
        return next()

    socket_bot.bot.app.middleware(count)
    for _ in range(3):
        ask(slack, "help")
    assert len(seen) == 3
    assert min(seen) >= 1
    assert acks.in_flight() == 0
