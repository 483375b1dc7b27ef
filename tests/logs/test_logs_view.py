"""Formatting of log answers: sparklines, clipping, level counts, and Slack's limits on large results."""

from __future__ import annotations

import json
import time

from bot.insight.logs import LevelSeries, LogLine
from bot.render import slack
from bot.render import text as text_render
from bot.render.logs_view import SHOWN_LINES, clip, defuse, sparkline, wider_since
from bot.render.views import to_document
from bot.replies.logs import LogLookup, LogsReply

NOW = 1_795_000_000 * 1_000_000_000


def big_reply(count: int, message: str = "request handled", trace: str = "") -> LogsReply:
    lookup = LogLookup(env="prod", namespace="prod", query='{namespace="prod", app="payment"} | json',
                       start_ns=NOW - 3600 * 10**9, end_ns=NOW, since="1h", limit=count,
                       explore_url="https://grafana.example.com/explore?panes=%7B%7D")
    levels = ("error", "warn", "info", "debug")
    lines = tuple(LogLine(NOW - index * 10**8, levels[index % 4], f"{message} {index}", trace_id=trace,
                          service="payment") for index in range(count))
    series = tuple(LevelSeries(level, tuple(range(30))) for level in levels)
    return LogsReply(service="payment", lookup=lookup, lines=lines, limit_reached=True, series=series,
                     bucket_seconds=120, first_bucket_end_ns=NOW - 29 * 120 * 10**9, public=True)


def test_sparkline_scales_to_the_peak_and_keeps_zero_lowest() -> None:
    """Zero is the lowest bar, the peak the highest, and any line at all is above zero."""
    assert sparkline([0, 1, 5, 10]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([1, 1000])[0] == "▂"


def test_clip_flattens_and_shortens() -> None:
    """Tabs and newlines become spaces and long text ends with an ellipsis."""
    assert clip("a\tb\nc") == "a b c"
    assert clip("x" * 200, 10) == "x" * 9 + "…"


def test_defuse_breaks_slack_syntax_but_keeps_the_text() -> None:
    """A zero-width space after '<' stops mentions and links; the visible text is the same."""
    assert defuse("<@U1>").replace("\u200b", "") == "<@U1>"
    assert "<@" not in defuse("<@U1>")


def test_wider_since_quadruples_up_to_30_days() -> None:
    """The suggested --since is about four times longer, and never beyond 30d."""
    assert [wider_since(value) for value in ("15m", "1h", "45s", "10d")] == ["1h", "4h", "3m", "30d"]


def test_a_5000_line_result_fits_slack_with_the_rest_attached() -> None:
    """The message stays within Slack's limits, shows the newest lines, and the file has every line."""
    reply = big_reply(5000, message="x" * 400)
    message = slack.render(to_document(reply))
    blocks = json.dumps(message.blocks, ensure_ascii=False)
    assert not message.truncated
    assert len(message.blocks) <= slack.MAX_BLOCKS
    assert all(len(block.get("text", {}).get("text", "")) <= slack.MAX_SECTION_TEXT for block in message.blocks)
    assert message.attachment is not None
    assert message.attachment.content.count("\n") == 5000 + 4
    assert f"x… {SHOWN_LINES - 1}" not in blocks
    assert "5000+ lines (error 1250 · warn 1250 · info 1250 · debug 1250)" in blocks


def test_the_terminal_rendering_aligns_columns() -> None:
    """Every table row starts with a time and a padded level."""
    lines = text_render.render(to_document(big_reply(5))).splitlines()
    table = [line for line in lines if line[:2].isdigit() and ":" in line[:8]]
    assert len(table) == 5
    assert {line[8:17] for line in table} == {"  error  ", "  warn   ", "  info   ", "  debug  "}


def test_trace_ids_get_a_column_only_when_they_vary() -> None:
    """Lines with trace ids show them; a --trace lookup does not repeat the same id on every line."""
    with_ids = text_render.render(to_document(big_reply(3, trace="abc123")))
    assert "trace id" in with_ids
    assert "abc123" in with_ids


def test_rendering_5000_lines_is_quick() -> None:
    """Building and rendering a 5,000-line answer takes well under a second (benchmarks measure it)."""
    started = time.perf_counter()
    slack.render(to_document(big_reply(5000)))
    assert time.perf_counter() - started < 2.0


def test_ranges_and_axes_show_dates_when_they_cross_a_day() -> None:
    """A range within one day is dated once, at its start; a range across days dates both ends, and so does
    the sparkline's axis (a one-day axis would otherwise read the same time at both ends)."""
    hour = big_reply(3)
    text = text_render.render(to_document(hour))
    assert "the last 1h (2026-11-18 10:06:40 – 11:06:40 UTC)" in text
    day = big_reply(3)
    day = LogsReply(service="payment", lookup=LogLookup(
        env="prod", namespace="prod", query=day.lookup.query, start_ns=NOW - 86_400 * 10**9, end_ns=NOW, since="1d",
        limit=3), lines=day.lines, limit_reached=False, series=day.series, bucket_seconds=2880,
        first_bucket_end_ns=NOW - 29 * 2880 * 10**9, public=True)
    text = text_render.render(to_document(day))
    assert "the last 1d (2026-11-17 11:06:40 – 2026-11-18 11:06:40 UTC)" in text
    axis = next(line for line in text.splitlines() if "11-18 11:06:40" in line and "peak" not in line)
    assert "11-17 11:0" in axis


def test_the_grafana_link_is_a_link_in_slack() -> None:
    """The Explore link is Slack link syntax (clickable), not escaped text."""
    message = slack.render(to_document(big_reply(3)))
    blocks = json.dumps(message.blocks)
    assert "<https://grafana.example.com/explore?panes=%7B%7D|Open this query in Grafana Explore>" in blocks
    assert "&lt;https://grafana" not in blocks
