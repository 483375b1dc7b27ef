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


def test_trace_text_cannot_break_out_of_the_query(run: Run) -> None:
    """A trace id with quotes and braces is one filter: the query parses and finds nothing."""
    reply = run("""trace '"} or {app=~".+' prod""")
    assert isinstance(reply, TraceReply)
    assert reply.lines == ()


def test_trace_lines_from_plain_text_are_kept(run: Run, loki: LokiSandbox) -> None:
    """A plain-text line holding the trace id (a proxy's access log) joins the timeline, raw."""
    loki.push([{"stream": {"namespace": "dev", "app": "gateway"},
                "values": [[str(time.time_ns() - 5_000_000_000), "proxy: trace=abc123def upstream 502"]]}])
    reply = run("trace abc123def dev")
    assert [(line.parsed, line.message) for line in reply.lines] == [(False, "proxy: trace=abc123def upstream 502")]


@pytest.mark.parametrize(("text", "wording"), [
    ("trace", "the following arguments are required: trace_id"),
    ("trace abc qa", "unknown environment 'qa'"),
    ("trace abc --since 40d", "longer than 30d"),
])
def test_bad_arguments(run: Run, text: str, wording: str) -> None:
    """Mistakes are usage errors answered before Loki is asked."""
    reply = run(text)
    assert isinstance(reply, Message)
    assert reply.outcome is Outcome.USER_ERROR
    assert wording in reply.title


def test_a_long_trace_is_attached_in_full(make_runtime: Callable[..., Runtime], loki: LokiSandbox) -> None:
    """A trace with more lines than fit: the first lines in the message, all of them in the file."""
    now = time.time_ns()
    values = [[str(now - 60_000_000_000 + index * 1_000_000),
               json.dumps({"level": "info", "trace_id": "longtrace1", "message": f"step {index}"})]
              for index in range(80)]
    loki.push([{"stream": {"namespace": "dev", "app": "orders"}, "values": values}])
    runtime = make_runtime(loki.url)
    reply = runtime.dispatcher.execute("trace longtrace1 dev", "U0ALICE", source="terminal", follow_runs=True)
    message = slack.render(to_document(reply))
    assert message.attachment is not None
    assert "step 79" in message.attachment.content
    assert "step 0" in json.dumps(message.blocks)
    assert "step 79" not in json.dumps(message.blocks)
