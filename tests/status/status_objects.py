"""Hand-written Kubernetes JSON modelled on kubectl's fixtures (reference/kubernetes.md section 7):
the Deployment of kubectl's testcase-edit-subresource-status, the Pod of wait_test.go's podYAML, and a
ReplicaSet derived from them (pod-template-hash, ownerReferences, revision annotations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

NOW = 1_760_000_000.0  # a fixed "now" for pure-function tests


def stamp(seconds_ago: float, now: float = NOW, micro: bool = False) -> str:
    moment = dt.datetime.fromtimestamp(now - seconds_ago, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def container(name: str = "app", image: str = "registry.example.com/payment:v1.4.2", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "resources": {}, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", **extra}


def deployment(name: str = "payment-api", namespace: str = "prod", *, replicas: int = 3, revision: int = 4,
               image: str = "registry.example.com/payment:v1.4.2", generation: int = 4,
               observed: int | None = None, updated: int | None = None, ready: int | None = None,
               available: int | None = None, total: int | None = None, progressing_reason: str =
               "NewReplicaSetAvailable", paused: bool = False, containers: list[dict[str, Any]] | None = None,
               uid: str | None = None) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "replicas": replicas, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels, "creationTimestamp": None},
                     "spec": {"containers": containers or [container(image=image)], "restartPolicy": "Always",
                              "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
    }
    if paused:
        spec["paused"] = True
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}",
                     "generation": generation, "resourceVersion": "1234", "labels": labels,
                     "creationTimestamp": stamp(30 * 86400),
                     "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
        "spec": spec,
        "status": {
            "observedGeneration": generation if observed is None else observed,
            "replicas": replicas if total is None else total,
            "updatedReplicas": replicas if updated is None else updated,
            "readyReplicas": replicas if ready is None else ready,
            "availableReplicas": replicas if available is None else available,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability."},
                {"type": "Progressing", "status": "False" if progressing_reason == "ProgressDeadlineExceeded"
                 else "True", "reason": progressing_reason,
                 "message": f'ReplicaSet "{name}-abc" has timed out progressing.'
                 if progressing_reason == "ProgressDeadlineExceeded" else
                 f'ReplicaSet "{name}-abc" has successfully progressed.'},
            ],
        },
    }


def replicaset(owner: dict[str, Any], template_hash: str, *, revision: int, replicas: int,
               image: str | None = None, created_ago: float = 2 * 86400) -> dict[str, Any]:
    name = owner["metadata"]["name"]
    template = owner["spec"]["template"]
    containers = [dict(item, image=image) if image else dict(item) for item in template["spec"]["containers"]]
    labels = {**template["metadata"]["labels"], "pod-template-hash": template_hash}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-{template_hash}", "namespace": owner["metadata"]["namespace"],
            "uid": f"uid-rs-{name}-{template_hash}", "labels": labels,
            "creationTimestamp": stamp(created_ago),
            "annotations": {"deployment.kubernetes.io/revision": str(revision),
                            "deployment.kubernetes.io/desired-replicas": str(owner["spec"]["replicas"]),
                            "deployment.kubernetes.io/max-replicas": str(owner["spec"]["replicas"] + 1)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                 "uid": owner["metadata"]["uid"], "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {**template["spec"], "containers": containers}}},
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                   "observedGeneration": 1},
    }


def pod(rs: dict[str, Any], suffix: str, *, ready: bool = True, restarts: int = 0, created_ago: float = 3600,
        waiting: dict[str, Any] | None = None, last_terminated: dict[str, Any] | None = None,
        phase: str = "Running", node: str = "node-1", started_ago: float | None = None,
        ready_ago: float | None = None, deleting: bool = False) -> dict[str, Any]:
    labels = rs["metadata"]["labels"]
    name = f"{rs['metadata']['name']}-{suffix}"
    spec = rs["spec"]["template"]["spec"]
    started = stamp(created_ago - 5 if started_ago is None else started_ago)
    state: dict[str, Any] = {"waiting": waiting} if waiting else {"running": {"startedAt": started}}
    status_item: dict[str, Any] = {
        "name": spec["containers"][0]["name"], "image": spec["containers"][0]["image"],
        "imageID": "docker-pullable://registry.example.com/x@sha256:abc", "ready": ready,
        "started": not waiting, "restartCount": restarts, "state": state, "lastState": {},
        "containerID": "containerd://0123",
    }
    if last_terminated:
        status_item["lastState"] = {"terminated": last_terminated}
    conditions = [
        {"type": "Initialized", "status": "True", "lastTransitionTime": stamp(created_ago)},
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": stamp(ready_ago if ready_ago is not None else created_ago - 10)},
        {"type": "ContainersReady", "status": "True" if ready else "False",
         "lastTransitionTime": stamp(created_ago - 10)},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(created_ago)},
    ]
    metadata: dict[str, Any] = {
        "name": name, "namespace": rs["metadata"]["namespace"], "uid": f"uid-pod-{name}",
        "labels": labels, "creationTimestamp": stamp(created_ago), "generateName": rs["metadata"]["name"] + "-",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
                             "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
    }
    if deleting:
        metadata["deletionTimestamp"] = stamp(1)
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {**spec, "nodeName": node},
        "status": {"phase": phase, "conditions": conditions, "hostIP": "10.0.0.5", "podIP": "10.1.2.3",
                   "startTime": stamp(created_ago), "qosClass": "BestEffort",
                   "containerStatuses": [status_item]},
    }


def event(kind: str, name: str, reason: str, message: str, *, seconds_ago: float = 60, count: int = 1,
          type_: str = "Warning", namespace: str = "prod") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{name}.{reason.lower()}{int(seconds_ago)}", "namespace": namespace,
                     "creationTimestamp": stamp(seconds_ago)},
        "involvedObject": {"kind": kind, "name": name, "namespace": namespace,
                           "fieldPath": "spec.containers{app}" if kind == "Pod" else ""},
        "reason": reason, "message": message, "type": type_, "count": count,
        "firstTimestamp": stamp(seconds_ago + 600), "lastTimestamp": stamp(seconds_ago),
        "source": {"component": "kubelet"},
    }


def hpa(target: str, *, minimum: int = 3, maximum: int = 10, current: int = 3, cpu_now: int = 45,
        cpu_target: int = 70) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": "prod"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                 "minReplicas": minimum, "maxReplicas": maximum,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": cpu_target}}}]},
        "status": {"currentReplicas": current, "desiredReplicas": current,
                   "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                       "averageUtilization": cpu_now, "averageValue": "120m"}}}]},
    }


def lease(service: str, holder: str = "U0ALICE@svcbot-7f9c", *, renewed_ago: float = 5, duration: int = 60,
          acquired_ago: float = 120) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": f"svcbot-deploy-{service}", "namespace": "prod"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                 "acquireTime": stamp(acquired_ago, micro=True), "renewTime": stamp(renewed_ago, micro=True),
                 "leaseTransitions": 1},
    }
