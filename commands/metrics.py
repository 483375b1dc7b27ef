"""/svc metrics <service> [env] [--since 1h]

Request rate, error percentage, p50/p99 latency, CPU against the limit, memory against the limit and
GOMEMLIMIT, goroutines (Prometheus, range queries built by bot/insight/promql.py), restarts of the current
pods (Kubernetes), and deploys inside the window (the store's history), all read at once. The answer carries
a PNG chart (uploaded in Slack, written to a file in the terminal) besides the numbers and sparklines.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bot.clients.lanes import gather
from bot.core.catalog import Catalog
from bot.core.errors import BotError, UsageError
from bot.dispatch.command import Command, CommandParser, Invocation, service_in_env
from bot.insight import kube_facts as rollout
from bot.insight import metrics
from bot.insight.logs import parse_since
from bot.replies.base import Reply
from bot.replies.metrics import DeployMark, MetricsReply

USAGE = "/svc metrics <service> [env] [--since 1h]"
MAX_SINCE = 7 * 86400  # a week at about 60 points is one point every ~3 hours: longer says nothing more
MIN_SINCE = 120


def build_parser() -> CommandParser:
    parser = CommandParser("metrics", USAGE)
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    parser.add_argument("--since", default="1h")
    return parser


def _since(text: str) -> int:
    seconds = parse_since(text, USAGE)
    if seconds > MAX_SINCE:
        raise UsageError(f"--since {text} is longer than 7d, the longest window /svc metrics charts", usage=USAGE)
    if seconds < MIN_SINCE:
        raise UsageError(f"--since {text} is shorter than 2m; rates need a few scrapes (try 15m or 1h)", usage=USAGE)
    return seconds


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    touched = service_in_env(args, catalog)
    _since(args.since)
    return touched


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    catalog = invocation.catalog
    env = args.env or catalog.settings.default_env
    since = _since(args.since)
    environment = catalog.environment(env)
    source = metrics.source_for(catalog, invocation.backends.prometheus, args.service, env)
    end = time.time()
    start = end - since
    step = metrics.range_step(since)
    window = metrics.rate_window(step)
    deadline = invocation.answer_deadline()
    kube = invocation.backends.kube(environment.cluster)
    namespace, deployment_name = environment.namespace, catalog.deployment_name(args.service)

    def workload() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        deployment = kube.read_deployment(namespace, deployment_name, deadline=deadline)
        pods = kube.list_pods(namespace, rollout.selector_string(deployment), deadline=deadline)
        return deployment, list(pods)

    calls: dict[object, Any] = dict(metrics.panel_calls(source, start=start, end=end, step=step, window=window,
                                                        deadline=deadline))
    calls["kube"] = workload
    answers = gather(calls, deadline, lane_of=lambda key: kube.lane if key == "kube" else source.client.lane)
    panels = metrics.panels_from(source, window, answers)
    notes: list[str] = []
    restarts: int | None = None
    found = answers["kube"]
    if isinstance(found, BotError):
        notes.append(f"limits and restarts not read: {found.message}")
    else:
        deployment, pods = found
        limits = metrics.container_limits(deployment, catalog.service(args.service).container)
        restarts = metrics.restarts(pods)
        panels = tuple(_with_limits(panel, limits) for panel in panels)
    if all(not panel.series for panel in panels) and all(
            not isinstance(answers[key], BotError) for key in answers if key != "kube"):
        notes.append(f"Prometheus has no series for {args.service} in {env} ({source.scope.namespace_label}="
                     f"{source.scope.namespace}, {source.scope.service_label}={args.service}): check the catalog's "
                     "prometheus labels and that the service is scraped")
    elif all(not panel.series for panel in panels):
        raise next(answer for key, answer in answers.items() if key != "kube" and isinstance(answer, BotError))
    return MetricsReply(service=args.service, env=env, since=args.since.strip().lower(), start=start, end=end,
                        panels=panels, restarts=restarts, deploys=_deploys(invocation, args.service, env, start, end),
                        notes=tuple(notes), prometheus=source.client.display, public=True)


def _with_limits(panel: metrics.Panel, limits: dict[str, float]) -> metrics.Panel:
    if panel.key == "cpu" and "cpu" in limits:
        return metrics.with_limits(panel, [("limit", limits["cpu"])])
    if panel.key == "memory":
        marks = [("limit", limits["memory"])] if "memory" in limits else []
        if "gomemlimit" in limits and not any(series.name == "GOMEMLIMIT" for series in panel.series):
            marks.append(("GOMEMLIMIT", limits["gomemlimit"]))
        return metrics.with_limits(panel, marks)
    return panel


def _deploys(invocation: Invocation, service: str, env: str, start: float, end: float) -> tuple[DeployMark, ...]:
    """Runs of this service in this environment that started inside the window (the store's history)."""
    try:
        store = invocation.deploys.store()
        requests = store.requests(service=service, env=env, limit=50)
        runs = store.runs_of([request.id for request in requests])
    except BotError:
        return ()
    marks = []
    for request in requests:
        record = runs.get(request.id)
        if record is None or not start <= record.started_at <= end:
            continue
        what = request.version if request.kind == "deploy" else f"{request.kind} {request.version}".strip()
        marks.append(DeployMark(at=record.started_at, label=f"{what} ({request.state.value.lower()})"))
    return tuple(sorted(marks, key=lambda mark: mark.at))


COMMAND = Command(
    name="metrics",
    summary="a service's request rate, errors, latency, CPU, memory and goroutines from Prometheus, with a chart",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    examples=(
        "/svc metrics payment prod",
        "/svc metrics orders staging --since 6h",
    ),
)
