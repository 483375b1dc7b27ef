"""`wait_rollout`: kubectl's rollout-status rules with a timeout of its own, failing fast on broken pods.

kubectl only reports a failure after the deployment's progressDeadlineSeconds (10 minutes by default).
A missing image tag or a crashing binary is visible much earlier on the new ReplicaSet's pods, so the
step fails as soon as one of them waits for a reason that does not fix itself.
"""

from __future__ import annotations

import time

from bot.deploys.steps.base import Args, StepContext, StepFailed, Workload, duration_text, seconds
from bot.deploys.steps.cluster import generation, read_revision
from bot.insight import kube_facts as rollout

# Waiting reasons of a new pod that mean the rollout will not finish (kubelet images/types.go,
# container/sync_result.go); CreateContainerConfigError is left out: creating the missing Secret fixes it.
FAIL_FAST = frozenset({"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "InvalidImageName",
                       "ErrImageNeverPull"})
DEFAULT_TIMEOUT = 600.0


def execute(args: Args, ctx: StepContext) -> str:
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    deadline = time.monotonic() + timeout
    last_message = ""
    while True:
        revision = read_revision(ctx, deadline)
        state = rollout.rollout_state(revision.deployment)
        wanted = ctx.facts.patched_generation or 0
        observed = state.observed_generation >= max(wanted, generation(revision.deployment))
        if observed:
            ctx.facts.to_revision = rollout.revision(revision.deployment) or ctx.facts.to_revision
            if state.failed:
                raise StepFailed(state.message + _pod_problem(revision.pods, ctx.workload.container))
            if state.phase == "paused":
                raise StepFailed(f"deployment {ctx.workload.deployment} is paused: the rollout will not proceed "
                                 f"(kubectl rollout resume deployment/{ctx.workload.deployment})")
            if state.done:
                ctx.output.add(state.message)
                return f"rolled out: {state.updated}/{state.desired} new pods available"
            stuck = _stuck(revision.pods, ctx.workload.container)
            if stuck is not None:
                raise StepFailed(stuck)
        if state.message != last_message:
            ctx.output.add(state.message)
            last_message = state.message
        if time.monotonic() >= deadline:
            raise StepFailed(f"rollout not finished after {duration_text(timeout)}: {state.message}"
                             + _pod_problem(revision.pods, ctx.workload.container))
        ctx.sleep(ctx.poll, deadline)


def _stuck(pods: list[dict[str, object]], container: str) -> str | None:
    for pod in pods:
        diagnosis = rollout.diagnose_pod(pod, container)
        if diagnosis.status in FAIL_FAST:
            detail = f": {diagnosis.waiting_message}" if diagnosis.waiting_message else ""
            image = f" (image {diagnosis.image})" if diagnosis.image else ""
            return f"new pod {diagnosis.name} is {diagnosis.describe_status()}{image}{detail}"
    return None


def _pod_problem(pods: list[dict[str, object]], container: str) -> str:
    stuck = _stuck(pods, container)
    return f"; {stuck}" if stuck else ""


def describe(args: Args, workload: Workload) -> str:
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    return (f"kubectl rollout status deployment/{workload.deployment} -n {workload.namespace} "
            f"--timeout={duration_text(timeout)}")
