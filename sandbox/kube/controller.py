"""Simulation of what runs behind the API server of one sandbox cluster: the scheduler, the kubelet (image
pulls, container lifecycle, probes, logs) and the deployment, replicaset, job, HPA and garbage-collector
controllers.

The rules follow the real controllers (pkg/controller/deployment/{sync,rolling,progress}.go,
pkg/controller/replicaset, pkg/controller/job, pkg/kubelet) closely enough that kubectl's rollout-status
rules give the answers they would give on a real cluster. Durations are simulated seconds multiplied by the
sandbox's time_scale; object timestamps are wall-clock time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import objects
from .health import Endpoint
from .registry import Registry, split_image
from .resources import CONFIGMAPS, DEPLOYMENTS, EVENTS, HPAS, JOBS, PODS, REPLICASETS, SERVICES, ResourceType
from .util import ApiError, as_dict, as_int, as_list, clone, fmt_micro, fmt_time, new_uid, parse_time, rand_suffix

if TYPE_CHECKING:
    from .cluster import Cluster

log = logging.getLogger("sandbox.kube")

INF = float("inf")

# simulated durations, in seconds at time_scale 1.0
SCHEDULE_S = 0.1
PULL_S = 0.8
START_S = 0.3
TERMINATE_S = 0.5
CRASH_RUN_S = 1.5
LEAK_RUN_S = 4.0
JOB_RUN_S = 2.0
MIN_PROBE_PERIOD = 0.05  # real seconds: keeps failing probes from flooding the store at tiny time scales

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED,
               MAX_REPLICAS, "deprecated.deployment.rollback.to"}


@dataclass
class ContainerSim:
    name: str
    image: str
    stage: str = "new"  # new pulling pull_error pull_backoff starting config_error running backoff done
    due: float = 0.0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restarts: int = 0
    pull_attempts: int = 0
    image_id: str = ""
    container_id: str = ""
    started_wall: float = 0.0
    end_due: float = INF
    exit: tuple[int, str] = (0, "Completed")
    next_ready_probe: float = INF
    next_live_probe: float = INF
    ready_fail: int = 0
    live_fail: int = 0
    logs: list[list[tuple[float, str]]] = field(default_factory=list)


@dataclass
class PodSim:
    uid: str
    kind: str  # "app" (restartPolicy Always) or "job"
    stage: str = "pending"  # pending scheduled terminating
    due: float = 0.0
    node: str = ""
    ip: str = ""
    start_wall: float = 0.0
    containers: dict[str, ContainerSim] = field(default_factory=dict)
    cond_times: dict[str, tuple[str, float]] = field(default_factory=dict)
    ready_since: float | None = None  # monotonic
    seen_rv: str = ""
    override: str = ""  # per-pod behaviour from the seed world ("crashing", "leaking", ...)


@dataclass
class JobSim:
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    next_create: float = 0.0
    finished_at: float | None = None


class Controller:
    def __init__(self, cluster: Cluster, registry: Registry, time_scale: Callable[[], float]):
        self.cluster = cluster
        self.store = cluster.store
        self.api = cluster.api
        self.health = cluster.health
        self.registry = registry
        self._scale = time_scale
        self.pods: dict[str, PodSim] = {}
        self.jobs: dict[str, JobSim] = {}
        self.progress_mono: dict[str, float] = {}  # deployment uid -> monotonic time of last progress
        self.nodes = [f"sandbox-{cluster.name}-{i}" for i in (1, 2, 3)]
        self.node_images: dict[str, set[str]] = {n: set() for n in self.nodes}
        self._next_node = 0
        self._next_ip = 2
        self._event_index: dict[tuple[Any, ...], tuple[str, str]] = {}
        self._template_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._paused = threading.Event()
        self._last_event_gc = 0.0
        self._seeding = False
        self.passes = 0
        self.errors: list[str] = []
        self.store.write_hooks.append(lambda _c: self._kick.set())

    # ------------------------------------------------------------------ lifecycle

    @property
    def scale(self) -> float:
        return max(self._scale(), 1e-4)

    def d(self, seconds: float) -> float:
        return seconds * self.scale

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"kube-controller-{self.cluster.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread:
            self._thread.join(timeout=5)

    def kick(self) -> None:
        self._kick.set()

    def pause(self) -> None:
        """Freeze the simulation (nothing progresses until resume())."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._kick.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()
            due = time.monotonic() + 1.0
            if not self._paused.is_set():
                try:
                    due = self.run_pass()
                except Exception as e:  # a bad object must never stop the simulation
                    log.exception("controller pass failed")
                    self.errors.append(repr(e))
                    due = time.monotonic() + 0.2
            timeout = min(max(0.0, due - time.monotonic()), 1.0)
            self._kick.wait(timeout)

    def run_pass(self) -> float:
        with self.store.lock:
            self.passes += 1
            now, wall = time.monotonic(), time.time()
            due = INF
            for step in (self._gc, self._step_pods, self._sync_replicasets, self._sync_deployments,
                         self._sync_jobs, self._sync_hpas):
                try:
                    due = min(due, step(now, wall))
                except Exception as e:
                    log.exception("controller step %s failed", step.__name__)
                    self.errors.append(f"{step.__name__}: {e!r}")
            if wall - self._last_event_gc > 60:
                self._last_event_gc = wall
                self._gc_events(wall)
            return due

    # ------------------------------------------------------------------ helpers

    def _fresh(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any] | None:
        m = obj["metadata"]
        return self.store.get(rt, m.get("namespace", ""), m["name"])

    def _put(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
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

    def event(self, obj: dict[str, Any], etype: str, reason: str, message: str, *, field_path: str = "",
              component: str = "", host: str = "", wall: float | None = None, count: int = 1,
              first: float | None = None, force: bool = False) -> None:
        """Record an event, aggregating repeats like the client-go EventCorrelator (count, lastTimestamp)."""
        if self._seeding and not force:
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
                self._put(EVENTS, ev)
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
        self._put(EVENTS, ev)
        self._event_index[key] = (ns, name)

    def _gc_events(self, wall: float) -> None:
        for ev in self.store.list(EVENTS):
            last = parse_time(ev.get("lastTimestamp")) or parse_time(ev["metadata"].get("creationTimestamp")) or wall
            if wall - last > 3600:
                self.store.remove(EVENTS, ev["metadata"]["namespace"], ev["metadata"]["name"])

    def _canonical(self, obj: dict[str, Any]) -> dict[str, Any]:
        m = obj["metadata"]
        key = (m.get("uid", ""), m.get("resourceVersion", ""))
        hit = self._template_cache.get(key)
        if hit is None:
            hit = objects.canonical_template(as_dict(obj.get("spec")).get("template"))
            if len(self._template_cache) > 2000:
                self._template_cache.clear()
            self._template_cache[key] = hit
        return hit

    # ------------------------------------------------------------------ garbage collection

    def _gc(self, now: float, wall: float) -> float:
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

    # ------------------------------------------------------------------ kubelet

    def _step_pods(self, now: float, wall: float) -> float:
        due = INF
        for pod in self.store.list(PODS):
            uid = pod["metadata"].get("uid", "")
            sim = self.pods.get(uid)
            if sim is None:
                sim = self._new_sim(pod)
            if sim.due > now and sim.seen_rv == pod["metadata"].get("resourceVersion"):
                due = min(due, sim.due)
                continue
            sim.due = self._step_pod(pod, sim, now, wall)
            due = min(due, sim.due)
        live = {p["metadata"].get("uid") for p in self.store.list(PODS)}
        for uid in [u for u in self.pods if u not in live]:
            del self.pods[uid]
        return due

    def _new_sim(self, pod: dict[str, Any]) -> PodSim:
        spec = as_dict(pod.get("spec"))
        kind = "app" if spec.get("restartPolicy", "Always") == "Always" else "job"
        sim = PodSim(uid=pod["metadata"].get("uid", ""), kind=kind)
        for c in as_list(spec.get("containers")):
            c = as_dict(c)
            sim.containers[str(c.get("name"))] = ContainerSim(name=str(c.get("name")), image=str(c.get("image", "")))
        self.pods[sim.uid] = sim
        return sim

    def _step_pod(self, pod: dict[str, Any], sim: PodSim, now: float, wall: float) -> float:
        meta = pod["metadata"]
        pod = clone(pod)
        if meta.get("deletionTimestamp"):
            if sim.stage != "terminating":
                sim.stage = "terminating"
                sim.due = now + self.d(TERMINATE_S)
                for c in sim.containers.values():
                    if c.stage == "running":
                        self.event(pod, "Normal", "Killing", f"Stopping container {c.name}",
                                   field_path=f"spec.containers{{{c.name}}}", host=sim.node)
                    c.ready = False
            if now >= sim.due:
                self.store.remove(PODS, meta["namespace"], meta["name"])
                self.pods.pop(sim.uid, None)
                return INF
            self._write_pod_status(pod, sim, wall)
            return sim.due
        if sim.stage == "pending":
            if as_dict(pod.get("spec")).get("nodeName"):
                sim.node = pod["spec"]["nodeName"]
                self._schedule(pod, sim, wall, announce=False)
            else:
                if sim.due == 0.0:
                    sim.due = now + self.d(SCHEDULE_S)
                if now < sim.due:
                    sim.seen_rv = meta.get("resourceVersion", "")
                    return sim.due
                self._schedule(pod, sim, wall, announce=True)
            for c in sim.containers.values():
                c.due = now
        due = INF
        for c in sim.containers.values():
            due = min(due, self._step_container(pod, sim, c, now, wall))
        self._write_pod_status(pod, sim, wall)
        return due

    def _schedule(self, pod: dict[str, Any], sim: PodSim, wall: float, announce: bool) -> None:
        if not sim.node:
            sim.node = self.nodes[self._next_node % len(self.nodes)]
            self._next_node += 1
        self._next_ip += 1
        node_index = self.nodes.index(sim.node) if sim.node in self.nodes else 0
        sim.ip = f"10.244.{node_index}.{self._next_ip % 250 + 2}"
        sim.stage = "scheduled"
        sim.start_wall = wall
        pod["spec"]["nodeName"] = sim.node
        if announce:
            self.event(pod, "Normal", "Scheduled",
                       f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {sim.node}",
                       component="default-scheduler")

    def _container_spec(self, pod: dict[str, Any], name: str) -> dict[str, Any]:
        for c in as_list(as_dict(pod.get("spec")).get("containers")):
            if as_dict(c).get("name") == name:
                return as_dict(c)
        return {}

    def _behaviour(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim) -> str:
        if sim.override and c.name == next(iter(sim.containers), c.name):
            return sim.override
        if sim.kind == "job":
            spec = self._container_spec(pod, c.name)
            words = " ".join(str(x) for x in as_list(spec.get("command")) + as_list(spec.get("args")))
            if self.registry.has(c.image, "failing") or "fail" in words.lower():
                return "failing"
            return "ok"
        for b in ("crashing", "leaking"):
            if self.registry.has(c.image, b):
                return b
        return "ok"

    def _cfield(self, c: ContainerSim) -> str:
        return f"spec.containers{{{c.name}}}"

    def _backoff(self, n: int) -> float:
        return float(min(10 * 2 ** max(n, 0), 300))

    def _step_container(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, now: float, wall: float) -> float:
        cspec = self._container_spec(pod, c.name)
        for _ in range(20):
            if c.due > now:
                break
            if c.stage == "new":
                policy = cspec.get("imagePullPolicy", "IfNotPresent")
                if policy != "Always" and c.image in self.node_images.get(sim.node, set()):
                    self.event(pod, "Normal", "Pulled", f'Container image "{c.image}" already present on machine',
                               field_path=self._cfield(c), host=sim.node, wall=wall)
                    c.stage, c.due = "starting", now + self.d(START_S)
                    c.image_id = self.registry.image_id(c.image)
                elif policy == "Never":
                    c.state = {"waiting": {"reason": "ErrImageNeverPull",
                                           "message": f'Container image "{c.image}" is not present with pull '
                                                      "policy of Never"}}
                    c.stage, c.due = "done", INF
                else:
                    self.event(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', field_path=self._cfield(c),
                               host=sim.node, wall=wall)
                    c.stage, c.due = "pulling", now + self.d(PULL_S)
            elif c.stage == "pulling":
                if not self.registry.exists(c.image):
                    _repo, _tag = split_image(c.image)
                    why = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{c.image}": failed '
                           f'to resolve reference "{c.image}": {c.image}: not found')
                    c.state = {"waiting": {"reason": "ErrImagePull", "message": why}}
                    self.event(pod, "Warning", "Failed", f'Failed to pull image "{c.image}": {why}',
                               field_path=self._cfield(c), host=sim.node, wall=wall)
                    self.event(pod, "Warning", "Failed", "Error: ErrImagePull", field_path=self._cfield(c),
                               host=sim.node, wall=wall)
                    c.stage, c.due = "pull_error", now + self.d(1.0)
                else:
                    took = int(PULL_S * 1000 + (hash(c.image) % 400))
                    self.event(pod, "Normal", "Pulled",
                               f'Successfully pulled image "{c.image}" in {took}ms ({took}ms including waiting). '
                               f"Image size: {self.registry.size(c.image)} bytes.",
                               field_path=self._cfield(c), host=sim.node, wall=wall)
                    self.node_images.setdefault(sim.node, set()).add(c.image)
                    c.image_id = self.registry.image_id(c.image)
                    c.stage, c.due = "starting", now + self.d(START_S)
            elif c.stage == "pull_error":
                c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.image}"'}}
                self.event(pod, "Normal", "BackOff", f'Back-off pulling image "{c.image}"',
                           field_path=self._cfield(c), host=sim.node, wall=wall)
                self.event(pod, "Warning", "Failed", "Error: ImagePullBackOff", field_path=self._cfield(c),
                           host=sim.node, wall=wall)
                c.stage, c.due = "pull_backoff", now + self.d(self._backoff(c.pull_attempts))
                c.pull_attempts += 1
            elif c.stage == "pull_backoff":
                self.event(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', field_path=self._cfield(c),
                           host=sim.node, wall=wall)
                c.stage, c.due = "pulling", now + self.d(PULL_S)
            elif c.stage in ("starting", "config_error"):
                missing = self._missing_config(pod, cspec)
                if missing:
                    msg = f'configmap "{missing}" not found'
                    c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": msg}}
                    self.event(pod, "Warning", "Failed", f"Error: {msg}", field_path=self._cfield(c),
                               host=sim.node, wall=wall)
                    c.stage, c.due = "config_error", now + self.d(10)
                    continue
                self._start_container(pod, sim, c, cspec, now, wall)
            elif c.stage == "running":
                if now >= c.end_due:
                    self._terminate(pod, sim, c, now, wall, *c.exit)
                    continue
                if now >= c.next_ready_probe:
                    self._probe(pod, sim, c, cspec, "readinessProbe", now, wall)
                if now >= c.next_live_probe and c.stage == "running":
                    self._probe(pod, sim, c, cspec, "livenessProbe", now, wall)
                if c.stage == "running":
                    c.due = min(c.end_due, c.next_ready_probe, c.next_live_probe)
            elif c.stage == "backoff":
                c.restarts += 1
                c.stage, c.due = "new", now
            else:  # done
                c.due = INF
        return c.due

    def _missing_config(self, pod: dict[str, Any], cspec: dict[str, Any]) -> str:
        ns = pod["metadata"]["namespace"]
        names: list[str] = []
        for env in as_list(cspec.get("env")):
            ref = as_dict(as_dict(as_dict(env).get("valueFrom")).get("configMapKeyRef"))
            if ref and not ref.get("optional"):
                names.append(str(ref.get("name", "")))
        for vol in as_list(as_dict(pod.get("spec")).get("volumes")):
            cm = as_dict(as_dict(vol).get("configMap"))
            if cm and not cm.get("optional"):
                names.append(str(cm.get("name", "")))
        for name in names:
            if self.store.get(CONFIGMAPS, ns, name) is None:
                return name
        return ""

    def _start_container(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any],  # noqa: PLR0917
                         now: float, wall: float) -> None:
        self.event(pod, "Normal", "Created", f"Created container: {c.name}", field_path=self._cfield(c),
                   host=sim.node, wall=wall)
        self.event(pod, "Normal", "Started", f"Started container {c.name}", field_path=self._cfield(c),
                   host=sim.node, wall=wall)
        c.container_id = "containerd://" + new_uid().replace("-", "") + new_uid().replace("-", "")[:32]
        c.started_wall = wall
        c.state = {"running": {"startedAt": fmt_time(wall)}}
        c.started = True
        c.stage = "running"
        c.ready_fail = c.live_fail = 0
        behaviour = self._behaviour(pod, sim, c)
        c.logs.append(self._start_logs(pod, sim, c, cspec, behaviour, wall))
        if len(c.logs) > 5:
            del c.logs[0]
        c.end_due, c.exit = INF, (0, "Completed")
        if sim.kind == "job":
            c.end_due = now + self.d(JOB_RUN_S)
            c.exit = (1, "Error") if behaviour == "failing" else (0, "Completed")
        elif behaviour == "crashing":
            c.end_due, c.exit = now + self.d(CRASH_RUN_S), (1, "Error")
        elif behaviour == "leaking":
            c.end_due, c.exit = now + self.d(LEAK_RUN_S), (137, "OOMKilled")
        rp, lp = as_dict(cspec.get("readinessProbe")), as_dict(cspec.get("livenessProbe"))
        c.ready = not rp
        c.next_ready_probe = now + self.d(as_int(rp.get("initialDelaySeconds"))) + 0.001 if rp else INF
        c.next_live_probe = now + self.d(as_int(lp.get("initialDelaySeconds"))) + self.d(1) if lp else INF
        if sim.kind == "job":
            c.next_ready_probe = c.next_live_probe = INF
        c.due = min(c.end_due, c.next_ready_probe, c.next_live_probe)

    def _terminate(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, now: float, wall: float, code: int,  # noqa: PLR0917
                   reason: str) -> None:
        term = {"exitCode": code, "reason": reason, "startedAt": fmt_time(c.started_wall),
                "finishedAt": fmt_time(wall), "containerID": c.container_id}
        if c.logs:
            c.logs[-1].extend(self._end_logs(pod, sim, c, code, reason, wall))
        c.ready = False
        c.started = False
        c.next_ready_probe = c.next_live_probe = INF
        policy = as_dict(pod.get("spec")).get("restartPolicy", "Always")
        restart = policy == "Always" or (policy == "OnFailure" and code != 0)
        if restart:
            c.last_state = {"terminated": term}
            wait = self._backoff(c.restarts)
            c.state = {"waiting": {"reason": "CrashLoopBackOff",
                                   "message": f"back-off {int(wait)}s restarting failed container={c.name} "
                                              f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                                              f"({pod['metadata']['uid']})"}}
            self.event(pod, "Warning", "BackOff",
                       f"Back-off restarting failed container {c.name} in pod "
                       f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                       field_path=self._cfield(c), host=sim.node, wall=wall)
            c.stage, c.due = "backoff", now + self.d(wait)
        else:
            c.state = {"terminated": term}
            c.stage, c.due = "done", INF

    # probes

    def container_ports(self, cspec: dict[str, Any]) -> dict[str, int]:
        ports: dict[str, int] = {}
        for p in as_list(cspec.get("ports")):
            p = as_dict(p)
            if isinstance(p.get("containerPort"), int):
                ports[str(p.get("name") or p["containerPort"])] = p["containerPort"]
        return ports

    def _resolve_port(self, cspec: dict[str, Any], port: Any) -> int | None:
        ports = self.container_ports(cspec)
        if isinstance(port, int):
            return port
        if isinstance(port, str):
            if port.isdigit():
                return int(port)
            return ports.get(port)
        return None

    def listening(self, cspec: dict[str, Any], port: int) -> bool:
        declared = set(self.container_ports(cspec).values())
        return port in declared if declared else port == 8080

    def endpoint(self, pod: dict[str, Any], c: ContainerSim, path: str) -> Endpoint:
        meta = pod["metadata"]
        service = str(as_dict(meta.get("labels")).get("app", ""))
        ep = self.health.resolve(self.cluster.name, meta["namespace"], service, meta["name"], path)
        norm = "/" + path.lstrip("/")
        if norm == "/readyz" and self.registry.has(c.image, "unready") and not self.health.has_pod_override(
                self.cluster.name, meta["namespace"], meta["name"], norm):
            return Endpoint(503, {"status": "fail", "checks": {"warmup": {
                "status": "down", "error": "cache warm-up did not finish: context deadline exceeded"}}})
        if norm == "/version" and ep.status == 404:
            return Endpoint(200, {"version": split_image(c.image)[1], "service": service})
        return ep

    def _probe(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any], which: str,  # noqa: PLR0917
               now: float, wall: float) -> None:
        probe = as_dict(cspec.get(which))
        period = max(self.d(as_int(probe.get("periodSeconds"), 10) or 10), MIN_PROBE_PERIOD)
        if which == "readinessProbe":
            c.next_ready_probe = now + period
        else:
            c.next_live_probe = now + period
        ok, output = self.run_probe(pod, sim, c, cspec, probe)
        threshold_fail = max(as_int(probe.get("failureThreshold"), 3), 1)
        label = "Readiness" if which == "readinessProbe" else "Liveness"
        if ok:
            if which == "readinessProbe":
                c.ready_fail = 0
                c.ready = True
            else:
                c.live_fail = 0
            return
        self.event(pod, "Warning", "Unhealthy", f"{label} probe failed: {output}", field_path=self._cfield(c),
                   host=sim.node, wall=wall)
        if which == "readinessProbe":
            c.ready_fail += 1
            if c.ready_fail >= threshold_fail:
                c.ready = False
        else:
            c.live_fail += 1
            if c.live_fail >= threshold_fail:
                self.event(pod, "Normal", "Killing", f"Container {c.name} failed liveness probe, will be restarted",
                           field_path=self._cfield(c), host=sim.node, wall=wall)
                self._terminate(pod, sim, c, now, wall, 137, "Error")

    def run_probe(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any],
                  probe: dict[str, Any]) -> tuple[bool, str]:
        if "httpGet" in probe:
            hg = as_dict(probe["httpGet"])
            port = self._resolve_port(cspec, hg.get("port"))
            path = str(hg.get("path") or "/")
            scheme = str(hg.get("scheme") or "HTTP").lower()
            url = f"{scheme}://{sim.ip}:{port}{path if path.startswith('/') else '/' + path}"
            if port is None or not self.listening(cspec, port):
                return False, f'Get "{url}": dial tcp {sim.ip}:{port}: connect: connection refused'
            ep = self.endpoint(pod, c, path)
            if ep.latency > max(as_int(probe.get("timeoutSeconds"), 1), 1):
                return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
            if 200 <= ep.status < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {ep.status}"
        if "tcpSocket" in probe:
            port = self._resolve_port(cspec, as_dict(probe["tcpSocket"]).get("port"))
            if port is None or not self.listening(cspec, port):
                return False, f"dial tcp {sim.ip}:{port}: connect: connection refused"
        return True, ""

    # pod status

    def _cond(self, sim: PodSim, ctype: str, status: bool, wall: float, reason: str = "",  # noqa: PLR0917
              message: str = "") -> dict[str, Any]:
        st = "True" if status else "False"
        prev = sim.cond_times.get(ctype)
        if prev is None or prev[0] != st:
            sim.cond_times[ctype] = (st, wall)
        cond: dict[str, Any] = {"type": ctype, "status": st, "lastProbeTime": None,
                                "lastTransitionTime": fmt_time(sim.cond_times[ctype][1])}
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        return cond

    def pod_status(self, pod: dict[str, Any], sim: PodSim, wall: float) -> dict[str, Any]:
        spec = as_dict(pod.get("spec"))
        old = as_dict(pod.get("status"))
        status: dict[str, Any] = {"phase": "Pending", "qosClass": old.get("qosClass") or objects.qos_class(spec)}
        if sim.stage == "pending":
            status["conditions"] = []
            return status
        cs = list(sim.containers.values())
        terminated = [c for c in cs if "terminated" in c.state]
        policy = spec.get("restartPolicy", "Always")
        if cs and len(terminated) == len(cs) and policy != "Always":
            failed = any(c.state["terminated"].get("exitCode") for c in cs)
            status["phase"] = "Failed" if failed else "Succeeded"
        elif cs and all(c.started or c.restarts > 0 or "terminated" in c.state or c.last_state for c in cs):
            status["phase"] = "Running"
        all_ready = bool(cs) and all(c.ready for c in cs) and sim.stage != "terminating"
        unready = [c.name for c in cs if not c.ready]
        finished = status["phase"] in ("Succeeded", "Failed")
        if finished:
            ready_reason, ready_msg = "PodCompleted", ""
        elif all_ready:
            ready_reason, ready_msg = "", ""
        else:
            ready_reason, ready_msg = "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
        if all_ready and sim.ready_since is None:
            sim.ready_since = time.monotonic()
        elif not all_ready:
            sim.ready_since = None
        status["conditions"] = [
            self._cond(sim, "PodReadyToStartContainers", not finished, wall),
            self._cond(sim, "Initialized", True, wall),
            self._cond(sim, "Ready", all_ready, wall, ready_reason, ready_msg),
            self._cond(sim, "ContainersReady", all_ready, wall, ready_reason, ready_msg),
            self._cond(sim, "PodScheduled", True, wall),
        ]
        status["hostIP"] = f"192.168.49.{self.nodes.index(sim.node) + 2 if sim.node in self.nodes else 2}"
        status["hostIPs"] = [{"ip": status["hostIP"]}]
        status["podIP"] = sim.ip
        status["podIPs"] = [{"ip": sim.ip}]
        status["startTime"] = fmt_time(sim.start_wall)
        statuses = []
        for c in cs:
            entry: dict[str, Any] = {
                "name": c.name, "state": clone(c.state), "lastState": clone(c.last_state), "ready": c.ready,
                "restartCount": c.restarts, "image": c.image, "imageID": c.image_id, "started": c.started,
            }
            if c.container_id:
                entry["containerID"] = c.container_id
            statuses.append(entry)
        status["containerStatuses"] = statuses
        return status

    def _write_pod_status(self, pod: dict[str, Any], sim: PodSim, wall: float) -> None:
        status = self.pod_status(pod, sim, wall)
        current = self.store.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        if current is None:
            return
        if current.get("status") == status and as_dict(current.get("spec")).get("nodeName") == \
                as_dict(pod.get("spec")).get("nodeName"):
            sim.seen_rv = current["metadata"]["resourceVersion"]
            return
        new = clone(current)
        new["status"] = status
        if sim.node:
            new["spec"]["nodeName"] = sim.node
        stored = self._put(PODS, new)
        sim.seen_rv = stored["metadata"]["resourceVersion"]

    # logs

    def _start_logs(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any],  # noqa: PLR0917
                    behaviour: str, wall: float) -> list[tuple[float, str]]:
        ns = pod["metadata"]["namespace"]
        repo, tag = split_image(c.image)
        service = str(as_dict(pod["metadata"].get("labels")).get("app") or repo.rsplit("/", 1)[-1])

        def j(t: float, level: str, msg: str, **kw: Any) -> tuple[float, str]:
            return t, json.dumps({"time": fmt_micro(t), "level": level, "service": service, "msg": msg, **kw},
                                 separators=(",", ":"))

        if sim.kind == "job":
            argv = [str(x) for x in as_list(cspec.get("command")) + as_list(cspec.get("args"))]
            lines = [(wall, "+ " + " ".join(argv))] if argv else []
            tool = argv[0].rsplit("/", 1)[-1] if argv else ""
            if tool == "make" and len(argv) > 1 and argv[1] == "test":
                lines += [(wall, "go vet ./..."), (wall, "go test -race -count=1 ./...")]
            elif tool == "migrate":
                lines += [(wall, "migrate: connecting to database"), (wall, "migrate: current schema version 41")]
            else:
                lines += [(wall, f"running {tool or 'job'} ({c.image})")]
            return lines
        port = next(iter(self.container_ports(cspec).values()), 8080)
        lines = [
            j(wall, "info", "starting", version=tag, env=ns, pod=pod["metadata"]["name"]),
            j(wall, "info", "configuration loaded", profile=ns, file=f"/etc/{service}/application-{ns}.yaml"),
            j(wall, "info", "http server listening", addr=f":{port}"),
        ]
        if behaviour == "leaking":
            lines.append(j(wall, "warn", "heap usage growing", heap_alloc_mb=412, limit_mb=512))
        return lines

    def _end_logs(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, code: int, reason: str,  # noqa: PLR0917
                  wall: float) -> list[tuple[float, str]]:
        if sim.kind == "job":
            cspec = self._container_spec(pod, c.name)
            argv = [str(x) for x in as_list(cspec.get("command")) + as_list(cspec.get("args"))]
            tool = argv[0].rsplit("/", 1)[-1] if argv else ""
            if tool == "make" and len(argv) > 1 and argv[1] == "test":
                pkg = split_image(c.image)[0].rsplit("/", 1)[-1]
                if code == 0:
                    return [(wall, f"ok  \tregistry.example.com/{pkg}/internal/api\t0.412s"),
                            (wall, f"ok  \tregistry.example.com/{pkg}/internal/store\t1.093s"), (wall, "PASS")]
                return [(wall, "--- FAIL: TestRefundIdempotency (0.02s)"),
                        (wall, "    refund_test.go:88: expected status 200, got 409"), (wall, "FAIL"),
                        (wall, "make: *** [Makefile:21: test] Error 1")]
            if tool == "migrate":
                if code == 0:
                    return [(wall, "migrate: applied 0042_add_refund_index.sql"), (wall, "migrate: schema at 42")]
                return [(wall, "migrate: applying 0042_add_refund_index.sql"),
                        (wall, 'migrate: error: pq: relation "refunds" does not exist'),
                        (wall, "migrate: rolled back, schema still at 41")]
            return [(wall, "done")] if code == 0 else [(wall, f"error: command failed with exit code {code}")]
        if reason == "OOMKilled":
            return []
        if code != 0 and reason == "Error":
            return [
                (wall, json.dumps({"time": fmt_micro(wall), "level": "error", "service": self._service_of(pod, c),
                                   "msg": "failed to initialise provider client",
                                   "error": "missing required setting provider.api_key"}, separators=(",", ":"))),
                (wall, "panic: runtime error: invalid memory address or nil pointer dereference"),
                (wall, "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6b5c3a]"),
                (wall, ""), (wall, "goroutine 1 [running]:"), (wall, "main.main()"),
                (wall, "\t/src/cmd/server/main.go:42 +0x1ba"),
            ]
        return []

    @staticmethod
    def _service_of(pod: dict[str, Any], c: ContainerSim) -> str:
        app = as_dict(pod["metadata"].get("labels")).get("app")
        return str(app) if app else split_image(c.image)[0].rsplit("/", 1)[-1]

    def log_lines(self, namespace: str, name: str, container: str | None, previous: bool
                  ) -> tuple[list[tuple[float, str]], bool]:
        """The lines of a container instance, and whether that instance has finished."""
        pod = self.store.get(PODS, namespace, name)
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found',
                           {"name": name, "group": "", "kind": "pods"})
        names = [str(as_dict(c).get("name")) for c in as_list(as_dict(pod.get("spec")).get("containers"))]
        if not container:
            if len(names) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one "
                                                  f"of: [{' '.join(names)}]")
            container = names[0]
        if container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        sim = self.pods.get(pod["metadata"].get("uid", ""))
        c = sim.containers.get(container) if sim else None
        if c is None or not c.logs:
            waiting = as_dict(c.state.get("waiting")) if c else {}
            reason = str(waiting.get("reason") or "ContainerCreating")
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                reason = "trying and failing to pull image"
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: '
                                              f"{reason}")
        if previous:
            if len(c.logs) < 2:
                raise ApiError(400, "BadRequest",
                               f'previous terminated container "{container}" in pod "{name}" not found')
            return list(c.logs[-2]), True
        return list(c.logs[-1]), c.stage != "running"

    # ------------------------------------------------------------------ proxy

    def proxy_target(self, namespace: str, name: str, port: str) -> tuple[dict[str, Any], ContainerSim, int]:
        pod = self.store.get(PODS, namespace, name)
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "group": "", "kind": "pods"})
        sim = self.pods.get(pod["metadata"].get("uid", ""))
        containers = as_list(as_dict(pod.get("spec")).get("containers"))
        if sim is None or not sim.ip:
            raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
        chosen: dict[str, Any] = as_dict(containers[0]) if containers else {}
        number: int | None = None
        if port:
            for cspec in containers:
                cspec = as_dict(cspec)
                p = self._resolve_port(cspec, int(port) if port.isdigit() else port)
                if p is not None and (not port.isdigit() or p in self.container_ports(cspec).values()):
                    chosen, number = cspec, p
                    break
            if number is None:
                number = int(port) if port.isdigit() else None
        else:
            number = next(iter(self.container_ports(chosen).values()), 80)
        c = sim.containers.get(str(chosen.get("name")))
        if number is None:
            raise ApiError(503, "ServiceUnavailable", f'error trying to reach service: unknown port "{port}"')
        if c is None or c.stage != "running" or sim.stage == "terminating" or not self.listening(chosen, number):
            raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {sim.ip}:{number}: "
                                                      "connect: connection refused")
        return pod, c, number

    def service_target(self, namespace: str, name: str, port: str) -> tuple[str, str]:
        """Pick a ready pod behind a service: (pod name, target port)."""
        svc = self.store.get(SERVICES, namespace, name)
        if svc is None:
            raise ApiError(404, "NotFound", f'services "{name}" not found',
                           {"name": name, "group": "", "kind": "services"})
        spec = as_dict(svc.get("spec"))
        ports = [as_dict(p) for p in as_list(spec.get("ports"))]
        chosen = None
        for p in ports:
            if not port or str(p.get("name")) == port or str(p.get("port")) == port:
                chosen = p
                break
        if chosen is None:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
        sel = as_dict(spec.get("selector"))
        ready = []
        for pod in self.store.list(PODS, namespace):
            labels = as_dict(pod["metadata"].get("labels"))
            if not sel or any(labels.get(k) != v for k, v in sel.items()) or pod["metadata"].get("deletionTimestamp"):
                continue
            conds = as_list(as_dict(pod.get("status")).get("conditions"))
            if any(as_dict(x).get("type") == "Ready" and as_dict(x).get("status") == "True" for x in conds):
                ready.append(pod)
        if not ready:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
        pod = ready[self._next_ip % len(ready)]
        self._next_ip += 1
        target = chosen.get("targetPort", chosen.get("port"))
        return pod["metadata"]["name"], str(target)

    # ------------------------------------------------------------------ pods of controllers

    def new_pod(self, owner_rt: ResourceType, owner: dict[str, Any], wall: float | None = None) -> dict[str, Any]:
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

    def _owned(self, rt: ResourceType, namespace: str, uid: str) -> list[dict[str, Any]]:
        out = []
        for o in self.store.list(rt, namespace):
            ref = self.controller_of(o)
            if ref is not None and ref.get("uid") == uid:
                out.append(o)
        return out

    @staticmethod
    def pod_ready(pod: dict[str, Any]) -> bool:
        for cond in as_list(as_dict(pod.get("status")).get("conditions")):
            if as_dict(cond).get("type") == "Ready":
                return as_dict(cond).get("status") == "True"
        return False

    def _pod_available(self, pod: dict[str, Any], min_ready: int, now: float) -> tuple[bool, float]:
        if not self.pod_ready(pod) or pod["metadata"].get("deletionTimestamp"):
            return False, INF
        if min_ready <= 0:
            return True, INF
        sim = self.pods.get(pod["metadata"].get("uid", ""))
        since = sim.ready_since if sim and sim.ready_since is not None else now
        at = since + self.d(min_ready)
        return (now >= at), (INF if now >= at else at)

    # ------------------------------------------------------------------ replicasets

    def _sync_replicasets(self, now: float, wall: float) -> float:
        due = INF
        for rs in self.store.list(REPLICASETS):
            if rs["metadata"].get("deletionTimestamp"):
                continue
            due = min(due, self._sync_rs(rs, now, wall))
        return due

    def _sync_rs(self, rs: dict[str, Any], now: float, wall: float) -> float:
        m = rs["metadata"]
        spec = as_dict(rs.get("spec"))
        ns = m["namespace"]
        pods = list(self._owned(PODS, ns, m["uid"]))
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                  and as_dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")]
        want = as_int(spec.get("replicas"), 1)
        if len(active) < want:
            for _ in range(want - len(active)):
                pod = self.new_pod(REPLICASETS, rs, wall)
                self._put(PODS, pod)
                self.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", wall=wall)
            pods = self._owned(PODS, ns, m["uid"])
        elif len(active) > want:
            def rank(p: dict[str, Any]) -> tuple[Any, ...]:
                st = as_dict(p.get("status"))
                restarts = sum(as_int(as_dict(c).get("restartCount")) for c in as_list(st.get("containerStatuses")))
                return (bool(as_dict(p.get("spec")).get("nodeName")), st.get("phase") == "Running",
                        self.pod_ready(p), -restarts, -(parse_time(p["metadata"].get("creationTimestamp")) or 0))
            for p in sorted(active, key=rank)[: len(active) - want]:
                self.api.delete(PODS, ns, p["metadata"]["name"])
                self.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}", wall=wall)
            pods = self._owned(PODS, ns, m["uid"])
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
            "readyReplicas": sum(1 for p in active if self.pod_ready(p)),
            "availableReplicas": available,
            "observedGeneration": m.get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v or k == "replicas"}
        terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp"))
        if terminating:
            status["terminatingReplicas"] = terminating
        current = self._fresh(REPLICASETS, rs)
        if current is not None and as_dict(current.get("status")) != status:
            new = clone(current)
            new["status"] = status
            self._put(REPLICASETS, new)
        return due

    # ------------------------------------------------------------------ deployments

    def _sync_deployments(self, now: float, wall: float) -> float:
        due = INF
        for d in self.store.list(DEPLOYMENTS):
            if d["metadata"].get("deletionTimestamp"):
                continue
            due = min(due, self._sync_deployment(d, now, wall))
        return due

    @staticmethod
    def revision(rs: dict[str, Any]) -> int:
        try:
            return int(as_dict(rs["metadata"].get("annotations")).get(REVISION, "0"))
        except ValueError:
            return 0

    def _scale_rs(self, d: dict[str, Any], rs: dict[str, Any], replicas: int, wall: float) -> dict[str, Any]:
        rs = clone(self._fresh(REPLICASETS, rs) or rs)
        old = as_int(rs["spec"].get("replicas"), 1)
        surge, _ = objects.resolve_surge_unavailable(d)
        d_replicas = as_int(d["spec"].get("replicas"), 1)
        ann = rs["metadata"].setdefault("annotations", {})
        changed = old != replicas or ann.get(DESIRED) != str(d_replicas) or \
            ann.get(MAX_REPLICAS) != str(d_replicas + surge)
        if not changed:
            return rs
        rs["spec"]["replicas"] = replicas
        ann[DESIRED] = str(d_replicas)
        ann[MAX_REPLICAS] = str(d_replicas + surge)
        stored = self._put(REPLICASETS, rs)
        if old != replicas:
            direction = "up" if replicas > old else "down"
            self.event(d, "Normal", "ScalingReplicaSet",
                       f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas} from {old}", wall=wall)
        return stored

    def _new_rs_replicas(self, d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None) -> int:
        replicas = as_int(d["spec"].get("replicas"), 1)
        if as_dict(d["spec"].get("strategy")).get("type") == "Recreate":
            return replicas
        surge, _ = objects.resolve_surge_unavailable(d)
        current = sum(as_int(r["spec"].get("replicas"), 1) for r in all_rs)
        new_current = as_int(new_rs["spec"].get("replicas"), 1) if new_rs else 0
        max_total = replicas + surge
        if current >= max_total:
            return new_current
        up = min(max_total - current, replicas - new_current)
        return new_current + up

    def _max_unavailable(self, d: dict[str, Any]) -> int:
        replicas = as_int(d["spec"].get("replicas"), 1)
        if as_dict(d["spec"].get("strategy")).get("type") != "RollingUpdate" or replicas == 0:
            return 0
        _, unavailable = objects.resolve_surge_unavailable(d)
        return min(unavailable, replicas)

    @staticmethod
    def _get_cond(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
        for c in as_list(status.get("conditions")):
            if as_dict(c).get("type") == ctype:
                return as_dict(c)
        return None

    def _set_cond(self, status: dict[str, Any], ctype: str, st: str, reason: str, message: str, wall: float,  # noqa: PLR0917
                  keep_transition: bool = False) -> bool:
        cur = self._get_cond(status, ctype)
        if cur is not None and cur.get("status") == st and cur.get("reason") == reason and not keep_transition:
            return False
        cond = {"type": ctype, "status": st, "lastUpdateTime": fmt_time(wall), "lastTransitionTime": fmt_time(wall),
                "reason": reason, "message": message}
        if cur is not None and cur.get("status") == st:
            cond["lastTransitionTime"] = cur.get("lastTransitionTime", cond["lastTransitionTime"])
        status["conditions"] = [c for c in as_list(status.get("conditions")) if as_dict(c).get("type") != ctype]
        status["conditions"].append(cond)
        return True

    def _sync_deployment(self, d: dict[str, Any], now: float, wall: float) -> float:
        d = clone(d)
        m = d["metadata"]
        ns, uid = m["namespace"], m["uid"]
        spec = as_dict(d.get("spec"))
        status = clone(as_dict(d.get("status")))
        original_status = clone(status)
        original_ann = clone(as_dict(m.get("annotations")))
        paused = bool(spec.get("paused"))
        replicas = as_int(spec.get("replicas"), 1)
        pds = spec.get("progressDeadlineSeconds")

        # checkPausedConditions
        prog = self._get_cond(status, "Progressing")
        if not (prog and prog.get("reason") == "ProgressDeadlineExceeded"):
            paused_cond = prog is not None and prog.get("reason") == "DeploymentPaused"
            if paused and not paused_cond:
                self._set_cond(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", wall)
            elif not paused and paused_cond:
                self._set_cond(status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", wall)
                self.progress_mono[uid] = now

        rss = self._owned(REPLICASETS, ns, uid)
        want = objects.canonical_template(spec.get("template"))
        matching = [r for r in rss if self._canonical(r) == want]
        matching.sort(key=lambda r: parse_time(r["metadata"].get("creationTimestamp")) or 0)
        new_rs = matching[0] if matching else None
        old_rss = [r for r in rss if r is not new_rs]
        max_old = max((self.revision(r) for r in old_rss), default=0)
        new_revision = max_old + 1
        _surge, _ = objects.resolve_surge_unavailable(d)

        if new_rs is not None:
            rs = clone(new_rs)
            ann = rs["metadata"].setdefault("annotations", {})
            changed = False
            for k, v in as_dict(m.get("annotations")).items():
                if k not in _NOT_COPIED and ann.get(k) != v:
                    ann[k] = v
                    changed = True
            old_rev = self.revision(rs)
            if old_rev < new_revision:
                if REVISION in ann:
                    hist = ann.get(REVISION_HISTORY, "")
                    ann[REVISION_HISTORY] = f"{hist},{old_rev}" if hist else str(old_rev)
                ann[REVISION] = str(new_revision)
                changed = True
            if as_int(rs["spec"].get("minReadySeconds")) != as_int(spec.get("minReadySeconds")):
                rs["spec"]["minReadySeconds"] = as_int(spec.get("minReadySeconds"))
                changed = True
            if changed:
                new_rs = self._put(REPLICASETS, rs)
            m.setdefault("annotations", {})[REVISION] = as_dict(new_rs["metadata"].get("annotations")).get(
                REVISION, str(new_revision))
            if pds is not None and self._get_cond(status, "Progressing") is None:
                self._set_cond(status, "Progressing", "True", "FoundNewReplicaSet",
                               f'Found new replica set "{new_rs["metadata"]["name"]}"', wall)
                self.progress_mono[uid] = now
        elif not paused and not (as_dict(spec.get("strategy")).get("type") == "Recreate" and (
                any(as_int(r["spec"].get("replicas"), 1) > 0 for r in old_rss)
                or any(self._owned(PODS, ns, r["metadata"]["uid"]) for r in old_rss))):
            new_rs = self._create_rs(d, rss, new_revision, wall)
            m.setdefault("annotations", {})[REVISION] = str(new_revision)
            if pds is not None:
                self._set_cond(status, "Progressing", "True", "NewReplicaSetCreated",
                               f'Created new replica set "{new_rs["metadata"]["name"]}"', wall)
                self.progress_mono[uid] = now
            rss = self._owned(REPLICASETS, ns, uid)
            old_rss = [r for r in rss if r["metadata"]["uid"] != new_rs["metadata"]["uid"]]

        def refresh() -> None:
            nonlocal new_rs, old_rss, rss
            rss = self._owned(REPLICASETS, ns, uid)
            if new_rs is not None:
                nu = new_rs["metadata"]["uid"]
                new_rs = next((r for r in rss if r["metadata"]["uid"] == nu), None)
            old_rss = [r for r in rss if new_rs is None or r["metadata"]["uid"] != new_rs["metadata"]["uid"]]

        active = [r for r in ([new_rs] if new_rs else []) + old_rss if as_int(r["spec"].get("replicas"), 1) > 0]
        scaling_event = any(as_dict(r["metadata"].get("annotations")).get(DESIRED) not in (None, str(replicas))
                            for r in active)
        if paused or (scaling_event and len(active) <= 1):
            target = active[0] if active else (new_rs or (max(old_rss, key=lambda r: parse_time(
                r["metadata"].get("creationTimestamp")) or 0) if old_rss else None))
            if target is not None and (as_int(target["spec"].get("replicas"), 1) != replicas or scaling_event):
                self._scale_rs(d, target, replicas, wall)
                refresh()
        elif as_dict(spec.get("strategy")).get("type") == "Recreate":
            for r in old_rss:
                if as_int(r["spec"].get("replicas"), 1) > 0:
                    self._scale_rs(d, r, 0, wall)
            refresh()
            old_pods = [p for r in old_rss for p in self._owned(PODS, ns, r["metadata"]["uid"])]
            if not old_pods and new_rs is not None and as_int(new_rs["spec"].get("replicas"), 1) != replicas:
                self._scale_rs(d, new_rs, replicas, wall)
                refresh()
        elif new_rs is not None:
            # reconcileNewReplicaSet
            nr = as_int(new_rs["spec"].get("replicas"), 1)
            if nr > replicas:
                self._scale_rs(d, new_rs, replicas, wall)
            elif nr < replicas:
                want_new = self._new_rs_replicas(d, rss, new_rs)
                if want_new != nr:
                    self._scale_rs(d, new_rs, want_new, wall)
            refresh()
            self._reconcile_old(d, new_rs, old_rss, wall)
            refresh()

        # cleanupDeployment
        limit = spec.get("revisionHistoryLimit")
        if isinstance(limit, int) and not paused:
            cleanable = [r for r in old_rss if as_int(r["spec"].get("replicas"), 1) == 0
                         and as_int(as_dict(r.get("status")).get("replicas")) == 0
                         and not r["metadata"].get("deletionTimestamp")]
            if len(cleanable) > limit:
                cleanable.sort(key=self.revision)
                for r in cleanable[: len(cleanable) - limit]:
                    self.store.remove(REPLICASETS, ns, r["metadata"]["name"])
                refresh()

        # calculateStatus
        all_rs = ([new_rs] if new_rs else []) + old_rss
        available = sum(as_int(as_dict(r.get("status")).get("availableReplicas")) for r in all_rs)
        total_spec = sum(as_int(r["spec"].get("replicas"), 1) for r in all_rs)
        counts = {
            "observedGeneration": m.get("generation", 1),
            "replicas": sum(as_int(as_dict(r.get("status")).get("replicas")) for r in all_rs),
            "updatedReplicas": as_int(as_dict(new_rs.get("status")).get("replicas")) if new_rs else 0,
            "readyReplicas": sum(as_int(as_dict(r.get("status")).get("readyReplicas")) for r in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(total_spec - available, 0),
        }
        for k, v in counts.items():
            if v:
                status[k] = v
            else:
                status.pop(k, None)
        if as_int(status.get("collisionCount")) == 0:
            status.pop("collisionCount", None)
        if available >= replicas - self._max_unavailable(d):
            self._set_cond(status, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", wall)
        else:
            self._set_cond(status, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", wall)

        due = INF
        # syncRolloutStatus
        if pds is not None and not paused:
            cur = self._get_cond(status, "Progressing")
            complete_already = status.get("replicas", 0) == status.get("updatedReplicas", 0) and \
                cur is not None and cur.get("reason") == "NewReplicaSetAvailable"
            rs_name = new_rs["metadata"]["name"] if new_rs else ""
            if not complete_already:
                if (status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas
                        and status.get("availableReplicas", 0) == replicas
                        and status.get("observedGeneration", 0) >= m.get("generation", 1)):
                    msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if new_rs else \
                        "Deployment has successfully progressed."
                    self._set_cond(status, "Progressing", "True", "NewReplicaSetAvailable", msg, wall)
                    self.progress_mono[uid] = now
                elif self._progressing(original_status, status):
                    msg = f'ReplicaSet "{rs_name}" is progressing.' if new_rs else "Deployment is progressing."
                    self._set_cond(status, "Progressing", "True", "ReplicaSetUpdated", msg, wall, keep_transition=True)
                    self.progress_mono[uid] = now
                elif cur is not None and cur.get("reason") not in ("NewReplicaSetAvailable",
                                                                   "ProgressDeadlineExceeded"):
                    since = self.progress_mono.get(uid)
                    if since is None:
                        since = now - max(0.0, wall - (parse_time(cur.get("lastUpdateTime")) or wall)) * 1.0
                        self.progress_mono[uid] = since
                    deadline = since + self.d(as_int(pds, 600))
                    if now > deadline:
                        msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if new_rs else \
                            f'Deployment "{m["name"]}" has timed out progressing.'
                        self._set_cond(status, "Progressing", "False", "ProgressDeadlineExceeded", msg, wall)
                    else:
                        due = deadline + 0.001

        fresh = self.store.get(DEPLOYMENTS, ns, m["name"])
        if fresh is None:
            return due
        if status != original_status or as_dict(m.get("annotations")) != original_ann:
            new = clone(fresh)
            new["status"] = status
            if as_dict(m.get("annotations")) != original_ann:
                new["metadata"]["annotations"] = as_dict(m.get("annotations"))
            self._put(DEPLOYMENTS, new)
        return due

    @staticmethod
    def _progressing(old: dict[str, Any], new: dict[str, Any]) -> bool:
        old_old = as_int(old.get("replicas")) - as_int(old.get("updatedReplicas"))
        new_old = as_int(new.get("replicas")) - as_int(new.get("updatedReplicas"))
        return (as_int(new.get("updatedReplicas")) > as_int(old.get("updatedReplicas")) or new_old < old_old
                or as_int(new.get("readyReplicas")) > as_int(old.get("readyReplicas"))
                or as_int(new.get("availableReplicas")) > as_int(old.get("availableReplicas")))

    def _create_rs(self, d: dict[str, Any], rss: list[dict[str, Any]], revision: int, wall: float) -> dict[str, Any]:
        m, spec = d["metadata"], d["spec"]
        status = d.setdefault("status", {})
        collision = as_int(status.get("collisionCount"))
        while True:
            h = objects.template_hash(spec.get("template"), collision)
            name = f"{m['name']}-{h}"
            existing = self.store.get(REPLICASETS, m["namespace"], name)
            if existing is None:
                break
            collision += 1
            status["collisionCount"] = collision
        tmpl = clone(spec["template"])
        tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
        sel = clone(spec["selector"])
        sel.setdefault("matchLabels", {})["pod-template-hash"] = h
        surge, _ = objects.resolve_surge_unavailable(d)
        replicas = as_int(spec.get("replicas"), 1)
        ann = {k: v for k, v in as_dict(m.get("annotations")).items() if k not in _NOT_COPIED}
        ann.update({REVISION: str(revision), DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge)})
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": m["namespace"], "uid": new_uid(),
                         "creationTimestamp": fmt_time(wall),
                         "generation": 1, "labels": dict(tmpl["metadata"]["labels"]), "annotations": ann,
                         "ownerReferences": [self.owner_ref(DEPLOYMENTS, d)]},
            "spec": {"replicas": 0, "selector": sel, "template": tmpl},
            "status": {"replicas": 0},
        }
        if as_int(spec.get("minReadySeconds")):
            rs["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        rs["spec"]["replicas"] = self._new_rs_replicas(d, rss, None)
        stored = self._put(REPLICASETS, rs)
        if rs["spec"]["replicas"] > 0:
            self.event(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {name} to {rs['spec']['replicas']}",
                       wall=wall)
        return stored

    def _reconcile_old(self, d: dict[str, Any], new_rs: dict[str, Any], old_rss: list[dict[str, Any]],
                       wall: float) -> None:
        old_count = sum(as_int(r["spec"].get("replicas"), 1) for r in old_rss)
        if old_count == 0:
            return
        all_rs = [new_rs, *old_rss]
        all_count = sum(as_int(r["spec"].get("replicas"), 1) for r in all_rs)
        replicas = as_int(d["spec"].get("replicas"), 1)
        min_available = replicas - self._max_unavailable(d)
        new_unavailable = as_int(new_rs["spec"].get("replicas"), 1) - as_int(
            as_dict(new_rs.get("status")).get("availableReplicas"))
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        old_sorted = sorted(old_rss, key=lambda r: parse_time(r["metadata"].get("creationTimestamp")) or 0)
        # cleanupUnhealthyReplicas
        total = 0
        for r in old_sorted:
            if total >= max_scaled_down:
                break
            spec_r = as_int(r["spec"].get("replicas"), 1)
            avail = as_int(as_dict(r.get("status")).get("availableReplicas"))
            if spec_r in (0, avail):
                continue
            down = min(max_scaled_down - total, spec_r - avail)
            self._scale_rs(d, r, spec_r - down, wall)
            total += down
        # scaleDownOldReplicaSetsForRollingUpdate
        fresh_old = [self._fresh(REPLICASETS, r) for r in old_sorted]
        fresh_all = [self._fresh(REPLICASETS, new_rs), *fresh_old]
        available = sum(as_int(as_dict(r.get("status")).get("availableReplicas")) for r in fresh_all if r)
        if available <= min_available:
            return
        to_scale = available - min_available
        done = 0
        for r in fresh_old:
            if r is None or done >= to_scale:
                continue
            spec_r = as_int(r["spec"].get("replicas"), 1)
            if spec_r == 0:
                continue
            down = min(spec_r, to_scale - done)
            self._scale_rs(d, r, spec_r - down, wall)
            done += down

    # ------------------------------------------------------------------ jobs

    def _sync_jobs(self, now: float, wall: float) -> float:
        due = INF
        for job in self.store.list(JOBS):
            if job["metadata"].get("deletionTimestamp"):
                continue
            due = min(due, self._sync_job(job, now, wall))
        live = {j["metadata"].get("uid") for j in self.store.list(JOBS)}
        for uid in [u for u in self.jobs if u not in live]:
            del self.jobs[uid]
        return due

    def _sync_job(self, job: dict[str, Any], now: float, wall: float) -> float:
        m = job["metadata"]
        ns, uid = m["namespace"], m["uid"]
        spec = as_dict(job.get("spec"))
        status = clone(as_dict(job.get("status")))
        original = clone(status)
        sim = self.jobs.setdefault(uid, JobSim())
        conds = {as_dict(c).get("type"): as_dict(c) for c in as_list(status.get("conditions"))}
        finished = any(conds.get(t, {}).get("status") == "True" for t in ("Complete", "Failed"))
        if finished:
            ttl = spec.get("ttlSecondsAfterFinished")
            if isinstance(ttl, int):
                if sim.finished_at is None:
                    sim.finished_at = now
                at = sim.finished_at + self.d(ttl)
                if now >= at:
                    self.store.remove(JOBS, ns, m["name"])
                    return INF
                return at
            return INF
        if spec.get("suspend"):
            return INF
        pods = self._owned(PODS, ns, uid)
        for p in pods:
            phase = as_dict(p.get("status")).get("phase")
            if phase == "Succeeded":
                sim.succeeded.add(p["metadata"]["uid"])
            elif phase == "Failed" and p["metadata"]["uid"] not in sim.failed:
                sim.failed.add(p["metadata"]["uid"])
                sim.next_create = now + self.d(min(10 * 2 ** (len(sim.failed) - 1), 360))
        active = [p for p in pods if as_dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")
                  and not p["metadata"].get("deletionTimestamp")]
        restarts = 0
        if as_dict(as_dict(spec.get("template")).get("spec")).get("restartPolicy") == "OnFailure":
            for p in active:
                restarts += sum(as_int(as_dict(c).get("restartCount"))
                                for c in as_list(as_dict(p.get("status")).get("containerStatuses")))
        failed = len(sim.failed) + restarts
        completions = as_int(spec.get("completions"), 1)
        parallelism = as_int(spec.get("parallelism"), 1)
        backoff_limit = as_int(spec.get("backoffLimit"), 6)
        if "startTime" not in status:
            status["startTime"] = fmt_time(wall)
        start = parse_time(status["startTime"]) or wall
        ads = spec.get("activeDeadlineSeconds")
        due = INF

        def finish(ctype: str, reason: str, message: str, etype: str, ereason: str, emsg: str) -> None:  # noqa: PLR0917
            interim = "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget"
            ts = fmt_time(wall)
            status["conditions"] = [c for c in as_list(status.get("conditions"))
                                    if as_dict(c).get("type") not in (interim, ctype)]
            for t in (interim, ctype):
                status["conditions"].append({"type": t, "status": "True", "lastProbeTime": ts,
                                             "lastTransitionTime": ts, "reason": reason, "message": message})
            if ctype == "Complete":
                status["completionTime"] = ts
            self.event(job, etype, ereason, emsg, wall=wall)
            sim.finished_at = now
            for p in active:
                self.api.delete(PODS, ns, p["metadata"]["name"])

        if len(sim.succeeded) >= completions:
            finish("Complete", "CompletionsReached", "Reached expected number of succeeded pods", "Normal",
                   "Completed", "Job completed")
            active = []
        elif failed > backoff_limit:
            finish("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", "Warning",
                   "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            active = []
        elif isinstance(ads, int) and wall - start > self.d(ads):
            finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", "Warning",
                   "DeadlineExceeded", "Job was active longer than specified deadline")
            active = []
        else:
            if isinstance(ads, int):
                due = now + max(0.0, start + self.d(ads) - wall) + 0.001
            need = min(parallelism, completions - len(sim.succeeded)) - len(active)
            if need > 0:
                if now >= sim.next_create:
                    for _ in range(need):
                        pod = self.new_pod(JOBS, job, wall)
                        self._put(PODS, pod)
                        self.event(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                   wall=wall)
                    active = [p for p in self._owned(PODS, ns, uid)
                              if as_dict(p.get("status")).get("phase") not in ("Succeeded", "Failed")
                              and not p["metadata"].get("deletionTimestamp")]
                else:
                    due = min(due, sim.next_create)
        counts = {"active": len(active), "succeeded": len(sim.succeeded), "failed": failed}
        for k, v in counts.items():
            if v:
                status[k] = v
            else:
                status.pop(k, None)
        status["ready"] = sum(1 for p in active if self.pod_ready(p))
        status["terminating"] = sum(1 for p in self._owned(PODS, ns, uid) if p["metadata"].get("deletionTimestamp"))
        status["uncountedTerminatedPods"] = {}
        if status != original:
            fresh = self._fresh(JOBS, job)
            if fresh is not None:
                new = clone(fresh)
                new["status"] = status
                self._put(JOBS, new)
        return due

    # ------------------------------------------------------------------ hpa

    def _sync_hpas(self, now: float, wall: float) -> float:
        for hpa in self.store.list(HPAS):
            ref = as_dict(as_dict(hpa.get("spec")).get("scaleTargetRef"))
            if ref.get("kind") != "Deployment":
                continue
            d = self.store.get(DEPLOYMENTS, hpa["metadata"]["namespace"], str(ref.get("name")))
            if d is None:
                continue
            current = as_int(as_dict(d.get("status")).get("replicas"))
            status = as_dict(hpa.get("status"))
            if status.get("currentReplicas") != current:
                new = clone(hpa)
                new.setdefault("status", {})["currentReplicas"] = current
                new["status"]["desiredReplicas"] = max(as_int(hpa["spec"].get("minReplicas"), 1),
                                                       min(as_int(d["spec"].get("replicas"), 1),
                                                           as_int(hpa["spec"].get("maxReplicas"), 1)))
                self._put(HPAS, new)
        return INF

    # ------------------------------------------------------------------ seeding (used by world.py)

    def seed_pod(self, rs: dict[str, Any], created: float, *, override: str = "", restarts: int = 0,
                 crash_ago: float = 60.0) -> dict[str, Any]:
        """A pod of rs that has been running since `created` (wall time), already in its steady state."""
        self._seeding = True
        try:
            return self._seed_pod(rs, created, override, restarts, crash_ago)
        finally:
            self._seeding = False

    def _seed_pod(self, rs: dict[str, Any], created: float, override: str, restarts: int,
                  crash_ago: float) -> dict[str, Any]:
        now, wall = time.monotonic(), time.time()
        pod = self.new_pod(REPLICASETS, rs, created)
        sim = self._new_sim(pod)
        sim.override = override
        sim.node = self.nodes[self._next_node % len(self.nodes)]
        self._next_node += 1
        self._schedule(pod, sim, created, announce=False)
        for c in sim.containers.values():
            cspec = self._container_spec(pod, c.name)
            self.node_images.setdefault(sim.node, set()).add(c.image)
            c.image_id = self.registry.image_id(c.image)
            behaviour = self._behaviour(pod, sim, c)
            self._start_container(pod, sim, c, cspec, now, created)
            c.logs[-1] = [(created + 0.2 * i, line) for i, (_t, line) in enumerate(c.logs[-1])]
            if behaviour in ("crashing", "leaking"):
                code, reason = (1, "Error") if behaviour == "crashing" else (137, "OOMKilled")
                c.restarts = max(restarts, 1) - 1
                c.started_wall = wall - crash_ago - self.d(CRASH_RUN_S)
                self._seeding = False
                self._terminate(pod, sim, c, now, wall - crash_ago, code, reason)
                if restarts > 1:
                    m = pod["metadata"]
                    self.event(pod, "Warning", "BackOff",
                               f"Back-off restarting failed container {c.name} in pod "
                               f"{m['name']}_{m['namespace']}({m['uid']})",
                               field_path=self._cfield(c), host=sim.node, wall=wall, count=restarts - 1)
                self._seeding = True
                c.restarts = max(restarts, 1)
                c.logs.insert(0, list(c.logs[-1]))
                remaining = max(self._backoff(c.restarts) - crash_ago, 5.0)
                c.due = now + self.d(remaining)
                continue
            # steady state: run the readiness probe once now to settle Ready
            rp = as_dict(cspec.get("readinessProbe"))
            if rp:
                ok, output = self.run_probe(pod, sim, c, cspec, rp)
                c.ready = ok
                if not ok:
                    # failing for the last half hour (or since the pod started, if later)
                    period = as_int(rp.get("periodSeconds"), 10) or 10
                    since = max(created + 5, wall - 1800)
                    self.event(pod, "Warning", "Unhealthy", f"Readiness probe failed: {output}",
                               field_path=self._cfield(c), host=sim.node, wall=wall,
                               count=max(int((wall - since) // period), 1), first=since, force=True)
                c.ready_fail = 0 if ok else 3
                c.next_ready_probe = now + max(self.d(as_int(rp.get("periodSeconds"), 10)), MIN_PROBE_PERIOD)
            lp = as_dict(cspec.get("livenessProbe"))
            if lp:
                c.next_live_probe = now + max(self.d(as_int(lp.get("periodSeconds"), 10)), MIN_PROBE_PERIOD)
            c.due = min(c.end_due, c.next_ready_probe, c.next_live_probe)
        for ctype in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"):
            sim.cond_times[ctype] = ("True", created + 3)
        status = self.pod_status(pod, sim, wall)
        if all(c.ready for c in sim.containers.values()):
            sim.ready_since = now - 3600
        pod["status"] = status
        stored = self._put(PODS, pod)
        sim.seen_rv = stored["metadata"]["resourceVersion"]
        sim.due = min(c.due for c in sim.containers.values()) if sim.containers else INF
        return stored
