"""`set_image`: `kubectl set image` on the service's deployment, remembering what it replaced.

The revision and image before the change are recorded in the run's facts, so `on_failure: rollback`
knows which ReplicaSet to restore.
"""

from __future__ import annotations

import time

from bot.deploys.steps.base import Args, StepCancelled, StepContext, StepFailed, Workload
from bot.deploys.steps.cluster import call_deadline, container_names, generation
from bot.insight import kube_facts as rollout


def execute(args: Args, ctx: StepContext) -> str:
    if ctx.cancelled():
        raise StepCancelled
    workload = ctx.workload
    container = str(args.get("container") or workload.container)
    image = str(args["image"])
    kube = ctx.kube()
    deployment = kube.read_deployment(workload.namespace, workload.deployment, deadline=call_deadline())
    names = container_names(deployment)
    if container not in names:
        raise StepFailed(f"deployment {workload.deployment} has no container {container!r} "
                         f"(containers: {', '.join(names) or 'none'})")
    current = rollout.template_image(deployment, container)
    if not ctx.facts.changed:
        ctx.facts.from_image = current
        ctx.facts.from_revision = rollout.revision(deployment) or None
    ctx.facts.to_image = image
    if current == image:
        ctx.output.add(f"{container} already runs {image}; nothing to change")
        return f"already at {image}"
    patched = kube.set_image(workload.namespace, workload.deployment, container, image, deadline=call_deadline())
    ctx.facts.changed = True
    ctx.facts.changed_at = time.time()
    ctx.facts.patched_generation = generation(patched)
    return f"{container}: {current} -> {image}"


def describe(args: Args, workload: Workload) -> str:
    container = args.get("container") or workload.container
    return f"kubectl set image deployment/{workload.deployment} {container}={args['image']} -n {workload.namespace}"
