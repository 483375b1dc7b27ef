"""/svc logs through the real dispatcher, the real Loki client and the Loki stand-in over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.render import slack
from bot.render.views import to_document
from bot.replies.base import Message, Outcome
from bot.replies.logs import LogsReply
from bot.runtime import Runtime
from bot.terminal.shell import render_reply
from sandbox.loki import LokiSandbox
from sandbox.seed.logs import PROD_DECLINED_TRACE_ID, SECRET_API_KEY, SECRET_PASSWORD

Run = Callable[[str], Any]


def slack_text(reply: Any) -> str:
    message = slack.render(to_document(reply))
    return json.dumps(message.blocks, ensure_ascii=False) + (message.attachment.content if message.attachment else "")


def push_lines(loki: LokiSandbox, namespace: str, service: str, lines: list[str], *, spacing_ms: int = 10) -> None:
    end = time.time_ns() - 1_000_000_000
    values = [[str(end - index * spacing_ms * 1_000_000), line] for index, line in enumerate(lines)]
    loki.push([{"stream": {"namespace": namespace, "app": service}, "values": values}])


class TestLines:
    def test_errors_in_orders_staging_newest_first(self, run: Run) -> None:
        """--level error finds the database errors, newest first, each with its level and message."""
        reply = run("logs orders staging --level error")
        assert isinstance(reply, LogsReply)
        assert reply.lines
        assert {line.level for line in reply.lines} == {"error"}
        stamps = [line.timestamp_ns for line in reply.lines]
        assert stamps == sorted(stamps, reverse=True)
        assert "database unreachable" in reply.lines[0].message

    def test_the_default_environment_is_used_without_one(self, run: Run) -> None:
        """Without an env, settings.default_env (prod) is searched."""
        reply = run("logs payment --since 1h")
        assert isinstance(reply, LogsReply)
        assert (reply.lookup.env, reply.lookup.namespace) == ("prod", "prod")
        assert reply.lookup.query.startswith('{namespace="prod", app="payment"}')

    def test_lines_from_every_pod_are_merged_by_time(self, run: Run) -> None:
        """Each pod is its own stream; the answer is one list ordered by time across them."""
        reply = run("logs gateway prod --since 2h --limit 200")
        stamps = [line.timestamp_ns for line in reply.lines]
        assert len(reply.lines) == 200
        assert stamps == sorted(stamps, reverse=True)
        assert reply.limit_reached

    def test_a_trace_id_filters_one_services_lines(self, run: Run) -> None:
        """--trace keeps the lines of that trace only, and they carry its id."""
        reply = run(f"logs payment prod --trace {PROD_DECLINED_TRACE_ID}")
        assert [line.message.split(" order_id")[0] for line in reply.lines] == [
            "charge declined: card expired", "charging card"]
        assert {line.trace_id for line in reply.lines} == {PROD_DECLINED_TRACE_ID}

    def test_lines_that_are_not_json_are_kept_and_shown_raw(self, run: Run) -> None:
        """The panic's stack trace (plain text) is shown beside the errors, and said to be raw."""
        reply = run("logs inventory prod --level error --since 1h")
        raw = [line for line in reply.lines if not line.parsed]
        assert any(line.message == "goroutine 1 [running]:" for line in raw)
        assert {line.level for line in reply.lines if line.parsed} == {"error", "fatal"}
        assert f"{reply.unparsed} line(s) are not JSON" in render_reply(reply)

    def test_secrets_are_masked_everywhere(self, run: Run) -> None:
        """The logged password and API key appear in no rendering: terminal, Slack blocks, or the file."""
        reply = run("logs payment prod --since 1h --limit 500")
        text = render_reply(reply) + slack_text(reply) + repr(reply)
        assert "config reload: connecting to ledger with password=•••" in text
        assert SECRET_PASSWORD not in text
        assert SECRET_API_KEY not in text

    def test_grep_with_quotes_cannot_break_out_of_the_query(self, run: Run) -> None:
        """--grep text with quotes and pipes is one filter: Loki parses the query and finds nothing."""
        reply = run("""logs payment prod --grep '"} | line_format "x' --level debug""")
        assert isinstance(reply, LogsReply)
        assert reply.lines == ()
        assert '|= "\\"} | line_format \\"x"' in reply.lookup.query

    def test_grep_text_is_found_literally(self, run: Run) -> None:
        """--grep matches the exact text (here with regex characters in it)."""
        reply = run('logs orders staging --grep "(attempt 3)" --since 1h')
        assert [line.message.split(" backoff")[0] for line in reply.lines] == [
            "retrying database connection (attempt 3)"]


class TestPicture:
    def test_the_sparkline_counts_every_level_despite_level(self, run: Run) -> None:
        """Lines per level come from one metric query that ignores --level, most severe first."""
        reply = run("logs orders staging --level error --since 1h")
        levels = [series.level for series in reply.series]
        assert levels[:2] == ["error", "warn"]
        assert "info" in levels
        assert len(reply.series[0].counts) == 30
        error_total = reply.series[0].total
        assert error_total >= sum(1 for line in reply.lines if line.level == "error")

    def test_the_sparkline_shows_when_the_errors_started(self, run: Run) -> None:
        """The outage began 25 minutes ago: in a 2h picture the error buckets before that are empty."""
        reply = run("logs orders staging --level error --since 2h")
        errors = next(series for series in reply.series if series.level == "error")
        started = next(index for index, count in enumerate(errors.counts) if count)
        assert 20 <= started <= 26  # 30 buckets of 4 minutes; the outage began in the 24th from the end

    def test_a_failing_count_query_does_not_hide_the_lines(self, run: Run, loki: LokiSandbox) -> None:
        """When only the metric query fails, the lines are shown with a note saying why the picture is missing."""
        loki.fail_next(400, body="parse error at line 1, col 5: syntax error", matching="count_over_time")
        reply = run("logs payment prod --since 1h")
        assert isinstance(reply, LogsReply)
        assert reply.lines
        assert reply.series == ()
        assert "no lines-per-level picture: Loki could not parse the query" in render_reply(reply)


class TestOutput:
    def test_a_long_result_is_summarised_and_attached_in_full(self, run: Run) -> None:
        """More lines than fit: counts by level, the newest lines, and every line in the attached file."""
        reply = run("logs gateway prod --since 2h --limit 300")
        document = to_document(reply)
        message = slack.render(document)
        assert message.attachment is not None
        assert len(message.attachment.content.splitlines()) == 300 + 4
        assert not message.truncated
        assert len(message.blocks) <= 50
        assert "300+ lines (" in render_reply(reply)

    def test_a_short_result_has_no_attachment(self, run: Run) -> None:
        """A handful of lines are all in the message."""
        reply = run(f"logs gateway prod --trace {PROD_DECLINED_TRACE_ID}")
        assert slack.render(to_document(reply)).attachment is None

    def test_explore_link_has_the_same_query_and_range(self, run: Run) -> None:
        """The Grafana link carries the query that ran and its time range in milliseconds."""
        reply = run("logs orders staging --level error")
        lookup = reply.lookup
        panes = json.loads(parse_qs(urlsplit(lookup.explore_url).query)["panes"][0])
        pane = next(iter(panes.values()))
        assert pane["queries"][0]["expr"] == lookup.query
        assert pane["range"] == {"from": str(lookup.start_ns // 1_000_000), "to": str(lookup.end_ns // 1_000_000)}
        assert "Open this query in Grafana Explore" in slack_text(reply)

    def test_no_explore_link_without_grafana(self, make_runtime: Callable[..., Runtime], loki: LokiSandbox) -> None:
        """Without grafana_url in the catalog there is no link."""
        runtime = make_runtime(loki.url, grafana=False)
        reply = runtime.dispatcher.execute("logs orders staging", "U0ALICE", source="terminal", follow_runs=True)
        assert reply.lookup.explore_url == ""

    def test_log_text_cannot_mention_people_or_disguise_links(self, run: Run, loki: LokiSandbox) -> None:
        """A logged `<@U…>` or `<https://…|label>` is shown as text, not as a mention or a link."""
        push_lines(loki, "dev", "gateway", [json.dumps({"level": "info", "message": "hi <@U0BOSS> see "
                                                        "<https://evil.example.com|the runbook>"})])
        reply = run("logs gateway dev --grep U0BOSS")
        blocks = slack_text(reply)
        assert "<@U0BOSS>" not in blocks
        assert "<https://evil.example.com|" not in blocks
        assert "U0BOSS" in blocks

    def test_public_in_channel(self, run: Run) -> None:
        """A log lookup is read-only and answered in the channel."""
        assert run("logs orders staging").public is True


class TestNothingFound:
    def test_no_results_say_which_query_over_which_range_and_what_next(self, run: Run) -> None:
        """An empty answer shows the query, the range, and suggests a wider --since and dropping --level."""
        reply = run("logs payment dev --level fatal --since 30m")
        text = render_reply(reply)
        assert reply.lines == ()
        assert "No log lines for payment in dev in the last 30m (" in text
        assert reply.lookup.query in text
        assert "--since 2h" in text
        assert "drop --level fatal" in text


class TestArguments:
    @pytest.mark.parametrize(("text", "wording"), [
        ("logs payment --since 31d", "longer than 30d"),
        ("logs payment --since 10x", "is not a duration"),
        ("logs payment --level loud", "invalid choice: 'loud'"),
        ("logs payment --limit 0", "--limit must be at least 1"),
        ("logs payment --limit many", "invalid int value"),
        ("logs nosuch", "unknown service 'nosuch'"),
        ("logs payment qa", "unknown environment 'qa'"),
        ("logs payment --grep=", "--grep needs some text"),
    ])
    def test_bad_arguments_are_usage_errors(self, run: Run, text: str, wording: str) -> None:
        """Each mistake is answered with what is wrong, before Loki is asked."""
        reply = run(text)
        assert isinstance(reply, Message)
        assert reply.outcome is Outcome.USER_ERROR
        assert wording in reply.title

    def test_limit_above_5000_is_clamped_with_a_note(self, run: Run, loki: LokiSandbox) -> None:
        """--limit 9000 asks Loki for 5000 and says so."""
        reply = run("logs orders staging --limit 9000")
        assert reply.lookup.limit == 5000
        assert "--limit 9000 is more than Loki returns in one query: using 5000" in render_reply(reply)
        assert loki.requests_to("/loki/api/v1/query_range")[-1].params.get("limit") in {"5000", None}

    def test_level_warning_is_warn(self, run: Run) -> None:
        """`--level warning` finds warn lines (and above) like `--level warn`."""
        reply = run("logs orders staging --level warning --since 1h")
        assert {line.level for line in reply.lines} == {"warn", "error"}

    def test_since_accepts_days(self, run: Run) -> None:
        """--since 1d covers a day."""
        reply = run("logs payment --since 1d")
        assert reply.lookup.end_ns - reply.lookup.start_ns == 86_400 * 1_000_000_000


class TestLokiTrouble:
    def test_429_once_then_the_answer(self, run: Run, loki: LokiSandbox) -> None:
        """Loki busy for one request: the command retries and answers normally."""
        loki.fail_next(429)
        reply = run("logs orders staging --level error")
        assert isinstance(reply, LogsReply)
        assert reply.lines
        assert not reply.series_problem

    def test_a_stalled_loki_gets_a_clear_answer_within_the_deadline(self, make_runtime: Callable[..., Runtime],
                                                                    loki: LokiSandbox) -> None:
        """With a 2s deadline and Loki not answering, the user hears that Loki did not answer, in time."""
        runtime = make_runtime(loki.url, deadline="2s")
        loki.stall(30)
        started = time.monotonic()
        reply = runtime.dispatcher.execute("logs orders staging", "U0ALICE", source="terminal", follow_runs=True)
        elapsed = time.monotonic() - started
        assert isinstance(reply, Message)
        # Loki named by the verb itself, so before the deadline (a verb still waiting at the deadline is
        # answered by the dispatcher: "no answer within the command deadline").
        assert "did not answer within" in reply.title
        assert "no answer within the command deadline" not in reply.title
        assert elapsed < 2.0 + 3.0  # room for a busy machine, far from the 30 s stall

    def test_loki_down_is_reported_and_other_verbs_still_work(self, make_runtime: Callable[..., Runtime]) -> None:
        """A Loki nobody listens on: the log verbs say so; help still answers."""
        runtime = make_runtime("http://127.0.0.1:9")
        reply = runtime.dispatcher.execute("logs orders staging", "U0ALICE", source="terminal", follow_runs=True)
        assert "cannot reach Loki at http://127.0.0.1:9" in reply.title
        assert reply.outcome is Outcome.INTERNAL_ERROR
        assert runtime.dispatcher.execute("help", "U0ALICE", source="terminal", follow_runs=True).outcome is Outcome.OK

    def test_without_loki_in_the_catalog_the_verb_says_so(self, make_runtime: Callable[..., Runtime]) -> None:
        """No `loki:` section: a user error naming what is missing."""
        runtime = make_runtime(None)
        reply = runtime.dispatcher.execute("logs orders staging", "U0ALICE", source="terminal", follow_runs=True)
        assert reply.outcome is Outcome.USER_ERROR
        assert reply.title.startswith("Loki is not configured in the catalog")

    def test_the_client_is_built_once_and_lazily(self, make_runtime: Callable[..., Runtime], loki: LokiSandbox,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        """Building the runtime does not touch Loki; the first log verb builds one shared client.

        The client takes its credentials from the environment when it is built, so the token its requests
        carry tells when that was: set after the runtime was built, it is used (built lazily, at the first
        verb); removed after that verb, it is still used (the same client, built once)."""
        before = len(loki.seen)
        runtime = make_runtime(loki.url)
        assert len(loki.seen) == before  # building the runtime asked Loki nothing
        monkeypatch.setenv("SVCBOT_LOKI_TOKEN", "token-set-after-start")
        first = runtime.dispatcher.execute("logs orders staging", "U0ALICE", source="terminal", follow_runs=True)
        assert isinstance(first, LogsReply)
        after_first = len(loki.seen)
        assert after_first > before
        assert {seen.auth for seen in loki.seen[before:after_first]} == {"bearer"}
        monkeypatch.delenv("SVCBOT_LOKI_TOKEN")
        second = runtime.dispatcher.execute("logs orders staging", "U0ALICE", source="terminal", follow_runs=True)
        assert isinstance(second, LogsReply)
        assert len(loki.seen) > after_first
        assert {seen.auth for seen in loki.seen[after_first:]} == {"bearer"}
        assert runtime.backends.loki() is runtime.backends.loki()
