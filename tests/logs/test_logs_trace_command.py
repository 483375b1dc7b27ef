"""/svc trace: one request across every service of the catalog, in one Loki query, as a timeline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.render import slack
from bot.render.views import to_document
from bot.replies.base import Message, Outcome
from bot.replies.logs import TraceReply
from bot.runtime import Runtime
from bot.terminal.shell import render_reply
from sandbox.loki import LokiSandbox
from sandbox.seed.logs import PROD_DECLINED_TRACE_ID, STAGING_FAILED_TRACE_ID

Run = Callable[[str], Any]


def test_a_trace_crosses_three_services_in_time_order(run: Run) -> None:
    """The declined checkout in prod: gateway, orders and payment lines, oldest first, each naming its service."""
    reply = run(f"trace {PROD_DECLINED_TRACE_ID}")
    assert isinstance(reply, TraceReply)
    assert [line.service for line in reply.lines] == ["gateway", "orders", "payment", "payment", "orders", "gateway"]
    stamps = [line.timestamp_ns for line in reply.lines]
    assert stamps == sorted(stamps)
    assert reply.lines[3].message.startswith("charge declined: card expired")
    assert reply.services_seen == ("gateway", "orders", "payment")


def test_one_query_covers_every_catalog_service(run: Run, loki: LokiSandbox) -> None:
    """Exactly one query_range, its selector matching every catalog service by one regex."""
    before = len(loki.requests_to("/loki/api/v1/query_range"))
    reply = run(f"trace {STAGING_FAILED_TRACE_ID} staging")
    sent = loki.requests_to("/loki/api/v1/query_range")[before:]
    assert len(sent) == 1
    assert sent[0].params["query"].startswith('{namespace="staging", app=~"gateway|inventory|orders|payment"}')
    assert sent[0].params["direction"] == "forward"
    assert [line.level for line in reply.lines] == ["info", "info", "error", "error"]


def test_the_timeline_shows_offsets_and_services(run: Run) -> None:
    """The text shows each line's offset from the first and its service, and names silent services."""
    text = render_reply(run(f"trace {PROD_DECLINED_TRACE_ID} prod"))
    assert "+240ms  payment  warn   charge declined: card expired" in text
    assert "no lines from inventory" in text
    assert "6 lines from gateway, orders, payment over 250ms" in text


def test_an_unknown_trace_says_what_ran_and_what_next(run: Run) -> None:
    """No lines: the query and range are shown, with a wider --since and another environment suggested."""
    reply = run("trace 00000000000000000000000000000000 dev --since 30m")
    text = render_reply(reply)
    assert reply.lines == ()
    assert "No lines with trace id 00000000000000000000000000000000 in dev in the last 30m" in text
    assert reply.lookup.query in text
    assert "--since 2h" in text


@pytest.mark.parametrize("text", ['"} or {app=~".+', "abc123def", "4bf92f3577b34da6a3ce929d0e0e473", "x" * 300])
def test_a_trace_id_is_16_or_32_hex_characters(run: Run, text: str) -> None:
    """Anything else (query syntax, too short, too long) is a usage error naming the expected form and
    quoting at most a short piece of what was typed."""
    reply = run(f"trace '{text}' prod")
    assert isinstance(reply, Message)
    assert reply.outcome is Outcome.USER_ERROR
    assert "is not a trace id: a trace id is 32 hexadecimal characters (or 16)" in reply.title
    assert len(reply.title) < 200


def test_a_64_bit_trace_id_matches_its_zero_padded_form(run: Run, loki: LokiSandbox) -> None:
    """OpenTelemetry and W3C Trace Context pad a 64-bit id with zeros: 16 hex characters find it."""
    short = "a3ce929d0e0e4736"
    loki.push([{"stream": {"namespace": "dev", "app": "orders"},
                "values": [[str(time.time_ns() - 5_000_000_000),
                            json.dumps({"level": "info", "trace_id": "0" * 16 + short, "message": "padded"})]]}])
    reply = run(f"trace {short.upper()} dev")
    assert isinstance(reply, TraceReply)
    assert [line.message for line in reply.lines] == ["padded"]


def test_trace_lines_from_plain_text_are_kept(run: Run, loki: LokiSandbox) -> None:
    """A plain-text line holding the trace id (a proxy's access log) joins the timeline, raw."""
    line = "proxy: trace=abc123def0123456789abcdef0123456 upstream 502"
    loki.push([{"stream": {"namespace": "dev", "app": "gateway"},
                "values": [[str(time.time_ns() - 5_000_000_000), line]]}])
    reply = run("trace abc123def0123456789abcdef0123456 dev")
    assert [(line.parsed, line.message) for line in reply.lines] == [(False, line)]


@pytest.mark.parametrize(("text", "wording"), [
    ("trace", "missing <\u200btrace-id>"),
    ("trace 4bf92f3577b34da6 qa", "unknown environment 'qa'"),
    ("trace 4bf92f3577b34da6 --since 40d", "longer than 30d"),
])
def test_bad_arguments(run: Run, text: str, wording: str) -> None:
    """Mistakes are usage errors answered before Loki is asked."""
    reply = run(text)
    assert isinstance(reply, Message)
    assert reply.outcome is Outcome.USER_ERROR
    assert wording in reply.title


LONG_TRACE = "1f" * 16


def test_a_long_trace_is_attached_in_full(make_runtime: Callable[..., Runtime], loki: LokiSandbox) -> None:
    """A trace with more lines than fit: the first lines in the message, all of them in the file."""
    now = time.time_ns()
    values = [[str(now - 60_000_000_000 + index * 1_000_000),
               json.dumps({"level": "info", "trace_id": LONG_TRACE, "message": f"step {index}"})]
              for index in range(80)]
    loki.push([{"stream": {"namespace": "dev", "app": "orders"}, "values": values}])
    runtime = make_runtime(loki.url)
    reply = runtime.dispatcher.execute(f"trace {LONG_TRACE} dev", "U0ALICE", source="terminal", follow_runs=True)
    message = slack.render(to_document(reply))
    assert message.attachment is not None
    assert "step 79" in message.attachment.content
    assert "step 0" in json.dumps(message.blocks)
    assert "step 79" not in json.dumps(message.blocks)
