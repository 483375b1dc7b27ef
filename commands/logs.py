"""/svc logs <service> [env] [--since 15m] [--level L] [--grep TEXT] [--trace ID] [--limit N]

Two Loki queries run side by side: the lines (newest first, at most --limit) and the lines per level
over the range (one metric query; every filter but --level, so the sparkline shows when the trouble
started among all levels). The lines are what the user came for: if the count fails, the answer says
why and still shows them. User text reaches LogQL only through bot.insight.logql's string literals.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from bot.clients.lanes import gather
from bot.core.catalog import Catalog
from bot.core.errors import BotError, UsageError, UserError
from bot.dispatch.command import Command, CommandParser, Invocation, service_in_env
from bot.insight import logql
from bot.insight.secrets import MASK, is_secret_key, mask_text
from bot.replies.base import Reply
from bot.replies.logs import LevelSeries, LogLine, LogLookup, LogsReply

USAGE = "/svc logs <service> [env] [--since 15m] [--level L] [--grep TEXT] [--trace ID] [--limit N]"
MAX_SINCE_SECONDS = 30 * 86_400
MAX_TEXT = 500  # characters of --grep / --trace
SPARK_BUCKETS = 30
_SINCE = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# JSON fields that are shown in their own column, or not at all (the time comes from Loki).
_COLUMN_FIELDS = {"timestamp", "time", "ts", "@timestamp", "level", "lvl", "severity", "service", "trace_id",
                  "traceId", "trace", "message", "msg"}
MAX_EXTRA_FIELDS = 6
T = TypeVar("T")


# --- arguments ------------------------------------------------------------------------------------------

def parse_since(text: str) -> int:
    """'15m', '2h', '1d' -> seconds; at most 30d."""
    match = _SINCE.match(text.strip().lower())
    if not match:
        raise UsageError(f"--since {text!r} is not a duration: use a number and s, m, h or d (15m, 2h, 1d)",
                         usage=USAGE)
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise UsageError("--since must be longer than zero", usage=USAGE)
    if seconds > MAX_SINCE_SECONDS:
        raise UsageError(f"--since {text} is longer than 30d, the longest range svcbot asks Loki for",
                         usage=USAGE)
    return seconds


def user_text(value: str | None, flag: str) -> str | None:
    """--grep / --trace text, checked for what LogQL cannot carry (lone surrogates) and for size."""
    if value is None:
        return None
    if value == "":
        raise UsageError(f"{flag} needs some text", usage=USAGE)
    if len(value) > MAX_TEXT:
        raise UsageError(f"{flag} text is longer than {MAX_TEXT} characters", usage=USAGE)
    try:
        return logql.check_text(value)
    except logql.LogQLError as exc:
        raise UsageError(f"{flag}: {exc}", usage=USAGE) from None


def build_parser() -> CommandParser:
    parser = CommandParser("logs", USAGE)
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    parser.add_argument("--since", default="15m")
    parser.add_argument("--level", type=str.lower, choices=logql.LEVEL_CHOICES)
    parser.add_argument("--grep")
    parser.add_argument("--trace")
    parser.add_argument("--limit", type=int, default=logql.DEFAULT_LIMIT)
    return parser


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    touched = service_in_env(args, catalog)
    parse_since(args.since)
    user_text(args.grep, "--grep")
    user_text(args.trace, "--trace")
    if args.limit < 1:
        raise UsageError("--limit must be at least 1", usage=USAGE)
    return touched


# --- shared with /svc trace -----------------------------------------------------------------------------

def loki_labels(catalog: Catalog) -> tuple[str, str]:
    """(namespace label, service label) from catalog.loki; UserError when Loki is not configured."""
    if catalog.loki is None:
        raise UserError("Loki is not configured in the catalog (add a `loki:` section with its url)")
    return catalog.loki.labels.namespace, catalog.loki.labels.service


def answer_deadline(invocation: Invocation) -> float:
    """When Loki calls must be done: a margin before the command's deadline, to still answer."""
    left = invocation.remaining()
    return time.monotonic() + left - min(1.0, left * 0.1)


def explore_link(catalog: Catalog, query: str, start_ns: int, end_ns: int) -> str:
    config = catalog.loki
    if config is None or not config.grafana_url:
        return ""
    return logql.explore_url(config.grafana_url, config.datasource_uid, query, start_ns, end_ns)


def log_line(timestamp_ns: int, line: str, labels: Mapping[str, str], service_label: str,
             patterns: Sequence[str]) -> LogLine:
    """One entry as shown: level, message and trace id from a JSON line; a line that is not JSON as it
    is. Secret-looking values are masked here, before the text goes anywhere."""
    service = labels.get(service_label, "")
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return LogLine(timestamp_ns, "", mask_text(line.rstrip(), patterns), service=service, parsed=False)
    level = logql.canonical_level(str(_first(record, ("level", "lvl", "severity")) or ""))
    message = str(_first(record, ("message", "msg")) or "")
    extras = [f"{key}={_field(key, value, patterns)}" for key, value in record.items()
              if key not in _COLUMN_FIELDS and not isinstance(value, dict | list)][:MAX_EXTRA_FIELDS]
    # One masking pass over the whole shown text (it is the costly part of a 5,000-line answer); values
    # under secret keys are already masked whole, since a pass over `key=a b` would mask only `a`.
    shown = mask_text(" ".join([message, *extras]), patterns).strip()
    trace = str(_first(record, ("trace_id", "traceId", "trace")) or "")
    return LogLine(timestamp_ns, level, shown, trace_id=trace, service=service)


def _first(record: Mapping[str, Any], keys: Iterable[str]) -> Any:
    return next((record[key] for key in keys if record.get(key) not in (None, "")), None)


def _field(key: str, value: Any, patterns: Sequence[str]) -> str:
    if is_secret_key(key, patterns):
        return MASK
    return value if isinstance(value, str) else json.dumps(value)


def level_series(series: Iterable[logql.Series], first_end_ns: int, step_seconds: int,
                 buckets: int) -> tuple[LevelSeries, ...]:
    """Matrix series by level -> counts per bucket, spellings of one level merged, most severe first."""
    counts: dict[str, list[int]] = {}
    step_ns = step_seconds * 1_000_000_000
    for item in series:
        level = logql.canonical_level(item.labels.get(logql.LEVEL_FIELD, "")) or "other"
        row = counts.setdefault(level, [0] * buckets)
        for seconds, value in item.points:
            index = round((round(seconds * 1e9) - first_end_ns) / step_ns)
            if 0 <= index < buckets:
                row[index] += int(value)
    order = {level: rank for rank, level in enumerate(reversed(logql.LEVELS))}
    ranked = sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    return tuple(LevelSeries(level, tuple(row)) for level, row in ranked if any(row))


# --- running --------------------------------------------------------------------------------------------

def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    catalog = invocation.catalog
    env = args.env or catalog.settings.default_env
    environment = catalog.environment(env)
    namespace_label, service_label = loki_labels(catalog)
    since_seconds = parse_since(args.since)
    notes: list[str] = []
    limit = logql.clamp_limit(args.limit)
    if limit != args.limit:
        notes.append(f"--limit {args.limit} is more than Loki returns in one query: using {limit}")
    search = logql.LogSearch(
        namespace_label=namespace_label, namespace=environment.namespace, service_label=service_label,
        services=(args.service,), grep=user_text(args.grep, "--grep"), trace_id=user_text(args.trace, "--trace"),
        level=args.level,
    )
    query = logql.log_query(search)
    step = logql.sparkline_step(since_seconds, SPARK_BUCKETS)
    buckets = -(-since_seconds // step)
    loki = invocation.backends.loki()
    deadline = answer_deadline(invocation)
    end_ns = time.time_ns()
    start_ns = end_ns - since_seconds * 1_000_000_000
    # Buckets end at `end`, counting back: bucket i covers (end - (buckets-i)*step, end - (buckets-1-i)*step].
    first_end_ns = end_ns - (buckets - 1) * step * 1_000_000_000
    answers: dict[str, Any] = gather({  # each a value or the BotError it raised
        "streams": lambda: loki.query_range(query, start_ns=start_ns, end_ns=end_ns, limit=limit,
                                           direction="backward", deadline=deadline),
        "matrix": lambda: loki.metric_range(logql.level_count_query(search, step), start_ns=first_end_ns,
                                            end_ns=end_ns, step_seconds=step, deadline=deadline),
    }, deadline, lane_of=loki.lane)
    streams, matrix = answers["streams"], answers["matrix"]
    if isinstance(streams, BotError):
        raise streams
    patterns = catalog.secrets.key_patterns
    entries = logql.merge_streams(streams, newest_first=True)
    lines = tuple(log_line(entry.timestamp_ns, entry.line, entry.labels, service_label, patterns)
                  for entry in entries)
    series: tuple[LevelSeries, ...] = ()
    problem = ""
    if isinstance(matrix, BotError):
        problem = matrix.message
    else:
        series = level_series(matrix, first_end_ns, step, buckets)
    lookup = LogLookup(
        env=env, namespace=environment.namespace, query=query, start_ns=start_ns, end_ns=end_ns,
        since=args.since.strip().lower(), limit=limit, level=args.level, grep=search.grep, trace_id=search.trace_id,
        explore_url=explore_link(catalog, query, start_ns, end_ns), notes=tuple(notes),
    )
    return LogsReply(
        service=args.service, lookup=lookup, lines=lines, limit_reached=len(entries) >= limit,
        series=series, bucket_seconds=step, first_bucket_end_ns=first_end_ns, series_problem=problem,
        public=True,
    )


COMMAND = Command(
    name="logs",
    summary="a service's recent log lines from Loki, newest first, with lines per level over time",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    examples=(
        "/svc logs orders staging --level error",
        "/svc logs payment --since 2h --grep \"charge declined\"",
        "/svc logs gateway prod --trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "/svc logs inventory prod --since 1h --limit 500",
    ),
)
