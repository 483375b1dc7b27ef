"""Views of /svc logs and /svc trace: a picture of the range first, then the lines, then how to go on.

A message shows the newest lines that fit Slack comfortably; when there are more, it says how many of
each level there are and the whole result goes along as a text file. Log text comes from the services,
so it is defused before it reaches a renderer that keeps Slack's `<@U…>` / `<https://…|…>` syntax: a log
line can neither mention anyone nor show a disguised link.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence

from bot.core.tone import Tone
from bot.insight.logs import LogLine
from bot.render.document import Attachment, Code, Document, Element, Lines, Note, Paragraph, Table
from bot.render.views import view
from bot.replies.logs import LogLookup, LogsReply, TraceReply

SHOWN_LINES = 30  # lines in a message; the rest go in the attached file
MESSAGE_WIDTH = 140  # characters of a message shown in a chat line (the file has them whole)
BLOCKS = "▁▂▃▄▅▆▇█"
SEVERE = ("error", "fatal")


# --- small formatting helpers ---------------------------------------------------------------------------

def utc(timestamp_ns: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(timestamp_ns / 1e9, tz=_dt.UTC)


def clock(timestamp_ns: int, *, with_date: bool = False, millis: bool = False) -> str:
    moment = utc(timestamp_ns)
    text = moment.strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return text + f".{moment.microsecond // 1000:03d}" if millis else text


def spans_days(timestamps: Iterable[int]) -> bool:
    days = {utc(timestamp).date() for timestamp in timestamps}
    return len(days) > 1


def defuse(text: str) -> str:
    """Break Slack's mention/link syntax in text a service logged (a zero-width space after `<`)."""
    return text.replace("<", "<\u200b") if "<" in text else text


def clip(text: str, width: int = MESSAGE_WIDTH) -> str:
    text = " ".join(text.split())  # tabs and newlines of stack traces would break the columns
    return text if len(text) <= width else text[: width - 1] + "…"


def sparkline(counts: Sequence[int]) -> str:
    """'▁▁▂▁▇█▆▂': zero is the lowest bar; any line at all shows at least the second."""
    peak = max(counts, default=0)
    if peak == 0:
        return BLOCKS[0] * len(counts)
    return "".join(BLOCKS[0] if count == 0 else BLOCKS[1 + round((count / peak) * (len(BLOCKS) - 2))]
                   for count in counts)


def range_words(lookup: LogLookup) -> str:
    """'the last 30m (2026-12-07 21:22:52 – 21:52:52 UTC)'; both ends dated when the range crosses a day."""
    start, end = utc(lookup.start_ns), utc(lookup.end_ns)
    if start.date() == end.date():
        return f"the last {lookup.since} ({start:%Y-%m-%d %H:%M:%S} – {end:%H:%M:%S} UTC)"
    return f"the last {lookup.since} ({start:%Y-%m-%d %H:%M:%S} – {end:%Y-%m-%d %H:%M:%S} UTC)"


def filter_words(lookup: LogLookup) -> str:
    parts = []
    if lookup.level:
        parts.append(f"level ≥ {lookup.level}")
    if lookup.grep:
        parts.append(f"containing {clip(lookup.grep, 60)!r}")
    if lookup.trace_id:
        parts.append(f"trace {clip(lookup.trace_id, 40)}")
    return " · ".join(parts)


def wider_since(since: str) -> str:
    """The next --since to try: about four times longer, at most 30d."""
    number, unit = int(since[:-1]), since[-1]
    seconds = number * {"s": 1, "m": 60, "h": 3600, "d": 86_400}.get(unit, 60) * 4
    for size, suffix in ((86_400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size and seconds % size == 0:
            return f"{min(seconds // size, 30 if suffix == 'd' else 10**6)}{suffix}"
    return f"{seconds}s"


def level_counts(lines: Sequence[LogLine]) -> str:
    """'error 37 · warn 12 · not JSON 3': the lines of the answer by level, most severe first."""
    counted: dict[str, int] = {}
    for line in lines:
        key = line.level or ("not JSON" if not line.parsed else "no level")
        counted[key] = counted.get(key, 0) + 1
    rank = {level: index for index, level in enumerate(("fatal", "error", "warn", "info", "debug"))}
    ordered = sorted(counted.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))
    return " · ".join(f"{level} {count}" for level, count in ordered)


def links(lookup: LogLookup) -> list[Element]:
    notes: list[Element] = [Note(note) for note in lookup.notes]
    if lookup.explore_url:
        # A link svcbot builds (the catalog's Grafana URL, the query percent-encoded): Slack link syntax on
        # purpose, so it is clickable; the terminal shows the label and the URL.
        notes.append(Note(f"<{lookup.explore_url}|Open this query in Grafana Explore>", markup=True))
    return notes


def full_text(title: str, lookup: LogLookup, lines: Sequence[LogLine], *, services: bool) -> str:
    """The whole result for the attached file: every line, whole, one per line."""
    with_date = spans_days(line.timestamp_ns for line in lines)
    out = [title, f"query: {lookup.query}", f"range: {range_words(lookup)}", ""]
    for line in lines:
        cells = [clock(line.timestamp_ns, with_date=with_date, millis=True)]
        if services:
            cells.append(line.service or "?")
        cells.append(line.level or ("-" if line.parsed else "raw"))
        if line.trace_id and not lookup.trace_id:
            cells.append(line.trace_id)
        cells.append(line.message)
        out.append("  ".join(cells))
    return "\n".join(out) + "\n"


# --- /svc logs ------------------------------------------------------------------------------------------

def sparkline_block(reply: LogsReply) -> list[Element]:
    if reply.series_problem:
        return [Note(f"no lines-per-level picture: {reply.series_problem}")]
    if not reply.series:
        return []
    step_ns = reply.bucket_seconds * 1_000_000_000
    width = max(len(item.level) for item in reply.series)
    first_start = reply.first_bucket_end_ns - step_ns
    # A range that crosses a day shows dates, or a one-day axis would read the same time at both ends.
    dated = spans_days((first_start, reply.lookup.end_ns))
    rows = []
    for item in reply.series:
        peak_end = reply.first_bucket_end_ns + item.peak_index * step_ns
        rows.append(f"{item.level.ljust(width)}  {sparkline(item.counts)}  {item.total:>5} "
                    f"· peak {clock(peak_end - step_ns, with_date=dated)}–{clock(peak_end, with_date=dated)}")
    start_text, end_text = clock(first_start, with_date=dated), clock(reply.lookup.end_ns, with_date=dated)
    gap = " " * max(1, len(reply.series[0].counts) - len(start_text))
    axis = f"{' ' * width}  {start_text}{gap}{end_text}"
    return [Code("\n".join([*rows, axis]))]


def log_table(lines: Sequence[LogLine], *, show_trace: bool) -> Table:
    with_date = spans_days(line.timestamp_ns for line in lines)
    columns = ("time", "level", "trace id", "message") if show_trace else ("time", "level", "message")
    rows = []
    for line in lines:
        cells = [clock(line.timestamp_ns, with_date=with_date), line.level or ("-" if line.parsed else "raw")]
        if show_trace:
            cells.append(line.trace_id)
        cells.append(defuse(clip(line.message)))
        rows.append(tuple(cells))
    return Table(columns=columns, rows=tuple(rows))


def _logs_empty(reply: LogsReply) -> Document:
    lookup = reply.lookup
    title = f"No log lines for {reply.service} in {lookup.env} in {range_words(lookup)}"
    filters = filter_words(lookup)
    hints = []
    other_levels = sum(item.total for item in reply.series)
    if lookup.level and other_levels:
        hints.append(f"drop --level {lookup.level}: {other_levels} lines of other levels match the rest")
    if lookup.grep:
        hints.append("check the --grep text: it is matched exactly, case-sensitive")
    hints.append(f"look further back: --since {wider_since(lookup.since)}")
    if not lookup.level and not lookup.grep and not lookup.trace_id:
        hints.append(f"check that the service logs to Loki in namespace {lookup.namespace}")
    elements: list[Element] = [
        Paragraph(title, tone=Tone.INFO, strong=True),
        *([Paragraph(defuse(f"filters: {filters}"))] if filters else []),
        Paragraph("query that ran:"),
        Code(lookup.query),
        Lines(tuple((None, hint) for hint in hints)),
        *links(lookup),
    ]
    return Document(summary=title, elements=tuple(elements), public=reply.public, tone=Tone.INFO)


@view(LogsReply)
def logs_view(reply: LogsReply) -> Document:
    if not reply.lines:
        return _logs_empty(reply)
    lookup = reply.lookup
    severe = sum(item.total for item in reply.series if item.level in SEVERE)
    tone = Tone.BAD if severe else Tone.OK
    head = f"{reply.service} in {lookup.env} · {range_words(lookup)}"
    filters = filter_words(lookup)
    count = f"{len(reply.lines)}{'+' if reply.limit_reached else ''} lines"
    summary = f"logs {reply.service} {lookup.env}: {count}" + (f", {severe} errors" if severe else "")
    elements: list[Element] = [Paragraph(head, tone=tone, strong=True)]
    if filters:
        elements.append(Paragraph(defuse(f"filters: {filters}")))
    elements.extend(sparkline_block(reply))
    shown = reply.lines[:SHOWN_LINES]
    if len(reply.lines) > len(shown):
        elements.append(Paragraph(
            f"{count} ({level_counts(reply.lines)}): the newest {len(shown)} below, "
            "every line in the attached file"))
    show_trace = not lookup.trace_id and any(line.trace_id for line in shown)
    elements.append(log_table(shown, show_trace=show_trace))
    if reply.unparsed:
        elements.append(Note(f"{reply.unparsed} line(s) are not JSON: shown raw, without a level"))
    if reply.limit_reached:
        elements.append(Note(
            f"Loki has more lines than --limit {lookup.limit}: older ones are not shown "
            "(raise --limit, up to 5000, or shorten --since)"))
    elements.extend(links(lookup))
    attachment = None
    if len(reply.lines) > len(shown):
        title = f"logs {reply.service} {lookup.env}" + (f" ({filters})" if filters else "")
        attachment = Attachment(filename=f"logs-{reply.service}-{lookup.env}.txt",
                                content=full_text(title, lookup, reply.lines, services=False), title=title)
    return Document(summary=summary, elements=tuple(elements), attachment=attachment, public=reply.public,
                    tone=tone)


# --- /svc trace -----------------------------------------------------------------------------------------

def _elapsed(first_ns: int, timestamp_ns: int) -> str:
    millis = (timestamp_ns - first_ns) / 1e6
    return f"+{millis:.0f}ms" if millis < 10_000 else f"+{millis / 1000:.1f}s"


def _trace_empty(reply: TraceReply) -> Document:
    lookup = reply.lookup
    title = f"No lines with trace id {clip(reply.trace_id, 60)} in {lookup.env} in {range_words(lookup)}"
    hints = [f"look further back: --since {wider_since(lookup.since)}",
             "or another environment: /svc trace <trace-id> <env>",
             f"services searched: {', '.join(reply.services)}"]
    elements: list[Element] = [
        Paragraph(defuse(title), tone=Tone.INFO, strong=True),
        Paragraph("query that ran:"),
        Code(lookup.query),
        Lines(tuple((None, hint) for hint in hints)),
        *links(lookup),
    ]
    return Document(summary=title, elements=tuple(elements), public=reply.public, tone=Tone.INFO)


@view(TraceReply)
def trace_view(reply: TraceReply) -> Document:
    if not reply.lines:
        return _trace_empty(reply)
    lookup = reply.lookup
    seen = reply.services_seen
    first, last = reply.lines[0].timestamp_ns, reply.lines[-1].timestamp_ns
    severe = sum(1 for line in reply.lines if line.level in SEVERE)
    tone = Tone.BAD if severe else Tone.OK
    head = (f"trace {reply.trace_id} in {lookup.env}: {len(reply.lines)}{'+' if reply.limit_reached else ''} "
            f"lines from {', '.join(seen) or 'unknown services'} over {_elapsed(first, last)[1:]}")
    summary = f"trace {clip(reply.trace_id, 40)} in {lookup.env}: {len(reply.lines)} lines" + (
        f", {severe} errors" if severe else "")
    with_date = spans_days(line.timestamp_ns for line in reply.lines)
    shown = reply.lines[:SHOWN_LINES]
    rows = tuple(
        (clock(line.timestamp_ns, with_date=with_date, millis=True), _elapsed(first, line.timestamp_ns),
         line.service or "?", line.level or ("-" if line.parsed else "raw"), defuse(clip(line.message)))
        for line in shown)
    elements: list[Element] = [
        Paragraph(defuse(head), tone=tone, strong=True),
        Table(columns=("time", "after", "service", "level", "message"), rows=rows, right_align=(1,)),
    ]
    if len(reply.lines) > len(shown):
        elements.insert(1, Paragraph(f"the first {len(shown)} of {len(reply.lines)} lines below, every line "
                                     "in the attached file"))
    quiet = [service for service in reply.services if service not in seen]
    if quiet:
        elements.append(Note(f"no lines from {', '.join(quiet)}"))
    if reply.limit_reached:
        elements.append(Note(f"the trace has more than {lookup.limit} lines in range: the earliest are shown"))
    elements.extend(links(lookup))
    attachment = None
    if len(reply.lines) > len(shown):
        title = f"trace {reply.trace_id} in {lookup.env}"
        attachment = Attachment(filename=f"trace-{lookup.env}.txt",
                                content=full_text(title, lookup, reply.lines, services=True), title=title)
    return Document(summary=summary, elements=tuple(elements), attachment=attachment, public=reply.public,
                    tone=tone)
