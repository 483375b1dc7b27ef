"""What detect.py finds in Kubernetes objects (pure): each kind with its words, thresholds in time from the objects'
own timestamps, and symptoms (a stuck rollout) folded into their cause (crashing pods)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.core.catalog import Watch
from bot.watch import detect

NOW = 1_800_000_000.0
RULES = Watch()


def stamp(seconds_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - seconds_ago, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "payment-api", "generation": 2},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "payment"}}},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
                       "readyReplicas": 3, **status}}


def pod(name: str, *, waiting: str = "", restarts: int = 0, last: str = "", exit_code: int = 1,
        ready: bool = True, memory: str = "512Mi", gomemlimit: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"waiting": {"reason": waiting, "message": "back-off"}} if waiting else {
        "running": {"startedAt": stamp(30)}}
    last_state = {"terminated": {"reason": last, "exitCode": exit_code, "finishedAt": stamp(20)}} if last else {}
    env = [{"name": "GOMEMLIMIT", "value": gomemlimit}] if gomemlimit else []
    return {"metadata": {"name": name, "labels": {"app": "payment"}, "creationTimestamp": stamp(600)},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/payment:1.5.0",
                                     "resources": {"limits": {"memory": memory}}, "env": env}]},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": str(ready), "lastTransitionTime": stamp(300)}],
                       "containerStatuses": [{"name": "app", "ready": ready, "restartCount": restarts,
                                              "state": state, "lastState": last_state}]}}


def kinds(found: list[detect.Finding]) -> list[str]:
    return [finding.kind for finding in found]


def test_healthy_finds_nothing() -> None:
    """Ready pods and a complete rollout: no finding."""
    assert detect.findings(deployment(), [pod("p-1"), pod("p-2")], "app", RULES, NOW) == []


def test_crash_loop_needs_its_restarts() -> None:
    """CrashLoopBackOff counts from `crash_loop_restarts` restarts, with the last exit in status's words."""
    young = pod("p-1", waiting="CrashLoopBackOff", restarts=2, last="Error", ready=False)
    assert detect.findings(deployment(), [young], "app", RULES, NOW) == []
    old = pod("p-1", waiting="CrashLoopBackOff", restarts=3, last="Error", ready=False)
    [finding] = detect.findings(deployment(), [old], "app", RULES, NOW)
    assert finding.kind == detect.CRASH_LOOP
    assert finding.lines[0] == "p-1: CrashLoopBackOff (last: Error, exit 1), 3 restarts, 1.5.0"


def test_oom_says_limit_and_gomemlimit() -> None:
    """OOMKilled is its own kind, with the memory limit and GOMEMLIMIT, also while ready between two kills."""
    killed = pod("p-1", restarts=4, last="OOMKilled", exit_code=137, ready=True, memory="256Mi", gomemlimit="200MiB")
    [finding] = detect.findings(deployment(), [killed], "app", RULES, NOW)
    assert finding.kind == detect.OOM_KILLED
    assert "memory limit 256Mi, GOMEMLIMIT 200MiB" in finding.summary


def test_image_pull_and_not_ready() -> None:
    """A pod that cannot pull; a running pod not ready for longer than `readiness_failing`."""
    pulling = pod("p-1", waiting="ImagePullBackOff", ready=False)
    unready = pod("p-2", ready=False)
    found = detect.findings(deployment(), [pulling, unready], "app", RULES, NOW)
    assert kinds(found) == [detect.IMAGE_PULL, detect.NOT_READY]
    assert detect.findings(deployment(), [unready], "app", Watch(readiness_failing="10m"), NOW) == []


def test_stuck_rollout_alone_and_folded_into_its_cause() -> None:
    """ProgressDeadlineExceeded is a stuck rollout; with crashing pods it is a line of the crash loop instead."""
    stuck = deployment(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                    "message": "ReplicaSet has timed out progressing.",
                                    "lastTransitionTime": stamp(60)}])
    assert kinds(detect.findings(stuck, [pod("p-1")], "app", RULES, NOW)) == [detect.ROLLOUT_STUCK]
    crashing = pod("p-2", waiting="CrashLoopBackOff", restarts=5, last="Error", ready=False)
    [finding] = detect.findings(stuck, [pod("p-1"), crashing], "app", RULES, NOW)
    assert finding.kind == detect.CRASH_LOOP
    assert "ReplicaSet has timed out progressing." in finding.lines


def test_replicas_below_after_its_threshold() -> None:
    """Available false for `replicas_below`: fewer available replicas than wanted."""
    short = deployment(availableReplicas=1, conditions=[
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
         "lastTransitionTime": stamp(180)}])
    [finding] = detect.findings(short, [pod("p-1")], "app", RULES, NOW)
    assert finding.kind == detect.REPLICAS_BELOW
    assert finding.summary.startswith("1 of 3 replicas available")
    assert detect.findings(short, [pod("p-1")], "app", Watch(replicas_below="5m"), NOW) == []


def test_hpa_pinned_at_max() -> None:
    """An HPA at its maximum with ScalingLimited true for `hpa_at_max` is a finding, with its metrics."""
    hpa = {"metadata": {"name": "payment-api"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "payment-api"}, "minReplicas": 2,
                    "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
           "status": {"currentReplicas": 3, "desiredReplicas": 3,
                      "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                          "averageUtilization": 140}}}],
                      "conditions": [{"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas",
                                      "message": "the desired replica count is more than the maximum",
                                      "lastTransitionTime": stamp(900)}]}}
    [finding] = detect.findings(deployment(), [pod("p-1")], "app", RULES, NOW, [hpa])
    assert finding.kind == detect.HPA_AT_MAX
    assert "maximum of 3 replicas" in finding.summary
    assert "cpu 140% / 70%" in finding.summary
    assert detect.findings(deployment(), [pod("p-1")], "app", Watch(hpa_at_max="1h"), NOW, [hpa]) == []
