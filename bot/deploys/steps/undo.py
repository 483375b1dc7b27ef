"""`undo`: `kubectl rollout undo`, restoring an earlier ReplicaSet's pod template (a JSON patch of /spec/template).

Not a catalog step kind: the engine uses it for `on_failure: rollback` (back to the revision the run
replaced) and `/svc rollback` plans it (`revision` 0 means the previous revision, as kubectl picks it).
"""

from __future__ import annotations

import copy
from typing import Any

from bot.deploys.steps.base import Args, StepCancelled, StepContext, StepFailed, Workload
from bot.deploys.steps.cluster import call_deadline, generation, read_revision
from bot.insight import kube_facts as rollout

HASH_LABEL = "pod-template-hash"


def _template(replicaset: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy((replicaset.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return template


def execute(args: Args, ctx: StepContext) -> str:
    if ctx.cancelled() and not args.get("on_failure"):
        raise StepCancelled
    wanted = int(args.get("revision") or 0)
    workload = ctx.workload
    revision = read_revision(ctx, with_pods=False)
    deployment = revision.deployment
    if (deployment.get("spec") or {}).get("paused"):
        raise StepFailed(f"deployment {workload.deployment} is paused; resume it before rolling back")
    current = rollout.revision(deployment)
    known = sorted({rollout.revision(rs) for rs in revision.replicasets}, reverse=True)
    if wanted:
        source = next((rs for rs in revision.replicasets if rollout.revision(rs) == wanted), None)
        if source is None:
            raise StepFailed(f"deployment {workload.deployment} has no revision {wanted} "
                             f"(revisions: {', '.join(map(str, known)) or 'none'})")
    else:
        older = [rs for rs in revision.replicasets if rollout.revision(rs) != current]
        if not older:
            raise StepFailed(f"deployment {workload.deployment} has no earlier revision to roll back to")
        source = older[0]  # owned_replicasets sorts newest first: the second-highest revision
    number = rollout.revision(source)
    template = _template(source)
    image = rollout.template_image({"spec": {"template": template}}, workload.container)
    if not ctx.facts.from_image:
        ctx.facts.from_image = rollout.template_image(deployment, workload.container)
        ctx.facts.from_revision = current or None
    ctx.facts.to_image = image
    if _template(deployment) == template:
        ctx.output.add(f"skipped rollback (current template already matches revision {number})")
        return f"already at revision {number} ({image})"
    patched = ctx.kube().replace_template(workload.namespace, workload.deployment, template,
                                          deadline=call_deadline())
    ctx.facts.changed = True
    ctx.facts.patched_generation = generation(patched)
    return f"restored revision {number} ({image})"


def describe(args: Args, workload: Workload) -> str:
    wanted = int(args.get("revision") or 0)
    to = f" --to-revision={wanted}" if wanted else ""
    return f"kubectl rollout undo deployment/{workload.deployment}{to} -n {workload.namespace}"
