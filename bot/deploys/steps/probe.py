"""`probe`: the new pods answer their readiness endpoint, asked through the API server's pod proxy.

Kubernetes already gates availability on the readiness probe; this step asks again, from outside the
kubelet, so a deploy only succeeds when every new pod answers (200 <= status < 400, the kubelet's rule).
"""

from __future__ import annotations

import time

from bot.core.errors import BackendError
from bot.deploys.steps.base import (
    TRANSIENT,
    Args,
    Retrying,
    StepContext,
    StepFailed,
    Workload,
    duration_text,
    seconds,
)
from bot.deploys.steps.cluster import call_deadline, read_revision
from bot.insight import kube_facts as rollout

DEFAULT_TIMEOUT = 60.0


def execute(args: Args, ctx: StepContext) -> str:
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    path = str(args.get("path") or ctx.workload.readiness_path)
    port = int(args.get("port") or ctx.workload.port)
    deadline = time.monotonic() + timeout
    kube = ctx.kube()
    problems: list[str] = []
    retrying = Retrying(ctx, deadline)
    while True:
        try:
            revision = read_revision(ctx, deadline)
        except TRANSIENT as exc:
            retrying.failed(exc, "reading the new pods")
            continue
        pods = [pod for pod in revision.pods if not (pod.get("metadata") or {}).get("deletionTimestamp")]
        problems = []
        passing: BackendError | None = None  # an error that can pass, asking one of the pods
        for pod in pods:
            name = rollout.diagnose_pod(pod).name
            try:
                answer = kube.pod_http_get(ctx.workload.namespace, name, port, path, deadline=call_deadline(deadline))
            except TRANSIENT as exc:
                passing = passing or exc
                problems.append(f"{name}: {exc.message}")
                continue
            if not answer.ok:
                said = f"HTTP {answer.status}" if answer.status is not None else answer.error or "no answer"
                body = answer.body.decode("utf-8", errors="replace").strip()[:200]
                problems.append(f"{name}: {said}{' ' + body if body else ''}")
        if passing is not None:
            for problem in problems:
                ctx.output.add(problem)
            retrying.failed(passing, f"asking the new pods' {path}")
            continue
        if pods and not problems:
            ctx.output.add(f"{len(pods)} new pod(s) answered {path} on port {port}")
            return f"{len(pods)} new pod(s) ready on {path}"
        if not pods:
            problems = ["no pods of the new revision yet"]
        for problem in problems:
            ctx.output.add(problem)
        if time.monotonic() >= deadline:
            raise StepFailed(f"{path} not answering on every new pod after {duration_text(timeout)}: "
                             + "; ".join(problems[:3]))
        ctx.sleep(ctx.poll, deadline)


def describe(args: Args, workload: Workload) -> str:
    path = args.get("path") or workload.readiness_path
    port = args.get("port") or workload.port
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    return f"probe GET {path} on port {port} of every new pod (timeout {duration_text(timeout)})"
