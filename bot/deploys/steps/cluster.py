"""Reads the Kubernetes step kinds share: the deployment, its newest ReplicaSet and that ReplicaSet's pods."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bot.deploys.steps.base import StepContext
from bot.insight import kube_facts as rollout

READ_TIMEOUT = 15.0  # seconds for one read while a step waits (the step's own timeout bounds the whole)

JSON = dict[str, Any]


def call_deadline(step_deadline: float | None = None) -> float:
    """A single call's deadline: a few seconds, never past the step's own."""
    limit = time.monotonic() + READ_TIMEOUT
    return limit if step_deadline is None else max(min(limit, step_deadline), time.monotonic() + 1.0)


@dataclass(frozen=True)
class Revision:
    deployment: JSON
    replicasets: list[JSON]  # the deployment's own, newest revision first
    current: JSON | None  # the ReplicaSet of the deployment's current revision
    pods: list[JSON]  # pods of `current`


def read_revision(ctx: StepContext, deadline: float | None = None, *, with_pods: bool = True) -> Revision:
    kube = ctx.kube()
    workload = ctx.workload
    deployment = kube.read_deployment(workload.namespace, workload.deployment, deadline=call_deadline(deadline))
    selector = rollout.selector_string(deployment)
    replicasets = rollout.owned_replicasets(
        deployment, kube.list_replicasets(workload.namespace, selector, deadline=call_deadline(deadline)))
    current = rollout.new_replicaset(deployment, replicasets)
    pods: list[JSON] = []
    if with_pods and current is not None:
        pods = [dict(pod) for pod in rollout.pods_of(
            [current], kube.list_pods(workload.namespace, selector, deadline=call_deadline(deadline)))]
    return Revision(deployment=deployment, replicasets=[dict(rs) for rs in replicasets],
                    current=dict(current) if current is not None else None,
                    pods=pods)


def generation(obj: JSON) -> int:
    value = (obj.get("metadata") or {}).get("generation")
    return value if isinstance(value, int) else 0


def container_names(deployment: JSON) -> list[str]:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [str(item.get("name")) for item in spec.get("containers") or [] if isinstance(item, dict)]
