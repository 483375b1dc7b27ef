"""/svc trace <trace-id> [env] [--since 1h]: what happened to one request, across every service.

One Loki query covers every service of the catalog in the environment (the service label matched
against an alternation of the catalog's names), so the answer costs the same for 3 services or 30.
The timeline reads oldest first, and the query asks for the oldest lines first too: when a trace has
more lines than fit, its beginning (where it usually went wrong) is what is kept.
"""

from __future__ import annotations

import argparse
import time

from bot.core.catalog import Catalog
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.insight import logql
from bot.insight.logs import explore_link, log_line, loki_labels, parse_since, trace_id
from bot.replies.base import Reply
from bot.replies.logs import LogLookup, TraceReply

USAGE = "/svc trace <trace-id> [env] [--since 1h]"
TRACE_LIMIT = 1000


def build_parser() -> CommandParser:
    parser = CommandParser("trace", USAGE)
    parser.add_argument("trace_id")
    parser.add_argument("env", nargs="?")
    parser.add_argument("--since", default="1h")
    return parser


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    env = args.env or catalog.settings.default_env
    catalog.environment(env)
    trace_id(args.trace_id, USAGE)
    parse_since(args.since, USAGE)
    return (env,)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    catalog = invocation.catalog
    env = args.env or catalog.settings.default_env
    environment = catalog.environment(env)
    namespace_label, service_label = loki_labels(catalog)
    wanted = trace_id(args.trace_id, USAGE)
    since_seconds = parse_since(args.since, USAGE)
    services = tuple(sorted(catalog.services))
    search = logql.LogSearch(namespace_label=namespace_label, namespace=environment.namespace,
                             service_label=service_label, services=services, trace_id=wanted)
    query = logql.log_query(search)
    loki = invocation.backends.loki()
    deadline = invocation.answer_deadline()
    end_ns = time.time_ns()
    start_ns = end_ns - since_seconds * 1_000_000_000
    streams = loki.query_range(query, start_ns=start_ns, end_ns=end_ns, limit=TRACE_LIMIT,
                               direction="forward", deadline=deadline)
    patterns = catalog.secrets.key_patterns
    entries = logql.merge_streams(streams, newest_first=False)
    lines = tuple(log_line(entry.timestamp_ns, entry.line, entry.labels, service_label, patterns)
                  for entry in entries)
    lookup = LogLookup(
        env=env, namespace=environment.namespace, query=query, start_ns=start_ns, end_ns=end_ns,
        since=args.since.strip().lower(), limit=TRACE_LIMIT, trace_id=wanted,
        explore_url=explore_link(catalog, query, start_ns, end_ns),
    )
    return TraceReply(trace_id=wanted, services=services, lookup=lookup, lines=lines,
                      limit_reached=len(entries) >= TRACE_LIMIT, public=True)


COMMAND = Command(
    name="trace",
    summary="one request's log lines across every service, as a timeline",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    examples=(
        "/svc trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "/svc trace 0af7651916cd43dd8448eb211c80319c staging --since 2h",
    ),
)
