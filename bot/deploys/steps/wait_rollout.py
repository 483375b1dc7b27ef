"""`wait_rollout`: kubectl's rollout-status rules with a timeout of its own, failing fast on broken pods.

kubectl only reports a failure after the deployment's progressDeadlineSeconds (10 minutes by default).
A missing image tag or a crashing binary is visible much earlier on the new ReplicaSet's pods, so the
step fails as soon as one of them waits for a reason that does not fix itself; new pods that run but fail
their readiness probe fail it after `unready_for` (2 minutes by default). While it waits, progress notes
say what the new pods are doing, every few seconds at most; errors that can pass are retried until the
step's timeout.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from bot.core.errors import BotError
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
from bot.deploys.steps.cluster import call_deadline, generation, read_revision
from bot.insight import kube_facts as rollout

# Waiting reasons of a new pod that mean the rollout will not finish (kubelet images/types.go,
# container/sync_result.go); CreateContainerConfigError is left out: creating the missing Secret fixes it.
FAIL_FAST = frozenset({"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "InvalidImageName",
                       "ErrImageNeverPull"})
DEFAULT_TIMEOUT = 600.0
DEFAULT_UNREADY_FOR = 120.0  # seconds new pods may fail readiness before the step fails (`unready_for`)
# The kubelet's words for an HTTP probe's answer, shortened: "HTTP probe failed with statuscode: 503" -> "HTTP 503".
_KUBELET_HTTP = re.compile(r"HTTP probe failed with statuscode: (\d+)")
NOTE_INTERVAL = 5.0  # seconds between two progress notes on what the new pods are doing


def execute(args: Args, ctx: StepContext) -> str:
    timeout = seconds(args.get("timeout"), DEFAULT_TIMEOUT)
    unready_for = seconds(args.get("unready_for"), DEFAULT_UNREADY_FOR)
    deadline = time.monotonic() + timeout
    started_wall = time.time()
    last_message = ""
    retrying = Retrying(ctx, deadline)
    watch = _PodWatch(ctx, started_wall)
    while True:
        try:
            revision = read_revision(ctx, deadline)
        except TRANSIENT as exc:
            retrying.failed(exc, "reading the rollout")
            continue
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
            unready = watch.look(state, revision.pods, deadline)
            if unready is not None and unready.seconds >= unready_for:
                latest = watch.refresh(deadline) or unready
                raise StepFailed(f"new pods not ready for {duration_text(unready_for)} (unready_for): "
                                 f"{latest.describe()}")
        if state.message != last_message:
            ctx.output.add(state.message)
            last_message = state.message
        if time.monotonic() >= deadline:
            raise StepFailed(f"rollout not finished after {duration_text(timeout)}: {state.message}"
                             + _pod_problem(revision.pods, ctx.workload.container))
        ctx.sleep(ctx.poll, deadline)


@dataclass(frozen=True)
class _Unready:
    """New pods that run but fail their readiness probe: how many, what the probe said, since when."""

    pods: int
    message: str  # "Readiness probe failed: HTTP 503"
    count: int  # failures counted by the kubelet's events
    first: float  # epoch seconds of the first failure
    last: float
    since: float  # epoch seconds they have been failing readiness since (the step's start at the earliest)

    @property
    def seconds(self) -> float:
        return max(0.0, time.time() - self.since)

    def describe(self) -> str:
        span = max(0.0, self.last - self.first)
        return f"{self.message}, {self.count} time{'s' if self.count != 1 else ''} in {span:.0f} s"


class _PodWatch:
    """What the new pods are doing while the rollout waits, as progress notes every NOTE_INTERVAL seconds at
    most, and how long they have failed readiness (for `unready_for`). Events are read only while some new
    pod runs but is not ready."""

    def __init__(self, ctx: StepContext, started_wall: float) -> None:
        self.ctx = ctx
        self.started_wall = started_wall
        self.noted_at: float | None = None
        self.last: _Unready | None = None
        self._unready_names: tuple[str, ...] = ()

    def look(self, state: rollout.RolloutState, pods: list[dict[str, Any]], deadline: float) -> _Unready | None:
        container = self.ctx.workload.container
        diagnoses = [rollout.diagnose_pod(pod, container) for pod in pods
                     if not (pod.get("metadata") or {}).get("deletionTimestamp")]
        unready = [item.name for item in diagnoses if item.status == "Running"
                   and item.ready_containers < item.containers]
        self._unready_names = tuple(unready)
        now = time.monotonic()
        due = self.noted_at is None or now - self.noted_at >= NOTE_INTERVAL
        if not unready:
            self.last = None
        elif due:
            self.last = self._readiness(unready, deadline) or self.last
        if due:
            self.noted_at = now
            ready = sum(1 for item in diagnoses if item.containers and item.ready_containers >= item.containers)
            head = f"{state.updated} of {state.desired} updated, {ready} ready"
            if self.last is not None:
                head += f"; not ready: {self.last.describe()}"
            elif unready:
                head += f"; {len(unready)} new pod{'s' if len(unready) != 1 else ''} running, not ready yet"
            self.ctx.note(head)
        return self.last

    def refresh(self, deadline: float) -> _Unready | None:
        """The readiness failures read again now (for the step's failure message)."""
        return self._readiness(list(self._unready_names), deadline) if self._unready_names else None

    def _readiness(self, names: list[str], deadline: float) -> _Unready | None:
        namespace = self.ctx.workload.namespace
        try:
            events = self.ctx.kube().client.list_events(namespace, "reason=Unhealthy",
                                                        deadline=call_deadline(deadline))
        except BotError:
            return None  # the notes and unready_for wait for the next look; the rollout is still watched
        wanted = set(names)
        failures = [event for event in events
                    if (event.get("involvedObject") or {}).get("name") in wanted
                    and str(event.get("message") or "").startswith("Readiness probe failed")]
        if not failures:
            return None
        newest = max(failures, key=lambda event: rollout.parse_time(event.get("lastTimestamp")) or 0.0)
        firsts = [rollout.parse_time(event.get("firstTimestamp")) for event in failures]
        lasts = [rollout.parse_time(event.get("lastTimestamp")) for event in failures]
        first = min((moment for moment in firsts if moment is not None), default=time.time())
        last = max((moment for moment in lasts if moment is not None), default=time.time())
        count = sum(int(event.get("count") or 1) for event in failures)
        since = max(first, self.started_wall)
        return _Unready(pods=len({(event.get("involvedObject") or {}).get("name") for event in failures}),
                        message=_KUBELET_HTTP.sub(r"HTTP \1", " ".join(str(newest.get("message") or "").split()))[:200],
                        count=count,
                        first=first, last=last, since=since)


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
