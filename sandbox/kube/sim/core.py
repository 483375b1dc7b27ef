"""What the simulated kubelet and controllers of one sandbox cluster share: the cluster's store and REST
layer, the simulated clock, events, owner references and the pods controllers create from a template; and
the garbage collector, which needs nothing more.

Like their real counterparts, the parts of the simulation talk to each other only through stored objects;
this core is the store plus the conventions all of them follow.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.kube import objects
from sandbox.kube.resources import DEPLOYMENTS, EVENTS, JOBS, PODS, REPLICASETS, ResourceType
from sandbox.kube.util import as_dict, as_list, clone, fmt_time, new_uid, parse_time, rand_suffix

if TYPE_CHECKING:
    from sandbox.kube.cluster import Cluster
    from sandbox.kube.registry import Registry

INF = float("inf")


class Core:
    def __init__(self, cluster: Cluster, registry: Registry, time_scale: Callable[[], float]):
        self.cluster_name = cluster.name
        self.store = cluster.store
        self.api = cluster.api
        self.health = cluster.health
        self.registry = registry
        self._scale = time_scale
        self.seeding = False  # world.py is writing a settled state: what "already happened" makes no events
        self._event_index: dict[tuple[Any, ...], tuple[str, str]] = {}
        # what containers print, for a log collector (sandbox/shipper.py) to take: (stream labels, lines)
        self.log_outbox: deque[tuple[dict[str, str], list[tuple[float, str]]]] = deque(maxlen=100_000)

    # ------------------------------------------------------------------ clock

    @property
    def scale(self) -> float:
        return max(self._scale(), 1e-4)

    def d(self, seconds: float) -> float:
        """Simulated seconds as real seconds (read when used, so a changed time scale applies at once)."""
        return seconds * self.scale

    # ------------------------------------------------------------------ objects

    def fresh(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any] | None:
        m = obj["metadata"]
        return self.store.get(rt, m.get("namespace", ""), m["name"])

    def put(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        return self.store.put(rt, obj)

    @staticmethod
    def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
        for ref in as_list(as_dict(obj.get("metadata")).get("ownerReferences")):
            if isinstance(ref, dict) and ref.get("controller"):
                return ref
        return None

    @staticmethod
    def owner_ref(rt: ResourceType, owner: dict[str, Any]) -> dict[str, Any]:
        m = owner["metadata"]
        return {"apiVersion": rt.api_version, "kind": rt.kind, "name": m["name"], "uid": m["uid"],
                "controller": True, "blockOwnerDeletion": True}

    def owned(self, rt: ResourceType, namespace: str, uid: str) -> list[dict[str, Any]]:
        out = []
        for o in self.store.list(rt, namespace):
            ref = self.controller_of(o)
            if ref is not None and ref.get("uid") == uid:
                out.append(o)
        return out

    def new_pod(self, owner_rt: ResourceType, owner: dict[str, Any], wall: float | None = None) -> dict[str, Any]:
        """A pod from the owner's template (not stored), named and defaulted like the API server does."""
        wall = time.time() if wall is None else wall
        m = owner["metadata"]
        tmpl = clone(as_dict(as_dict(owner.get("spec")).get("template")))
        tmeta = as_dict(tmpl.get("metadata"))
        prefix = f"{m['name']}-"
        name = prefix + rand_suffix()
        while self.store.get(PODS, m["namespace"], name) is not None:
            name = prefix + rand_suffix()
        meta: dict[str, Any] = {"name": name, "generateName": prefix, "namespace": m["namespace"], "uid": new_uid(),
                                "creationTimestamp": fmt_time(wall), "generation": 1,
                                "labels": dict(as_dict(tmeta.get("labels"))),
                                "ownerReferences": [self.owner_ref(owner_rt, owner)]}
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": as_dict(tmpl.get("spec"))}
        objects.apply_defaults(PODS, pod)
        pod["status"] = {"phase": "Pending", "qosClass": objects.qos_class(pod["spec"])}
        return pod

    @staticmethod
    def pod_ready(pod: dict[str, Any]) -> bool:
        for cond in as_list(as_dict(pod.get("status")).get("conditions")):
            if as_dict(cond).get("type") == "Ready":
                return as_dict(cond).get("status") == "True"
        return False

    # ------------------------------------------------------------------ events

    def event(self, obj: dict[str, Any], etype: str, reason: str, message: str, *, field_path: str = "",
              component: str = "", host: str = "", wall: float | None = None, count: int = 1,
              first: float | None = None, force: bool = False) -> None:
        """Record an event, aggregating repeats like the client-go EventCorrelator (count, lastTimestamp)."""
        if self.seeding and not force:
            return
        if len(self._event_index) > 5000:
            self._event_index.clear()
        wall = time.time() if wall is None else wall
        meta = obj["metadata"]
        kind = obj.get("kind") or ""
        component = component or {"Pod": "kubelet", "Deployment": "deployment-controller",
                                   "ReplicaSet": "replicaset-controller", "Job": "job-controller"}.get(kind, "")
        ns = meta.get("namespace", "default")
        key = (meta.get("uid"), field_path, reason, message, etype, component)
        known = self._event_index.get(key)
        if known is not None:
            ev = self.store.get(EVENTS, known[0], known[1])
            if ev is not None:
                ev = clone(ev)
                ev["count"] = int(ev.get("count", 1)) + count
                ev["lastTimestamp"] = fmt_time(wall)
                self.put(EVENTS, ev)
                return
        name = f"{meta['name']}.{int(wall * 1e9):x}"[:253]
        while self.store.get(EVENTS, ns, name) is not None:
            name = f"{meta['name']}.{int(wall * 1e9) + int(rand_suffix(3), 36):x}"[:253]
        involved = {"kind": kind, "namespace": ns, "name": meta["name"], "uid": meta.get("uid", ""),
                    "apiVersion": obj.get("apiVersion", "v1"), "resourceVersion": meta.get("resourceVersion", "")}
        if field_path:
            involved["fieldPath"] = field_path
        source: dict[str, Any] = {"component": component}
        if host:
            source["host"] = host
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns, "uid": new_uid(),
                         "creationTimestamp": fmt_time(first if first is not None else wall)},
            "involvedObject": involved, "reason": reason, "message": message, "source": source,
            "firstTimestamp": fmt_time(first if first is not None else wall), "lastTimestamp": fmt_time(wall),
            "count": count, "type": etype, "eventTime": None,
            "reportingComponent": component, "reportingInstance": host,
        }
        self.put(EVENTS, ev)
        self._event_index[key] = (ns, name)

    def gc_events(self, wall: float) -> None:
        """Drop events untouched for an hour (the API server's event TTL)."""
        for ev in self.store.list(EVENTS):
            last = parse_time(ev.get("lastTimestamp")) or parse_time(ev["metadata"].get("creationTimestamp")) or wall
            if wall - last > 3600:
                self.store.remove(EVENTS, ev["metadata"]["namespace"], ev["metadata"]["name"])

    # ------------------------------------------------------------------ garbage collection

    def collect_garbage(self, now: float, wall: float) -> float:
        """Delete replicasets and pods whose controlling Deployment, ReplicaSet or Job is gone."""
        uids = {o["metadata"].get("uid") for rt in (DEPLOYMENTS, REPLICASETS, JOBS) for o in self.store.list(rt)}
        for rt in (REPLICASETS, PODS):
            for o in self.store.list(rt):
                ref = self.controller_of(o)
                if ref is None or ref.get("uid") in uids:
                    continue
                if ref.get("kind") not in ("Deployment", "ReplicaSet", "Job"):
                    continue
                m = o["metadata"]
                if rt is PODS:
                    if not m.get("deletionTimestamp"):
                        self.api.delete(PODS, m["namespace"], m["name"])
                else:
                    self.store.remove(rt, m["namespace"], m["name"])
        return INF
