"""/svc probe <service> [env]: the truth about a service's health probes.

For each pod, GET the catalog's liveness and readiness paths through the API server's pod proxy (no
network path to pods needed), with status, latency, a body excerpt and the dependency checks a /readyz
body lists. Beside that: the probe configuration of the pod template, the latest Unhealthy events, and
checks that flag probe and Go-runtime misconfigurations. A verdict on top: healthy / degraded / down.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.clients.lanes import bind, gather, unwrap
from bot.core.errors import BotError
from bot.dispatch.command import Command, CommandParser, Invocation, service_in_env
from bot.insight.kube_facts import (
    container_named,
    diagnose_pod,
    owned_replicasets,
    pods_of,
    recent_warnings,
    selector_string,
)
from bot.insight.probes import (
    Finding,
    ProbeSpec,
    container_probes,
    dependency_checks,
    excerpt,
    go_runtime_findings,
    looks_like_go,
    probe_findings,
    startup_seconds,
    verdict,
)
from bot.replies.base import Reply
from bot.replies.probe import HttpCheck, PodProbe, ProbeReply

USAGE = "/svc probe <service> [env]"
JSON = Mapping[str, Any]
MAX_PODS = 10  # pods asked; a larger deployment is sampled (the reply says how many exist)
EVENT_LIMIT = 5


def build_parser() -> CommandParser:
    parser = CommandParser("probe", USAGE)
    parser.add_argument("service")
    parser.add_argument("env", nargs="?")
    return parser


def _http_check(kind: str, response: Any, secret_keys: Sequence[str]) -> HttpCheck:
    """From bot.clients.kube's PodHttpResponse to the reply's facts (body cut and masked)."""
    return HttpCheck(
        kind=kind, path=response.path, port=response.port, status=response.status, latency=response.latency,
        excerpt=excerpt(response.body, secret_keys=secret_keys), error=response.error,
        dependencies=tuple(dependency_checks(response.body)) if response.body else (),
    )


def _failure_words(check: HttpCheck) -> str:
    """'readiness 503 (database: connection refused)' for the verdict line."""
    if check.status is None:
        return f"{check.kind} no answer ({check.error})" if check.error else f"{check.kind} no answer"
    failed = check.failed_dependencies
    detail = "; ".join(f"{dep.name}: {dep.detail}" if dep.detail else f"{dep.name} failing" for dep in failed)
    return f"{check.kind} {check.status}" + (f" ({detail})" if detail else "")


def _pod_failure_words(pod: str, status: str, checks: Sequence[HttpCheck]) -> str:
    """What failed on one pod, said once: 'pod x CrashLoopBackOff: no answer' or 'readiness 503 (...)'."""
    failing = [check for check in checks if not check.ok]
    if not failing:
        return ""
    if all(check.status is None for check in failing) and len(failing) == len(checks):
        if status != "Running":
            return f"{pod} {status}: no answer"
        errors = list(dict.fromkeys(check.error for check in failing if check.error))
        return "no answer" + (f" ({errors[0]})" if errors else "")
    return "; ".join(_failure_words(check) for check in failing)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    catalog = invocation.catalog
    service = catalog.service(args.service)
    env = args.env or catalog.settings.default_env
    environment = catalog.environment(env)
    namespace = environment.namespace
    deployment_name = catalog.deployment_name(args.service)
    kube = invocation.backends.kube(environment.cluster)
    deadline = invocation.answer_deadline()
    secret_keys = catalog.secrets.key_patterns

    deployment = kube.read_deployment(namespace, deployment_name, deadline=deadline)
    selector = selector_string(deployment)
    lists = gather({
        "replicasets": lambda: kube.list_replicasets(namespace, selector, deadline=deadline),
        "pods": lambda: kube.list_pods(namespace, selector, deadline=deadline),
        "events": lambda: kube.list_events(namespace, "reason=Unhealthy", deadline=deadline),
    }, deadline, lane_of=kube.lane)
    replicasets = unwrap(lists["replicasets"])
    pods = pods_of(owned_replicasets(deployment, replicasets), unwrap(lists["pods"]))
    events = [] if isinstance(lists["events"], BotError) else lists["events"]

    health = service.health
    paths = {"liveness": health.liveness, "readiness": health.readiness}
    asked = [pod for pod in pods if diagnose_pod(pod, service.container).phase == "Running"][:MAX_PODS]
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    for pod in asked:
        name = str(pod["metadata"]["name"])
        for kind, path in paths.items():
            calls[(name, kind)] = bind(kube.pod_http_get, namespace, name, health.port, path, deadline=deadline)
    answers = gather(calls, deadline, lane_of=kube.lane)

    pod_results = []
    verdict_rows = []
    latency: dict[str, float] = {}
    liveness_dependencies = []
    for pod in pods:
        diagnosis = diagnose_pod(pod, service.container)
        if pod not in asked:
            pod_results.append(PodProbe(pod=diagnosis.name, status=diagnosis.describe_status(),
                                        ready=diagnosis.ready, restarts=diagnosis.restarts, checks=(),
                                        skipped="not running" if diagnosis.phase != "Running" else "not sampled"))
            if diagnosis.phase != "Running":
                verdict_rows.append((diagnosis.name, False, False, f"pod {diagnosis.describe_status()}"))
            continue
        checks = []
        for kind, path in paths.items():
            answer = answers[(diagnosis.name, kind)]
            if isinstance(answer, BotError):
                checks.append(HttpCheck(kind=kind, path=path, port=health.port, status=None, latency=0.0,
                                        error=answer.message))
                continue
            check = _http_check(kind, answer, secret_keys)
            checks.append(check)
            if check.status is not None:
                latency[kind] = max(latency.get(kind, 0.0), check.latency)
            if kind == "liveness" and check.dependencies:
                liveness_dependencies = list(check.dependencies)
        by_kind = {check.kind: check for check in checks}
        verdict_rows.append((diagnosis.name, by_kind["liveness"].ok, by_kind["readiness"].ok,
                             _pod_failure_words(diagnosis.name, diagnosis.describe_status(), checks)))
        pod_results.append(PodProbe(pod=diagnosis.name, status=diagnosis.describe_status(), ready=diagnosis.ready,
                                    restarts=diagnosis.restarts, checks=tuple(checks)))

    template_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    container = container_named(template_spec, service.container)
    probes = container_probes(container)
    # Latency observed on the path a probe really uses (the catalog's path of the same kind otherwise).
    observed = {kind: latency[kind if kind in latency else "readiness"] for kind, spec in probes.items()
                if spec.handler == "http" and (kind in latency or "readiness" in latency)}
    startup = [value for pod in pods if (value := startup_seconds(pod, service.container)) is not None]
    findings: list[Finding] = probe_findings(
        probes, latency=observed, liveness_checks=liveness_dependencies,
        startup_seconds=max(startup) if startup else None,
    )
    if looks_like_go(container):
        findings.extend(go_runtime_findings(container))
    pod_names = {("Pod", str(pod["metadata"]["name"])) for pod in pods}
    unhealthy = recent_warnings((event for event in events if event.get("reason") == "Unhealthy"), pod_names,
                                EVENT_LIMIT)
    return ProbeReply(
        service=args.service, env=env, namespace=namespace, deployment=deployment_name,
        container=str(container.get("name") or service.container),
        verdict=verdict(verdict_rows, len(pods)), pods=tuple(pod_results),
        probes=tuple(_ordered(probes)), findings=tuple(findings), events=tuple(unhealthy), now=time.time(),
        pods_total=len(pods), public=True,
    )


def _ordered(probes: Mapping[str, ProbeSpec]) -> list[ProbeSpec]:
    return [probes[kind] for kind in ("startup", "liveness", "readiness") if kind in probes]


COMMAND = Command(
    name="probe",
    summary="ask each pod's health endpoints, check the probe and Go runtime settings",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=service_in_env,
    examples=("/svc probe payment", "/svc probe orders staging"),
)
