"""`job`: run an image as a Kubernetes Job in the environment's namespace, following its log.

Build, test and migration work runs on the cluster, not in the bot. The Job runs once (backoffLimit 0,
so a failing migration is not retried behind anyone's back), is deleted when the run is cancelled, and
is cleaned up by the cluster an hour after it finished (ttlSecondsAfterFinished).
"""

from __future__ import annotations

import math
import shlex
import time
from typing import Any

from bot.core.errors import BackendError, NotFound
from bot.deploys.steps.base import (
    TRANSIENT,
    Args,
    Retrying,
    StepCancelled,
    StepContext,
    StepFailed,
    Workload,
    duration_text,
    seconds,
)
from bot.deploys.steps.cluster import call_deadline
from bot.insight import kube_facts as rollout

DEFAULT_TIMEOUT = 600.0
TTL_AFTER_FINISHED = 3600
LOG_LINES_IN_FAILURE = 3
IMAGE_PROBLEMS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})


def job_name(run_id: str, seq: int) -> str:
    return f"svcbot-{run_id}-{seq}"[:63]


def manifest(args: Args, ctx: StepContext, name: str) -> dict[str, Any]:
    workload = ctx.workload
    labels = {"app.kubernetes.io/managed-by": "svcbot", "svcbot/run": ctx.run_id, "svcbot/step": str(ctx.seq),
              "svcbot/service": workload.service}
    container: dict[str, Any] = {"name": "step", "image": str(args["image"])}
    command = [str(word) for word in args.get("command") or ()]
    if command:
        container["command"] = command
    env = args.get("env") or {}
    if env:
        container["env"] = [{"name": str(key), "value": str(value)} for key, value in sorted(env.items())]
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": math.ceil(timeout),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {"metadata": {"labels": labels},
                         "spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }


def execute(args: Args, ctx: StepContext) -> str:
    if ctx.cancelled():
        raise StepCancelled
    kube = ctx.kube()
    namespace = ctx.workload.namespace
    name = job_name(ctx.run_id, ctx.seq)
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    deadline = time.monotonic() + timeout
    kube.create_job(namespace, manifest(args, ctx, name), deadline=call_deadline())
    ctx.output.add(f"job {name} created in namespace {namespace}")
    follower = _LogFollower(ctx, name)
    retrying = Retrying(ctx, deadline)
    try:
        while True:
            try:
                job = kube.read_job(namespace, name, deadline=call_deadline(deadline))
                pods = follower.follow()
            except TRANSIENT as exc:  # the Job keeps running meanwhile: look again until the step's timeout
                try:
                    retrying.failed(exc, f"reading job {name}")
                except StepFailed:
                    _delete(ctx, name)
                    raise
                continue
            stuck = _stuck(pods)
            if stuck:
                _delete(ctx, name)
                raise StepFailed(f"job {name} cannot start: {stuck}; deleted")
            verdict = _verdict(job)
            if verdict == "succeeded":
                follower.follow()
                return f"job {name} completed"
            if verdict is not None:
                follower.follow()
                lines = [line for line in ctx.output.text().splitlines()[1:] if line.strip()]
                tail = " | ".join(lines[-LOG_LINES_IN_FAILURE:])
                raise StepFailed(f"job {name} failed ({verdict})" + (f"; log ends: {tail}" if tail else ""))
            if time.monotonic() >= deadline:
                _delete(ctx, name)
                raise StepFailed(f"job {name} still running after {duration_text(timeout)}; deleted")
            ctx.sleep(ctx.poll, deadline)
    except StepCancelled:
        _delete(ctx, name)
        ctx.output.add(f"job {name} deleted (run cancelled)")
        raise


def _verdict(job: dict[str, Any]) -> str | None:
    """'succeeded', a failure reason, or None while the Job runs."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if not isinstance(condition, dict) or condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "succeeded"
        if condition.get("type") == "Failed":
            return str(condition.get("reason") or condition.get("message") or "Failed")
    if int(status.get("succeeded") or 0) > 0:
        return "succeeded"
    if int(status.get("failed") or 0) > 0:
        return "pod failed"
    return None


def _delete(ctx: StepContext, name: str) -> None:
    try:
        ctx.kube().delete_job(ctx.workload.namespace, name, deadline=call_deadline())
    except BackendError as exc:
        ctx.output.add(f"could not delete job {name}: {exc.message}")


class _LogFollower:
    """Copies new lines of the Job's pod log into the step output as they appear."""

    def __init__(self, ctx: StepContext, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.seen: dict[str, int] = {}

    def follow(self) -> list[dict[str, Any]]:
        """Copy new log lines; the Job's pods as last listed."""
        kube = self.ctx.kube()
        namespace = self.ctx.workload.namespace
        selector = f"svcbot/run={self.ctx.run_id},svcbot/step={self.ctx.seq}"
        pods: list[dict[str, Any]] = []
        try:
            pods = kube.list_pods(namespace, selector, deadline=call_deadline())
            for pod in pods:
                pod_name = str((pod.get("metadata") or {}).get("name") or "")
                phase = str((pod.get("status") or {}).get("phase") or "")
                if not pod_name or phase == "Pending":
                    continue
                lines = kube.read_pod_log(namespace, pod_name, deadline=call_deadline()).splitlines()
                for line in lines[self.seen.get(pod_name, 0):]:
                    self.ctx.output.add(line)
                self.seen[pod_name] = len(lines)
        except NotFound:
            return pods
        except BackendError as exc:
            self.ctx.output.add(f"(log not readable: {exc.message})")
        return pods


def _stuck(pods: list[dict[str, Any]]) -> str:
    """The Job's pod waits for an image that will not come (a Job with backoffLimit 0 would wait forever)."""
    for pod in pods:
        diagnosis = rollout.diagnose_pod(pod, "step")
        if diagnosis.status in IMAGE_PROBLEMS:
            detail = f" ({diagnosis.waiting_message})" if diagnosis.waiting_message else ""
            return f"pod {diagnosis.name} is {diagnosis.status}{detail}"
    return ""


def describe(args: Args, workload: Workload) -> str:
    command = [str(word) for word in args.get("command") or ()]
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    what = shlex.join(command) if command else "(the image's entrypoint)"
    return f"job in {workload.namespace}: image {args['image']}: {what} (timeout {duration_text(timeout)})"
