"""The simulated ReplicaSet controller (pkg/controller/replicaset): keeps `replicas` pods of the template
running, deleting the least valuable first when scaling down (unscheduled, not running, not ready, most
restarts, newest), and reports replicas, ready and available counts; a pod counts as available once it
has been ready for minReadySeconds."""

from __future__ import annotations

from typing import Any

from sandbox.kube.resources import PODS, REPLICASETS
from sandbox.kube.sim.core import INF, Core
from sandbox.kube.sim.pods import Kubelet
from sandbox.kube.util import as_dict, as_int, as_list, clone, parse_time


class ReplicaSetController:
    def __init__(self, core: Core, kubelet: Kubelet):
        self.core = core
        self.kubelet = kubelet  # for how long each pod has been ready (minReadySeconds)

    def sync_replicasets(self, now: float, wall: float) -> float:
        due = INF
        for rs in self.core.store.list(REPLICASETS):
            if rs["metadata"].get("deletionTimestamp"):
                continue
            due = min(due, self._sync_replicaset(rs, now, wall))
        return due

    def _sync_replicaset(self, rs: dict[str, Any], now: float, wall: float) -> float:
        m = rs["metadata"]
        spec = as_dict(rs.get("spec"))
        ns = m["namespace"]
        pods = list(self.core.owned(PODS, ns, m["uid"]))
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                  and as_dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")]
        want = as_int(spec.get("replicas"), 1)
        if len(active) < want:
            for _ in range(want - len(active)):
                pod = self.core.new_pod(REPLICASETS, rs, wall)
                self.core.put(PODS, pod)
                self.core.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", wall=wall)
            pods = self.core.owned(PODS, ns, m["uid"])
        elif len(active) > want:
            def rank(p: dict[str, Any]) -> tuple[Any, ...]:
                st = as_dict(p.get("status"))
                restarts = sum(as_int(as_dict(c).get("restartCount")) for c in as_list(st.get("containerStatuses")))
                return (bool(as_dict(p.get("spec")).get("nodeName")), st.get("phase") == "Running",
                        self.core.pod_ready(p), -restarts, -(parse_time(p["metadata"].get("creationTimestamp")) or 0))
            for p in sorted(active, key=rank)[: len(active) - want]:
                self.core.api.delete(PODS, ns, p["metadata"]["name"])
                self.core.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}", wall=wall)
            pods = self.core.owned(PODS, ns, m["uid"])
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                  and as_dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")]
        min_ready = as_int(spec.get("minReadySeconds"))
        due = INF
        available = 0
        for p in active:
            ok, at = self._pod_available(p, min_ready, now)
            available += ok
            due = min(due, at)
        tlabels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
        status: dict[str, Any] = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active if all(
                as_dict(p["metadata"].get("labels")).get(k) == v for k, v in tlabels.items())),
            "readyReplicas": sum(1 for p in active if self.core.pod_ready(p)),
            "availableReplicas": available,
            "observedGeneration": m.get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v or k == "replicas"}
        terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp"))
        if terminating:
            status["terminatingReplicas"] = terminating
        current = self.core.fresh(REPLICASETS, rs)
        if current is not None and as_dict(current.get("status")) != status:
            new = clone(current)
            new["status"] = status
            self.core.put(REPLICASETS, new)
        return due

    def _pod_available(self, pod: dict[str, Any], min_ready: int, now: float) -> tuple[bool, float]:
        if not self.core.pod_ready(pod) or pod["metadata"].get("deletionTimestamp"):
            return False, INF
        if min_ready <= 0:
            return True, INF
        ready_since = self.kubelet.ready_since(pod["metadata"].get("uid", ""))
        since = ready_since if ready_since is not None else now
        at = since + self.core.d(min_ready)
        return (now >= at), (INF if now >= at else at)
