"""/svc logs <service> [env] [--since 15m] [--level L] [--grep TEXT] [--trace ID] [--limit N]

Two Loki queries run side by side: the lines (newest first, at most --limit) and the lines per level
over the range (one metric query; every filter but --level, so the sparkline shows when the trouble
started among all levels). The lines are what the user came for: if the count fails, the answer says
why and still shows them. User text reaches LogQL only through bot.insight.logql's string literals.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, TypeVar

from bot.clients.lanes import gather
from bot.core.catalog import Catalog
from bot.core.errors import BotError, UsageError
from bot.dispatch.command import Command, CommandParser, Invocation, service_in_env
from bot.insight import logql
from bot.insight.logs import (
    LevelSeries,
    explore_link,
    level_series,
    log_line,
    loki_labels,
    parse_since,
    trace_id,
    user_text,
)
from bot.replies.base import Reply
from bot.replies.logs import LogLookup, LogsReply

USAGE = "/svc logs <service> [env] [--since 15m] [--level L] [--grep TEXT] [--trace ID] [--limit N]"
SPARK_BUCKETS = 30
T = TypeVar("T")


# --- arguments ------------------------------------------------------------------------------------------



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
    parse_since(args.since, USAGE)
    user_text(args.grep, "--grep", USAGE)
    if args.trace is not None:
        trace_id(args.trace, USAGE)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1", usage=USAGE)
    return touched


# --- shared with /svc trace -----------------------------------------------------------------------------









# --- running --------------------------------------------------------------------------------------------

def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    catalog = invocation.catalog
    env = args.env or catalog.settings.default_env
    environment = catalog.environment(env)
    namespace_label, service_label = loki_labels(catalog)
    since_seconds = parse_since(args.since, USAGE)
    notes: list[str] = []
    limit = logql.clamp_limit(args.limit)
    if limit != args.limit:
        notes.append(f"--limit {args.limit} is more than Loki returns in one query: using {limit}")
    search = logql.LogSearch(
        namespace_label=namespace_label, namespace=environment.namespace, service_label=service_label,
        services=(args.service,), grep=user_text(args.grep, "--grep", USAGE),
        trace_id=trace_id(args.trace, USAGE) if args.trace is not None else None,
        level=args.level,
    )
    query = logql.log_query(search)
    step = logql.sparkline_step(since_seconds, SPARK_BUCKETS)
    buckets = -(-since_seconds // step)
    loki = invocation.backends.loki()
    deadline = invocation.answer_deadline()
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
