"""What is wrong with one service in one environment, from its Deployment and pods as the watch streams hold them.

Pure: JSON in, findings out (one per incident kind present). The words are status's and probe's
(`bot/insight/kube_facts.py`: `describe_status`, the pod statuses, rollout conditions), so an incident says
what `/svc status` would. Durations come from the objects themselves (a pod's Ready condition's
lastTransitionTime, a deployment's conditions), so a restart or a re-list judges the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.catalog import Watch
from bot.insight import kube_facts

CRASH_LOOP = "crash-loop"
OOM_KILLED = "oom-killed"
IMAGE_PULL = "image-pull"
NOT_READY = "not-ready"
ROLLOUT_STUCK = "rollout-stuck"
REPLICAS_BELOW = "replicas-below"
HPA_AT_MAX = "hpa-at-max"
CLUSTER_GONE = "cluster-unreachable"  # service ALL, env the cluster's name
KINDS = (CRASH_LOOP, OOM_KILLED, IMAGE_PULL, NOT_READY, ROLLOUT_STUCK, REPLICAS_BELOW, HPA_AT_MAX)
TITLES = {CRASH_LOOP: "crash loop", OOM_KILLED: "OOMKilled", IMAGE_PULL: "image pull failure",
          NOT_READY: "readiness failing", ROLLOUT_STUCK: "rollout stuck", REPLICAS_BELOW: "replicas below need",
          HPA_AT_MAX: "HPA pinned at max", CLUSTER_GONE: "cluster unreachable"}
PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
MAX_PODS_SHOWN = 10

JSON = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One kind of trouble: `summary` is the message's headline, `lines` the diagnosis (one per pod, or the
    rollout's words), `pods` the affected pods. `fingerprint` changes when the shape changes (which pods,
    which statuses), not when only counts move: a new fingerprint is a line in the thread."""

    kind: str
    summary: str
    lines: tuple[str, ...]
    pods: tuple[str, ...]
    fingerprint: str
    since: float | None = None

    def facts(self) -> dict[str, Any]:
        return {"summary": self.summary, "lines": list(self.lines), "pods": list(self.pods), "since": self.since}


RECENT_CRASH = 300.0  # seconds: a pod restarted after a crash this recently, and not ready, still counts as crashing


def _crashing(diagnosis: kube_facts.PodDiagnosis, now: float) -> bool:
    """In CrashLoopBackOff, or between two crashes of one: running again after a non-zero exit, not ready yet."""
    if diagnosis.crash_looping:
        return True
    return (diagnosis.status == "Running" and not diagnosis.ready and diagnosis.last_exit_code not in (None, 0)
            and diagnosis.last_finished is not None and now - diagnosis.last_finished < RECENT_CRASH)


def _oom_recently(diagnosis: kube_facts.PodDiagnosis, now: float) -> bool:
    """Killed for memory in the last few minutes: a leaking pod is ready again between two kills."""
    return diagnosis.oom_killed and (diagnosis.last_finished is None or now - diagnosis.last_finished < RECENT_CRASH)


def _pods_line(diagnosis: kube_facts.PodDiagnosis) -> str:
    restarts = f", {diagnosis.restarts} restarts" if diagnosis.restarts else ""
    image = f", {kube_facts.image_tag(diagnosis.image)}" if diagnosis.image else ""
    status = diagnosis.describe_status()
    if diagnosis.status == "Running" and diagnosis.last_reason:  # between two crashes
        exit_part = f", exit {diagnosis.last_exit_code}" if diagnosis.last_exit_code is not None else ""
        status = f"Running again, not ready (last: {diagnosis.last_reason}{exit_part})"
    return f"{diagnosis.name}: {status}{restarts}{image}"


def _container(pod: JSON, name: str) -> JSON:
    return dict(kube_facts.container_named(pod.get("spec") or {}, name)) if name else {}


def _memory(pod: JSON, container: str) -> str:
    """'limit 512Mi, GOMEMLIMIT 400MiB' (what an OOMKilled Go service needs to know)."""
    spec = _container(pod, container)
    limit = str(((spec.get("resources") or {}).get("limits") or {}).get("memory") or "none")
    gomemlimit = next((str(item.get("value") or "") for item in spec.get("env") or []
                       if isinstance(item, dict) and item.get("name") == "GOMEMLIMIT"), "")
    return f"memory limit {limit}, GOMEMLIMIT {gomemlimit or 'not set'}"


def _condition(obj: JSON, kind: str) -> JSON:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return {}


def findings(deployment: JSON | None, pods: Sequence[JSON], container: str, rules: Watch,  # noqa: PLR0917
             now: float, hpas: Sequence[JSON] = ()) -> list[Finding]:
    """Every kind of trouble the service shows now (empty: healthy)."""
    out: list[Finding] = []
    live = [(pod, kube_facts.diagnose_pod(pod, container)) for pod in pods
            if not (pod.get("metadata") or {}).get("deletionTimestamp")]
    crashing = [(pod, d) for pod, d in live if d.restarts >= rules.crash_loop_restarts
                and (_crashing(d, now) or _oom_recently(d, now))]
    oom = [(pod, d) for pod, d in crashing if d.oom_killed]
    crash = [(pod, d) for pod, d in crashing if not d.oom_killed]
    if crash:
        out.append(_pod_finding(CRASH_LOOP, "crash-looping", crash))
    if oom:
        finding = _pod_finding(OOM_KILLED, "OOMKilled", oom)
        out.append(Finding(finding.kind, finding.summary + f" ({_memory(oom[0][0], container)})",
                           finding.lines, finding.pods, finding.fingerprint, finding.since))
    pulling = [(pod, d) for pod, d in live if d.status in PULL_FAILURES]
    if pulling:
        finding = _pod_finding(IMAGE_PULL, "cannot pull their image", pulling)
        message = pulling[0][1].waiting_message
        lines = finding.lines + ((message,) if message else ())
        out.append(Finding(finding.kind, finding.summary, lines, finding.pods, finding.fingerprint, finding.since))
    unready = []
    for pod, d in live:
        if d.ready or d.status != "Running" or _crashing(d, now):
            continue
        since = kube_facts.parse_time(_condition(pod, "Ready").get("lastTransitionTime"))
        if since is not None and now - since >= rules.readiness_failing:
            unready.append((pod, d))
    if unready:
        out.append(_pod_finding(NOT_READY, f"not ready for {kube_facts.human_age(rules.readiness_failing)} or more",
                                unready))
    if deployment is not None:
        symptoms = _deployment_findings(deployment, rules, now)
        if out:
            # A stuck rollout or missing replicas because pods crash (or cannot pull, or are not ready) is the
            # same trouble: said in the cause's message, not as incidents of their own.
            first = out[0]
            extra = tuple(line for finding in symptoms for line in finding.lines)
            out[0] = Finding(first.kind, first.summary, first.lines + extra, first.pods, first.fingerprint,
                             first.since)
        else:
            out.extend(symptoms)
        name = str((deployment.get("metadata") or {}).get("name") or "")
        hpa = next((item for item in hpas if kube_facts.hpa_for(name, [item]) is not None), None)
        if hpa is not None:
            out.extend(_hpa_findings(hpa, name, rules, now))
    return out


def _hpa_findings(hpa: JSON, deployment: str, rules: Watch, now: float) -> list[Finding]:
    """At its maximum for `hpa_at_max` (ScalingLimited true with reason TooManyReplicas says since when), or
    wanting more replicas than it may have."""
    summary = kube_facts.hpa_for(deployment, [hpa])
    if summary is None or not summary.max_replicas or not summary.at_max:
        return []
    limited = _condition(hpa, "ScalingLimited")
    since = kube_facts.parse_time(limited.get("lastTransitionTime")) if limited.get("status") == "True" else None
    if since is None or now - since < rules.hpa_at_max:
        return []
    metrics = ", ".join(summary.metrics) or "no metrics"
    line = (f"HPA {summary.name} at its maximum of {summary.max_replicas} replicas for "
            f"{kube_facts.human_age(now - since)} ({metrics})")
    return [Finding(HPA_AT_MAX, line, (line, str(limited.get("message") or "")), (), f"max {summary.max_replicas}",
                    since)]


def _pod_finding(kind: str, what: str, group: list[tuple[JSON, kube_facts.PodDiagnosis]]) -> Finding:
    group = sorted(group, key=lambda item: item[1].name)
    count = len(group)
    summary = f"{count} pod{'s' if count != 1 else ''} {what}"
    lines = tuple(_pods_line(d) for _, d in group[:MAX_PODS_SHOWN])
    if count > MAX_PODS_SHOWN:
        lines += (f"and {count - MAX_PODS_SHOWN} more",)
    fingerprint = ";".join(d.name for _, d in group)  # which pods; their statuses move every crash
    since = min((d.created for _, d in group if d.created is not None), default=None)
    return Finding(kind, summary, lines, tuple(d.name for _, d in group), fingerprint, since)


def _deployment_findings(deployment: JSON, rules: Watch, now: float) -> list[Finding]:
    out: list[Finding] = []
    state = kube_facts.rollout_state(deployment)
    progressing = _condition(deployment, "Progressing")
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        since = kube_facts.parse_time(progressing.get("lastTransitionTime"))
        message = str(progressing.get("message") or "progress deadline exceeded")
        out.append(Finding(ROLLOUT_STUCK, f"rollout stuck: {state.message or message}", (message,), (),
                           f"revision {kube_facts.revision(deployment)}", since))
    available = _condition(deployment, "Available")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas", 1) or 0)
    have = int(status.get("availableReplicas") or 0)
    if available.get("status") == "False":
        since = kube_facts.parse_time(available.get("lastTransitionTime"))
        if since is not None and now - since >= rules.replicas_below:
            line = f"{have} of {wanted} replicas available ({available.get('reason') or 'MinimumReplicasUnavailable'})"
            out.append(Finding(REPLICAS_BELOW, line, (line,), (), "below", since))
    return out
