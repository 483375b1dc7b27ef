"""/svc status <service|all> [env]: one glance at a service, or at every service.

- `status payment`: every environment, compact (replicas, image, rollout state, lock, alerts).
- `status payment prod`: one environment in detail (pods, rollout by kubectl's rules, events, HPA).
- `status all [env]`: one row per catalog service, problems first. Each kind is listed once per
  namespace and grouped here, so the number of API requests does not grow with the number of services.

Environments (and so clusters) are asked in parallel under one deadline, a little before the command's
own, so a cluster that does not answer is shown as unreachable while the others still answer.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from bot.clients.lanes import Fanout, bind, gather
from bot.core.catalog import Catalog
from bot.core.errors import BackendError, BotError, DeadlineExceeded, NotFound
from bot.core.tone import Tone
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.insight import metrics
from bot.insight.kube_facts import (
    deploy_lock,
    diagnose_pod,
    hpa_for,
    image_tag,
    last_rollout_time,
    lease_name,
    leases_by_name,
    new_replicaset,
    owned_replicasets,
    pod_alerts,
    pods_of,
    recent_warnings,
    revision,
    rollout_state,
    selector_string,
    template_image,
)
from bot.replies.base import Outcome, Reply
from bot.replies.status import TONE_ORDER, EnvStatus, ServiceRow, StatusAllReply, StatusReply

if TYPE_CHECKING:
    from bot.clients.kube import KubeClient

USAGE = "/svc status <service|all> [env]"
JSON = Mapping[str, Any]
K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
EVENT_LIMIT = 5


# --- parsing and policy ---------------------------------------------------------------------------------

def build_parser() -> CommandParser:
    parser = CommandParser("status", USAGE)
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    return parser


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    if args.service != "all":
        catalog.service(args.service)
    if args.env:
        catalog.environment(args.env)
        return (args.env,)
    return tuple(catalog.environments)


# --- calls under one deadline (they run in parallel on the clusters' lanes, bot/clients/lanes.py) --------------



# --- one service in one environment (pure: from the API's JSON to an EnvStatus) -------------------------

def env_status(
    *,
    env: str,
    namespace: str,
    cluster: str,
    service: str,
    deployment: JSON,
    replicasets: Sequence[JSON],
    pods: Sequence[JSON],
    container: str,
    now: float,
    lease: JSON | None = None,
    events: Sequence[JSON] | None = None,
    hpas: Sequence[JSON] | None = None,
    detailed: bool = False,
) -> EnvStatus:
    """Facts about one deployment from namespace-wide (or selector) lists; ownership picks its objects."""
    name = str(deployment.get("metadata", {}).get("name", ""))
    owned = owned_replicasets(deployment, replicasets)
    own_pods = pods_of(owned, pods)
    diagnoses = [diagnose_pod(pod, container) for pod in own_pods]
    state = rollout_state(deployment)
    current = new_replicaset(deployment, owned)
    image = image_tag(template_image(deployment, container))
    old_images = tuple(dict.fromkeys(
        tag for rs in owned if rs is not current and int(rs.get("status", {}).get("replicas") or 0) > 0
        and (tag := image_tag(template_image(rs, container))) != image
    ))
    ready = int(deployment.get("status", {}).get("readyReplicas") or 0)
    # While old pods still run, the deployment's ready count mixes versions: say how many new ones are ready.
    new_ready = (int((current or {}).get("status", {}).get("readyReplicas") or 0) if old_images else None)
    alerts = pod_alerts(diagnoses, now, state.desired)
    if state.failed:
        alerts.insert(0, f"rollout failed: {state.message}")
    hpa = hpa_for(name, hpas) if hpas is not None else None
    if hpa is not None and hpa.at_max and hpa.max_replicas:
        alerts.append(f"autoscaler at its maximum ({hpa.max_replicas} replicas)")
    objects = {("Deployment", name)} | {("ReplicaSet", str(rs["metadata"]["name"])) for rs in owned} | {
        ("Pod", pod.name) for pod in diagnoses}
    warnings = recent_warnings(events, objects, EVENT_LIMIT) if events is not None else []
    return EnvStatus(
        env=env, namespace=namespace, cluster=cluster, deployment=name,
        tone=_tone(state.phase, ready, state.desired, diagnoses, alerts),
        ready=ready, desired=state.desired, image=image, old_images=old_images, new_ready=new_ready,
        revision=revision(deployment), rollout=state, last_rollout=last_rollout_time(deployment, owned),
        lock=deploy_lock(lease, now), alerts=tuple(alerts),
        pods=tuple(diagnoses) if detailed else (), events=tuple(warnings), hpa=hpa,
    )


def _tone(phase: str, ready: int, desired: int, pods: Sequence[Any], alerts: Sequence[str]) -> Tone:
    if phase == "failed" or (desired > 0 and ready == 0):
        return Tone.BAD
    if any(pod.stuck or pod.oom_killed for pod in pods):
        return Tone.BAD
    if desired == 0 and not alerts:
        return Tone.INFO
    if alerts or phase != "complete" or ready < desired:
        return Tone.WARN
    return Tone.OK


def problem_status(env: str, namespace: str, cluster: str, deployment: str, error: BotError) -> EnvStatus:
    """An environment we could not read: unreachable (backend) or the deployment is missing."""
    return EnvStatus(env=env, namespace=namespace, cluster=cluster, deployment=deployment,
                     tone=Tone.UNKNOWN, problem=error.message, unreachable=isinstance(error, BackendError))


# --- status <service> [env] -----------------------------------------------------------------------------

def _service_status(args: argparse.Namespace, invocation: Invocation) -> StatusReply:
    catalog = invocation.catalog
    service = catalog.service(args.service)
    deployment_name = catalog.deployment_name(args.service)
    env_names = [args.env] if args.env else list(catalog.environments)
    detailed = bool(args.env)
    started = time.monotonic()
    deadline = invocation.answer_deadline()
    lock_name = lease_name(args.service)
    traffic = _traffic_fanout(invocation, env_names, [args.service], deadline)

    fetched_by_env = _fetch_environments(invocation, env_names, deployment_name=deployment_name,
                                         lock_name=lock_name, detailed=detailed, deadline=deadline)
    for env, fetched in fetched_by_env.items():
        # A stall ends as DeadlineExceeded: say which cluster and how long.
        stalled = DeadlineExceeded(f"cluster {catalog.environment(env).cluster} did not answer within "
                                   f"{max(0.0, deadline - started):.0f}s")
        fetched_by_env[env] = {kind: stalled if isinstance(value, DeadlineExceeded) else value
                               for kind, value in fetched.items()}

    now = time.time()
    statuses = []
    for env in env_names:
        environment = catalog.environment(env)
        fetched = fetched_by_env[env]
        # The deployment's own error first (it says the most), whatever order the answers came in.
        error = next((value for kind in ("deployment", "replicasets", "pods")
                      if isinstance(value := fetched.get(kind), BotError)), None)
        if error is not None:
            if detailed and isinstance(error, NotFound):
                raise error
            statuses.append(problem_status(env, environment.namespace, environment.cluster, deployment_name,
                                           error))
            continue
        optional: dict[str, Any] = {kind: (None if isinstance(value, BotError) else value)
                                    for kind, value in fetched.items()}
        statuses.append(env_status(
            env=env, namespace=environment.namespace, cluster=environment.cluster, service=args.service,
            deployment=optional["deployment"], replicasets=optional["replicasets"], pods=optional["pods"],
            container=service.container, now=now, lease=optional.get("lease"),
            events=optional.get("events") if detailed else None,
            hpas=optional.get("hpas") if detailed else None, detailed=detailed,
        ))
    numbers, _queries = _traffic_results(traffic)
    statuses = [_with_traffic(status, numbers, args.service) for status in statuses]
    everything_failed = all(status.unreachable for status in statuses)
    return StatusReply(service=args.service, envs=tuple(statuses), detailed=detailed, now=now,
                       public=not everything_failed,
                       outcome=Outcome.INTERNAL_ERROR if everything_failed else Outcome.OK)


_SELECTORS: dict[tuple[str, str, str], str | None] = {}  # (cluster, namespace, deployment) -> selector
_SELECTORS_LOCK = threading.Lock()
_SELECTORS_LIMIT = 10_000


def _fetch_environments(invocation: Invocation, env_names: Sequence[str], *, deployment_name: str,
                        lock_name: str, detailed: bool, deadline: float) -> dict[str, dict[str, Any]]:
    """Everything `status` reads about one deployment in each environment: env -> kind -> JSON or BotError.

    Every request goes out at once, on its cluster's lane, under one deadline, so a stalled cluster holds
    only its own environments: the deployment and the deploy lock (and, for the detail, the namespace's
    warnings and autoscalers), and the replica sets and pods by the deployment's selector in the same round
    when it is known from an earlier answer (apps/v1 selectors are immutable), else as soon as that
    environment's deployment arrives.
    """
    catalog = invocation.catalog
    fetched: dict[str, dict[str, Any]] = {env: {} for env in env_names}
    fanout: Fanout[tuple[str, str, str | None]] = Fanout(deadline)  # (env, kind, selector for the lists)
    clients: dict[str, KubeClient] = {}
    asked: dict[str, str | None] = {}  # env -> the selector whose replica sets and pods count

    def by_selector(env: str, selector: str | None) -> None:
        kube, namespace = clients[env], catalog.environment(env).namespace
        asked[env] = selector
        fanout.submit(kube.lane, (env, "replicasets", selector),
                      bind(kube.list_replicasets, namespace, selector, deadline=deadline))
        fanout.submit(kube.lane, (env, "pods", selector), bind(kube.list_pods, namespace, selector, deadline=deadline))

    for env in env_names:
        environment = catalog.environment(env)
        try:
            kube = clients[env] = invocation.backends.kube(environment.cluster)
        except BotError as exc:
            fetched[env]["deployment"] = exc
            continue
        namespace = environment.namespace
        first: dict[str, Callable[[], Any]] = {
            "deployment": bind(kube.read_deployment, namespace, deployment_name, deadline=deadline),
            "lease": _optional(bind(kube.read_lease, namespace, lock_name, deadline=deadline)),
        }
        if detailed:
            first["events"] = bind(kube.list_events, namespace, "type=Warning", deadline=deadline)
            first["hpas"] = bind(kube.list_hpas, namespace, deadline=deadline)
        for kind, call in first.items():
            fanout.submit(kube.lane, (env, kind, None), call)
        known = _known_selector(environment.cluster, namespace, deployment_name)
        if known is not None:
            by_selector(env, known)

    for (env, kind, selector), result in fanout:
        if kind in ("replicasets", "pods") and selector != asked[env]:
            continue  # asked by a selector the deployment no longer has
        fetched[env][kind] = result
        if kind != "deployment" or isinstance(result, BotError):
            continue
        environment = catalog.environment(env)
        current = selector_string(result)
        _remember_selector(environment.cluster, environment.namespace, deployment_name, current)
        if env not in asked or asked[env] != current:  # not asked yet, or the deployment was re-created
            by_selector(env, current)
    return fetched


def _known_selector(cluster: str, namespace: str, deployment: str) -> str | None:
    with _SELECTORS_LOCK:
        return _SELECTORS.get((cluster, namespace, deployment))


def _remember_selector(cluster: str, namespace: str, deployment: str, selector: str | None) -> None:
    """Store the deployment's selector for the next look (callers compare with what *they* knew)."""
    key = (cluster, namespace, deployment)
    with _SELECTORS_LOCK:
        if len(_SELECTORS) >= _SELECTORS_LIMIT:
            _SELECTORS.clear()
        if selector is not None:
            _SELECTORS[key] = selector
        else:
            _SELECTORS.pop(key, None)


def _optional(call: Callable[[], T]) -> Callable[[], T | None]:
    """A read whose NotFound means 'there is none' (the deploy lock Lease)."""

    def run() -> T | None:
        try:
            return call()
        except NotFound:
            return None

    return run


# --- traffic numbers from Prometheus (one query per environment, bot/insight/metrics.py) ---------------

TRAFFIC_BUDGET = 3.0  # seconds status waits for Prometheus' numbers at most: they must not hold the answer


def _traffic_fanout(invocation: Invocation, env_names: Sequence[str], services: Sequence[str],
                    deadline: float) -> Fanout[str]:
    """Every environment's numbers asked at once (environments without a Prometheus are left out)."""
    deadline = min(deadline, time.monotonic() + TRAFFIC_BUDGET)
    fanout: Fanout[str] = Fanout(deadline)
    for env in env_names:
        try:
            found = metrics.traffic_call(invocation.catalog, invocation.backends.prometheus, env, services, deadline)
        except BotError as exc:
            fanout.submit("prometheus", env, _raise(exc))
            continue
        if found is not None:
            fanout.submit(found[0], env, found[1])
    return fanout


def _raise(error: BotError) -> Callable[[], Any]:
    def run() -> Any:
        raise error
    return run


def _traffic_results(fanout: Fanout[str]) -> tuple[dict[str, dict[str, metrics.Numbers] | BotError], int]:
    """env -> service -> numbers (or why not), and the number of queries sent."""
    results = dict(fanout)
    return results, len(results)


def _with_traffic(status: EnvStatus, numbers: Mapping[str, dict[str, metrics.Numbers] | BotError],
                  service: str) -> EnvStatus:
    found = numbers.get(status.env)
    if found is None or status.problem:
        return status
    if isinstance(found, BotError):
        return dataclasses.replace(status, traffic_problem=found.message)
    if service not in found:
        return dataclasses.replace(status, traffic_problem="no request metrics for it in Prometheus")
    return dataclasses.replace(status, traffic=found[service])


# --- status all [env] -----------------------------------------------------------------------------------

NAMESPACE_KINDS = ("deployments", "replicasets", "pods", "leases")


def _all_status(args: argparse.Namespace, invocation: Invocation) -> StatusAllReply:
    catalog = invocation.catalog
    env_names = [args.env] if args.env else list(catalog.environments)
    deadline = invocation.answer_deadline()
    clients = {}
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    broken: dict[str, BotError] = {}
    for env in env_names:
        environment = catalog.environment(env)
        try:
            kube = clients[env] = invocation.backends.kube(environment.cluster)
        except BotError as exc:
            broken[env] = exc
            continue
        ns = environment.namespace
        calls[(env, "deployments")] = bind(kube.list_deployments, ns, deadline=deadline)
        calls[(env, "replicasets")] = bind(kube.list_replicasets, ns, deadline=deadline)
        calls[(env, "pods")] = bind(kube.list_pods, ns, deadline=deadline)
        calls[(env, "leases")] = bind(kube.list_leases, ns, deadline=deadline)
    traffic = _traffic_fanout(invocation, env_names, list(catalog.services), deadline)
    before = sum(client.request_count for client in set(clients.values()))
    results = gather(calls, deadline, lane_of=lambda key: clients[key[0]].lane)
    requests = sum(client.request_count for client in set(clients.values())) - before

    numbers, queries = _traffic_results(traffic)
    now = time.time()
    lists: dict[str, dict[str, Any]] = {}
    for env in env_names:
        if env in broken:
            continue
        fetched = {kind: results[(env, kind)] for kind in NAMESPACE_KINDS}
        error = next((value for kind, value in fetched.items() if isinstance(value, BotError)
                      and kind != "leases"), None)
        if error is not None:
            broken[env] = error
        else:
            lists[env] = fetched

    rows = []
    for name, service in catalog.services.items():
        deployment_name = catalog.deployment_name(name)
        cells = []
        for env in env_names:
            environment = catalog.environment(env)
            if env in broken:
                cells.append(problem_status(env, environment.namespace, environment.cluster, deployment_name,
                                            broken[env]))
                continue
            fetched = lists[env]
            deployment = next((item for item in fetched["deployments"]
                               if item.get("metadata", {}).get("name") == deployment_name), None)
            if deployment is None:
                cells.append(EnvStatus(env=env, namespace=environment.namespace, cluster=environment.cluster,
                                       deployment=deployment_name, tone=Tone.INFO, problem="not deployed"))
                continue
            leases = fetched["leases"] if not isinstance(fetched["leases"], BotError) else []
            cells.append(env_status(
                env=env, namespace=environment.namespace, cluster=environment.cluster, service=name,
                deployment=deployment, replicasets=fetched["replicasets"], pods=fetched["pods"],
                container=service.container, now=now,
                lease=leases_by_name(leases).get(lease_name(name)),
            ))
        rows.append(ServiceRow(service=name, cells=tuple(
            cell if isinstance(numbers.get(cell.env), BotError) else _with_traffic(cell, numbers, name)
            for cell in cells)))
    rows.sort(key=lambda row: (TONE_ORDER.index(row.tone), row.service))
    unreachable = tuple((env, broken[env].message) for env in env_names if env in broken)
    everything_failed = len(unreachable) == len(env_names)
    return StatusAllReply(envs=tuple(env_names), rows=tuple(rows), unreachable=unreachable, now=now,
                          api_requests=requests, public=not everything_failed, prometheus_queries=queries,
                          traffic_problems=tuple((env, error.message) for env, error in numbers.items()
                                                 if isinstance(error, BotError) and env not in broken),
                          outcome=Outcome.INTERNAL_ERROR if everything_failed else Outcome.OK)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    if args.service == "all":
        return _all_status(args, invocation)
    return _service_status(args, invocation)


COMMAND = Command(
    name="status",
    summary="one glance at a service in every environment, or at every service",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    examples=("/svc status payment", "/svc status payment prod", "/svc status all prod"),
)
