"""What Kubernetes objects say about a service, as pure functions over the API's JSON (dicts).

- `rollout_state`: kubectl's rollout-status rules (pkg/polymorphichelpers/rollout_status.go), plus
  `paused`, which kubectl does not report but an on-call engineer wants to see.
- `diagnose_pod`: kubectl's STATUS column (waiting reason, terminated reason, Terminating), and for a
  crash loop the last terminated reason and exit code, OOMKilled, restarts and when the last one was.
- `owned_replicasets` / `pods_of`: ownership by ownerReferences, so one namespace-wide list can be
  grouped per deployment on the client side.
- `recent_warnings`: warning events deduplicated (the same reason and message on several pods is one
  line), newest first.
- `hpa_summary`, `deploy_lock`: HorizontalPodAutoscaler and deploy-lock Lease facts.

Nothing here talks to a cluster; `now` is always a parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = Mapping[str, Any]

REVISION = "deployment.kubernetes.io/revision"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
RECENT_RESTART = 3600.0  # a restart in the last hour is worth an alert line
DEPLOY_LOCK_PREFIX = "svcbot-deploy-"
# Waiting reasons that mean the container will not start without someone acting
# (pkg/kubelet/images/types.go, kuberuntime_container.go, container/sync_result.go).
BAD_WAITING = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
    "ImageInspectError", "RegistryUnavailable", "CreateContainerConfigError", "CreateContainerError",
    "RunContainerError", "CreatePodSandboxError",
})


# --- small readers --------------------------------------------------------------------------------------

def _dict(value: object) -> JSON:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[JSON]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_time(value: object) -> float | None:
    """RFC 3339 (metav1.Time or MicroTime) -> epoch seconds; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def human_age(seconds: float | None) -> str:
    """kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration): 45s, 5m30s, 3h20m, 2d23h, 40d, 2y10d."""
    if seconds is None:
        return "?"
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        days, rest = divmod(hours, 24)
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = divmod(hours // 24, 365)
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def image_tag(image: str) -> str:
    """The tag (or short digest) of an image reference: 'reg:5000/pay:v1.2' -> 'v1.2'."""
    if "@" in image:
        return image.split("@", 1)[1].removeprefix("sha256:")[:12]
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def container_named(pod_spec: JSON, container: str) -> JSON:
    """The named container of a pod spec; the first one when no container has that name."""
    containers = _list(pod_spec.get("containers"))
    for item in containers:
        if item.get("name") == container:
            return item
    return containers[0] if containers else {}


def template_image(workload: JSON, container: str) -> str:
    spec = _dict(_dict(_dict(workload.get("spec")).get("template")).get("spec"))
    return str(container_named(spec, container).get("image") or "")


def revision(obj: JSON) -> int:
    value = _dict(_dict(obj.get("metadata")).get("annotations")).get(REVISION)
    try:
        return int(str(value))
    except ValueError:
        return 0


def _name(obj: JSON) -> str:
    return str(_dict(obj.get("metadata")).get("name") or "")


def _owners(obj: JSON) -> list[JSON]:
    return _list(_dict(obj.get("metadata")).get("ownerReferences"))


def _owned_by(obj: JSON, owner: JSON, kind: str) -> bool:
    meta = _dict(owner.get("metadata"))
    uid, name = meta.get("uid"), meta.get("name")
    for ref in _owners(obj):
        if ref.get("kind") != kind:
            continue
        if uid and ref.get("uid"):
            if ref.get("uid") == uid:
                return True
        elif ref.get("name") == name:
            return True
    return False


# --- ownership ------------------------------------------------------------------------------------------

def owned_replicasets(deployment: JSON, replicasets: Iterable[JSON]) -> list[JSON]:
    """The deployment's ReplicaSets, newest revision first."""
    owned = [rs for rs in replicasets if _owned_by(rs, deployment, "Deployment")]
    return sorted(owned, key=revision, reverse=True)


def pods_of(replicasets: Sequence[JSON], pods: Iterable[JSON]) -> list[JSON]:
    """Pods owned by any of these ReplicaSets, by name."""
    return sorted((pod for pod in pods if any(_owned_by(pod, rs, "ReplicaSet") for rs in replicasets)),
                  key=_name)


def new_replicaset(deployment: JSON, replicasets: Sequence[JSON]) -> JSON | None:
    """The ReplicaSet of the deployment's current revision (the highest when annotations disagree)."""
    current = revision(deployment)
    for rs in replicasets:
        if current and revision(rs) == current:
            return rs
    return max(replicasets, key=revision) if replicasets else None


# --- rollout state: kubectl's rules ---------------------------------------------------------------------

@dataclass(frozen=True)
class RolloutState:
    """Where a deployment's rollout stands.

    `phase`: complete | progressing | failed | paused | pending (the controller has not yet observed
    the latest spec). `message` is kubectl's sentence for it.
    """

    phase: str
    message: str
    desired: int
    updated: int
    ready: int
    available: int
    total: int  # pods of every revision, old ones pending termination included
    generation: int
    observed_generation: int

    @property
    def done(self) -> bool:
        return self.phase == "complete"

    @property
    def failed(self) -> bool:
        return self.phase == "failed"


def rollout_state(deployment: JSON) -> RolloutState:
    meta = _dict(deployment.get("metadata"))
    spec = _dict(deployment.get("spec"))
    status = _dict(deployment.get("status"))
    name = str(meta.get("name") or "")
    desired = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    available = _int(status.get("availableReplicas"))
    total = _int(status.get("replicas"))
    generation = _int(meta.get("generation"))
    observed = _int(status.get("observedGeneration"))

    def state(phase: str, message: str) -> RolloutState:
        return RolloutState(phase=phase, message=message, desired=desired, updated=updated,
                            ready=_int(status.get("readyReplicas")), available=available, total=total,
                            generation=generation, observed_generation=observed)

    if generation > observed:
        return state("pending", "Waiting for deployment spec update to be observed...")
    progressing = next((c for c in _list(status.get("conditions")) if c.get("type") == "Progressing"), None)
    if progressing is not None and progressing.get("reason") == TIMED_OUT_REASON:
        return state("failed", f'deployment "{name}" exceeded its progress deadline')
    if "replicas" in spec and updated < desired:
        phase = "paused" if spec.get("paused") else "progressing"
        return state(phase, f'Waiting for deployment "{name}" rollout to finish: '
                            f"{updated} out of {desired} new replicas have been updated...")
    if total > updated:
        phase = "paused" if spec.get("paused") else "progressing"
        return state(phase, f'Waiting for deployment "{name}" rollout to finish: '
                            f"{total - updated} old replicas are pending termination...")
    if available < updated:
        return state("progressing", f'Waiting for deployment "{name}" rollout to finish: '
                                    f"{available} of {updated} updated replicas are available...")
    return state("complete", f'deployment "{name}" successfully rolled out')


def last_rollout_time(deployment: JSON, replicasets: Sequence[JSON]) -> float | None:
    """When the current revision rolled out.

    The later of the current ReplicaSet's creation (a new revision) and the Progressing condition's
    lastUpdateTime: the controller only updates that condition when its reason changes, so it marks the
    last rollout even when a rollback reused an old ReplicaSet, and scaling does not move it.
    """
    moments = []
    current = new_replicaset(deployment, replicasets)
    if current is not None:
        moments.append(parse_time(_dict(current.get("metadata")).get("creationTimestamp")))
    for condition in _list(_dict(deployment.get("status")).get("conditions")):
        if condition.get("type") == "Progressing":
            moments.append(parse_time(condition.get("lastUpdateTime")))
    known = [moment for moment in moments if moment is not None]
    if known:
        return max(known)
    return parse_time(_dict(deployment.get("metadata")).get("creationTimestamp"))


# --- pods -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PodDiagnosis:
    """One pod as the on-call engineer needs it. `status` is kubectl's STATUS column, extended."""

    name: str
    ready_containers: int
    containers: int
    phase: str
    status: str  # "Running", "CrashLoopBackOff", "ImagePullBackOff", "Terminating", ...
    restarts: int
    node: str
    created: float | None
    image: str
    last_reason: str = ""  # lastState.terminated.reason of the worst container
    last_exit_code: int | None = None
    last_finished: float | None = None  # lastState.terminated.finishedAt
    waiting_message: str = ""
    template_hash: str = ""

    @property
    def ready(self) -> bool:
        return self.containers > 0 and self.ready_containers == self.containers and self.status == "Running"

    @property
    def crash_looping(self) -> bool:
        return self.status == "CrashLoopBackOff"

    @property
    def oom_killed(self) -> bool:
        return "OOMKilled" in (self.last_reason, self.status)

    @property
    def stuck(self) -> bool:
        """Waiting for a reason that will not fix itself."""
        return self.status in BAD_WAITING

    def describe_status(self) -> str:
        """STATUS with the crash loop's last exit: 'CrashLoopBackOff (last: Error, exit 1)'."""
        if self.last_reason and (self.crash_looping or self.status not in ("Running",)):
            exit_part = f", exit {self.last_exit_code}" if self.last_exit_code is not None else ""
            return f"{self.status} (last: {self.last_reason}{exit_part})"
        return self.status


def diagnose_pod(pod: JSON, container: str = "") -> PodDiagnosis:
    meta = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    phase = str(status.get("phase") or "Unknown")
    reason = str(status.get("reason") or phase)
    statuses = _list(status.get("containerStatuses"))
    init_statuses = _list(status.get("initContainerStatuses"))

    # Init containers first, as kubectl does: a pod stuck in init shows Init:<reason>.
    initializing = False
    init_total = len(_list(spec.get("initContainers")))
    for index, item in enumerate(init_statuses):
        state = _dict(item.get("state"))
        terminated = _dict(state.get("terminated"))
        waiting = _dict(state.get("waiting"))
        if terminated and _int(terminated.get("exitCode")) == 0:
            continue
        initializing = True
        if terminated:
            reason = f"Init:{terminated.get('reason') or 'ExitCode:' + str(_int(terminated.get('exitCode')))}"
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{index}/{init_total or len(init_statuses)}"
        break

    ready_count = 0
    restarts = 0
    waiting_message = ""
    has_running = False
    if not initializing:
        for item in reversed(statuses):
            state = _dict(item.get("state"))
            waiting = _dict(state.get("waiting"))
            terminated = _dict(state.get("terminated"))
            if waiting.get("reason"):
                reason = str(waiting["reason"])
                waiting_message = str(waiting.get("message") or "")
            elif terminated.get("reason"):
                reason = str(terminated["reason"])
            elif terminated:
                signal = _int(terminated.get("signal"))
                reason = f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif item.get("ready") and state.get("running") is not None:
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    for item in statuses:
        restarts += _int(item.get("restartCount"))
        if item.get("ready"):
            ready_count += 1
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"

    # The last termination of the container that crashed most recently.
    last_reason, last_exit, last_finished = "", None, None
    for item in statuses:
        terminated = _dict(_dict(item.get("lastState")).get("terminated"))
        if not terminated:
            continue
        finished = parse_time(terminated.get("finishedAt"))
        if last_finished is None or (finished or 0) >= last_finished:
            last_reason = str(terminated.get("reason") or "")
            last_exit = _int(terminated.get("exitCode")) if "exitCode" in terminated else None
            last_finished = finished
    if not last_reason and last_exit is not None:
        last_reason = f"ExitCode:{last_exit}"

    containers = _list(spec.get("containers"))
    total = len(containers) or len(statuses)
    image = str(container_named(spec, container).get("image") or "") if container else ""
    return PodDiagnosis(
        name=str(meta.get("name") or ""), ready_containers=ready_count, containers=total, phase=phase,
        status=reason, restarts=restarts, node=str(spec.get("nodeName") or ""),
        created=parse_time(meta.get("creationTimestamp")), image=image, last_reason=last_reason,
        last_exit_code=last_exit, last_finished=last_finished, waiting_message=waiting_message,
        template_hash=str(_dict(meta.get("labels")).get("pod-template-hash") or ""),
    )


def pod_alerts(pods: Sequence[PodDiagnosis], now: float, desired: int | None = None) -> list[str]:
    """One line per problem worth waking someone for; empty when the pods look fine."""
    alerts: list[str] = []
    live = [pod for pod in pods if pod.status != "Terminating"]
    not_ready = [pod for pod in live if not pod.ready]
    if not_ready:
        alerts.append(f"{len(not_ready)} of {len(live)} pods not ready")
    elif desired and len(live) < desired:
        alerts.append(f"{len(live)} of {desired} pods exist")
    by_status: dict[str, list[PodDiagnosis]] = {}
    for pod in live:
        if pod.stuck:
            by_status.setdefault(pod.status, []).append(pod)
    for status, group in by_status.items():
        worst = max(group, key=lambda pod: pod.restarts)
        details = []
        if worst.last_reason:
            exit_part = f", exit {worst.last_exit_code}" if worst.last_exit_code is not None else ""
            details.append(f"last: {worst.last_reason}{exit_part}")
        if worst.restarts:
            details.append(f"{worst.restarts} restarts")
        where = worst.name if len(group) == 1 else f"{len(group)} pods, e.g. {worst.name}"
        alerts.append(f"{status} on {where}" + (f" ({', '.join(details)})" if details else ""))
    oom = sorted((pod for pod in live if pod.oom_killed), key=lambda pod: pod.last_finished or 0.0, reverse=True)
    if oom:
        when = f", last {human_age(now - oom[0].last_finished)} ago" if oom[0].last_finished is not None else ""
        alerts.append(f"OOMKilled: {', '.join(pod.name for pod in oom[:3])}" +
                      (f" and {len(oom) - 3} more" if len(oom) > 3 else "") + when)
    recent = [pod for pod in live if pod.last_finished is not None and now - pod.last_finished < RECENT_RESTART
              and not pod.crash_looping and not pod.oom_killed]
    if recent:
        latest = max(recent, key=lambda pod: pod.last_finished or 0.0)
        alerts.append(f"restarted {human_age(now - (latest.last_finished or now))} ago: {latest.name} "
                      f"({latest.last_reason or 'unknown reason'})")
    return alerts


# --- events ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventLine:
    """One deduplicated warning: the same reason and message on several objects counts once."""

    reason: str
    message: str
    last_seen: float | None
    count: int
    objects: tuple[str, ...]  # "pod/inventory-5d8f-abcde"
    type: str = "Warning"


def _event_time(event: JSON) -> float | None:
    for value in (event.get("lastTimestamp"), _dict(event.get("series")).get("lastObservedTime"),
                  event.get("eventTime"), event.get("firstTimestamp"),
                  _dict(event.get("metadata")).get("creationTimestamp")):
        moment = parse_time(value)
        if moment is not None:
            return moment
    return None


def recent_warnings(events: Iterable[JSON], objects: set[tuple[str, str]] | None = None,
                    limit: int = 5, types: tuple[str, ...] = ("Warning",)) -> list[EventLine]:
    """Warnings about `objects` ((kind, name) pairs; None = any), deduplicated, newest first."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        if event.get("type") not in types:
            continue
        involved = _dict(event.get("involvedObject"))
        kind, name = str(involved.get("kind") or ""), str(involved.get("name") or "")
        if objects is not None and (kind, name) not in objects:
            continue
        reason = str(event.get("reason") or "")
        message = " ".join(str(event.get("note") or event.get("message") or "").split())
        # The same complaint about different pods differs only by the pod's name.
        key = (reason, message.replace(name, "…") if name else message)
        count = _int(event.get("count")) or _int(_dict(event.get("series")).get("count")) or 1
        moment = _event_time(event)
        group = groups.setdefault(key, {"message": message, "last": moment, "count": 0, "objects": []})
        group["count"] += count
        ref = f"{kind.lower()}/{name}"
        if moment is not None and (group["last"] is None or moment > group["last"]):
            group["last"] = moment
            group["message"] = message
            if ref in group["objects"]:
                group["objects"].remove(ref)
            group["objects"].insert(0, ref)  # the object of the newest occurrence first
        elif ref not in group["objects"]:
            group["objects"].append(ref)
    lines = [EventLine(reason=reason, message=group["message"], last_seen=group["last"], count=group["count"],
                       objects=tuple(group["objects"]), type=types[0] if len(types) == 1 else "")
             for (reason, _), group in groups.items()]
    lines.sort(key=lambda line: line.last_seen or 0.0, reverse=True)
    return lines[:limit]


# --- autoscaler and deploy lock -------------------------------------------------------------------------

@dataclass(frozen=True)
class HpaSummary:
    name: str
    min_replicas: int
    max_replicas: int
    current: int
    desired: int
    metrics: tuple[str, ...]  # "cpu 45% / 70%"

    @property
    def at_max(self) -> bool:
        return self.current >= self.max_replicas


def hpa_for(deployment_name: str, hpas: Iterable[JSON]) -> HpaSummary | None:
    """The autoscaler targeting this deployment (autoscaling/v2 JSON), if any."""
    for hpa in hpas:
        spec = _dict(hpa.get("spec"))
        ref = _dict(spec.get("scaleTargetRef"))
        if ref.get("kind") != "Deployment" or ref.get("name") != deployment_name:
            continue
        status = _dict(hpa.get("status"))
        current_metrics = {}
        for metric in _list(status.get("currentMetrics")):
            resource = _dict(metric.get("resource"))
            current_metrics[str(resource.get("name"))] = _dict(resource.get("current"))
        metrics = []
        for metric in _list(spec.get("metrics")):
            if metric.get("type") != "Resource":
                metrics.append(str(metric.get("type") or "metric").lower())
                continue
            resource = _dict(metric.get("resource"))
            name = str(resource.get("name") or "")
            target = _dict(resource.get("target"))
            current = current_metrics.get(name, {})
            if "averageUtilization" in target:
                now_value = current.get("averageUtilization")
                shown = f"{now_value}%" if now_value is not None else "?"
                metrics.append(f"{name} {shown} / {target['averageUtilization']}%")
            else:
                want = target.get("averageValue") or target.get("value")
                metrics.append(f"{name} {current.get('averageValue') or '?'} / {want}")
        return HpaSummary(
            name=_name(hpa), min_replicas=_int(spec.get("minReplicas"), 1),
            max_replicas=_int(spec.get("maxReplicas")), current=_int(status.get("currentReplicas")),
            desired=_int(status.get("desiredReplicas")), metrics=tuple(metrics),
        )
    return None


@dataclass(frozen=True)
class DeployLock:
    holder: str
    acquired: float | None
    renewed: float | None
    duration: int
    expires: float | None


def lease_name(service: str) -> str:
    """The Lease the deploy engine holds while deploying `service` in an environment's namespace."""
    return f"{DEPLOY_LOCK_PREFIX}{service}"


def deploy_lock(lease: JSON | None, now: float) -> DeployLock | None:
    """The lock a Lease represents when it is held and unexpired; None otherwise."""
    if not lease:
        return None
    spec = _dict(lease.get("spec"))
    holder = str(spec.get("holderIdentity") or "")
    if not holder:
        return None
    duration = _int(spec.get("leaseDurationSeconds"))
    acquired = parse_time(spec.get("acquireTime"))
    renewed = parse_time(spec.get("renewTime")) or acquired
    expires = renewed + duration if renewed is not None and duration else None
    if expires is not None and expires <= now:
        return None
    return DeployLock(holder=holder, acquired=acquired, renewed=renewed, duration=duration, expires=expires)


def leases_by_name(leases: Iterable[JSON]) -> dict[str, JSON]:
    return {_name(lease): lease for lease in leases}


def selector_string(deployment: JSON) -> str | None:
    """The deployment's matchLabels as a label selector string (None when it has none).

    Values come from the cluster, not from the user, and label values cannot contain , = or !.
    """
    labels = _dict(_dict(_dict(deployment.get("spec")).get("selector")).get("matchLabels"))
    if not labels:
        return None
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
