"""The simulated kubelet and scheduler of one sandbox cluster: each pod is placed on a node, pulls its images
(ErrImagePull, ImagePullBackOff), waits for its ConfigMaps (CreateContainerConfigError), starts its
containers, runs their probes (probes.py), and lives out what its image does (registry.py): runs, crashes
into CrashLoopBackOff, is OOMKilled, or, for a Job's pod, exits 0 or 1. Then it reports the pod's status
(pod_status.py) and, on deletion, terminates it.

seed_pod writes a pod that has been running for a while, already in its steady state (used by world.py).
"""

from __future__ import annotations

import random
import time
from typing import Any

from sandbox.kube.registry import split_image
from sandbox.kube.resources import CONFIGMAPS, PODS, REPLICASETS
from sandbox.kube.sim import logs, probes
from sandbox.kube.sim.commands import argv_of, plain_exit
from sandbox.kube.sim.core import INF, Core
from sandbox.kube.sim.network import LEAK_RUN_S, endpoint
from sandbox.kube.sim.pod_state import ContainerSim, PodSim, cfield, container_spec
from sandbox.kube.sim.pod_status import pod_status
from sandbox.kube.sim.probes import MIN_PROBE_PERIOD, run_probe
from sandbox.kube.util import as_dict, as_int, as_list, clone, fmt_time, new_uid

# simulated durations, in seconds at time_scale 1.0
SCHEDULE_S = 0.1
PULL_S = 0.8
START_S = 0.3
TERMINATE_S = 0.5
CRASH_RUN_S = 1.5
JOB_RUN_S = 2.0
MAX_RUN_LINES = 5000  # what pods/log keeps of one container run


class Kubelet:
    def __init__(self, core: Core):
        self.core = core
        self.pods: dict[str, PodSim] = {}  # by pod uid
        self.nodes = [f"sandbox-{core.cluster_name}-{i}" for i in (1, 2, 3)]
        self.node_images: dict[str, set[str]] = {n: set() for n in self.nodes}
        self._next_node = 0
        self.ip_counter = 2
        self.rng = random.Random(f"sandbox-kubelet-{core.cluster_name}")

    def ready_since(self, uid: str) -> float | None:
        """Since when (monotonic) all containers of the pod have been ready, None if they are not."""
        sim = self.pods.get(uid)
        return sim.ready_since if sim is not None else None

    def step_pods(self, now: float, wall: float) -> float:
        due = INF
        for pod in self.core.store.list(PODS):
            uid = pod["metadata"].get("uid", "")
            sim = self.pods.get(uid)
            if sim is None:
                sim = self._new_sim(pod)
            if sim.due > now and sim.seen_rv == pod["metadata"].get("resourceVersion"):
                due = min(due, sim.due)
                continue
            sim.due = self._step_pod(pod, sim, now, wall)
            due = min(due, sim.due)
        live = {p["metadata"].get("uid") for p in self.core.store.list(PODS)}
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
                sim.due = now + self.core.d(TERMINATE_S)
                for c in sim.containers.values():
                    if c.stage == "running":
                        self.core.event(pod, "Normal", "Killing", f"Stopping container {c.name}",
                                        field_path=f"spec.containers{{{c.name}}}", host=sim.node)
                    c.ready = False
            if now >= sim.due:
                self.core.store.remove(PODS, meta["namespace"], meta["name"])
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
                    sim.due = now + self.core.d(SCHEDULE_S)
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
        self.ip_counter += 1
        node_index = self.nodes.index(sim.node) if sim.node in self.nodes else 0
        sim.ip = f"10.244.{node_index}.{self.ip_counter % 250 + 2}"
        sim.stage = "scheduled"
        sim.start_wall = wall
        pod["spec"]["nodeName"] = sim.node
        if announce:
            m = pod["metadata"]
            self.core.event(pod, "Normal", "Scheduled",
                            f"Successfully assigned {m['namespace']}/{m['name']} to {sim.node}",
                            component="default-scheduler")

    def _behaviour(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim) -> str:
        if sim.override and c.name == next(iter(sim.containers), c.name):
            return sim.override
        if sim.kind == "job":
            code = self._job_exit(pod, c)
            return "failing" if code else "ok"
        for b in ("crashing", "leaking"):
            if self.core.registry.has(c.image, b):
                return b
        return "ok"

    def _job_exit(self, pod: dict[str, Any], c: ContainerSim) -> int:
        """A Job container's exit code: what its command plainly means (`false`, `sh -c 'exit 3'`), else
        1 for an image the registry marks `failing` and 0 for any other."""
        spec = container_spec(pod, c.name)
        code = plain_exit(argv_of(as_list(spec.get("command")), as_list(spec.get("args"))))
        if code is not None:
            return code
        return 1 if self.core.registry.has(c.image, "failing") else 0

    def _emit(self, pod: dict[str, Any], c: ContainerSim, lines: list[tuple[float, str]]) -> None:
        """The container prints lines: kept for pods/log (the current run, bounded) and, unless the seeding
        writes what already happened (the seed's log history has it), handed to the log collector."""
        if not lines:
            return
        run = c.logs[-1]
        run.extend(lines)
        if len(run) > MAX_RUN_LINES:
            del run[: len(run) - MAX_RUN_LINES]
        if not self.core.seeding:
            meta = pod["metadata"]
            labels = {"namespace": meta["namespace"], "pod": meta["name"], "container": c.name}
            app = as_dict(meta.get("labels")).get("app")
            if app:
                labels["app"] = str(app)
            self.core.log_outbox.append((labels, list(lines)))

    def _log_tick(self, pod: dict[str, Any], c: ContainerSim, cspec: dict[str, Any], now: float,
                  wall: float) -> None:
        """A running service logs what it does: its traffic, or, while a check of its readiness endpoint is
        down (the orders staging database), that failure; the next line comes after a gap in simulated time."""
        ready_path = str(as_dict(as_dict(cspec.get("readinessProbe")).get("httpGet")).get("path") or "/readyz")
        ep = endpoint(self.core, pod, c, ready_path)
        down = logs.down_checks(ep.status, ep.body)
        c.log_ticks += 1
        self._emit(pod, c, logs.tick_lines(pod, c, wall, self.rng, down, c.log_ticks))
        c.next_log = now + self.core.d(logs.next_gap(pod, self.rng, failing=bool(down)))

    def _backoff(self, n: int) -> float:
        return float(min(10 * 2 ** max(n, 0), 300))

    def _step_container(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, now: float, wall: float) -> float:
        cspec = container_spec(pod, c.name)
        for _ in range(20):
            if c.due > now:
                break
            if c.stage == "new":
                policy = cspec.get("imagePullPolicy", "IfNotPresent")
                if policy != "Always" and c.image in self.node_images.get(sim.node, set()):
                    self.core.event(pod, "Normal", "Pulled", f'Container image "{c.image}" already present on machine',
                                    field_path=cfield(c), host=sim.node, wall=wall)
                    c.stage, c.due = "starting", now + self.core.d(START_S)
                    c.image_id = self.core.registry.image_id(c.image)
                elif policy == "Never":
                    c.state = {"waiting": {"reason": "ErrImageNeverPull",
                                           "message": f'Container image "{c.image}" is not present with pull '
                                                      "policy of Never"}}
                    c.stage, c.due = "done", INF
                else:
                    self.core.event(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', field_path=cfield(c),
                                    host=sim.node, wall=wall)
                    c.stage, c.due = "pulling", now + self.core.d(PULL_S)
            elif c.stage == "pulling":
                if not self.core.registry.exists(c.image):
                    _repo, _tag = split_image(c.image)
                    why = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{c.image}": failed '
                           f'to resolve reference "{c.image}": {c.image}: not found')
                    c.state = {"waiting": {"reason": "ErrImagePull", "message": why}}
                    self.core.event(pod, "Warning", "Failed", f'Failed to pull image "{c.image}": {why}',
                                    field_path=cfield(c), host=sim.node, wall=wall)
                    self.core.event(pod, "Warning", "Failed", "Error: ErrImagePull", field_path=cfield(c),
                                    host=sim.node, wall=wall)
                    c.stage, c.due = "pull_error", now + self.core.d(1.0)
                else:
                    took = int(PULL_S * 1000 + (hash(c.image) % 400))
                    self.core.event(pod, "Normal", "Pulled",
                                    f'Successfully pulled image "{c.image}" in {took}ms ({took}ms including waiting). '
                                    f"Image size: {self.core.registry.size(c.image)} bytes.",
                                    field_path=cfield(c), host=sim.node, wall=wall)
                    self.node_images.setdefault(sim.node, set()).add(c.image)
                    c.image_id = self.core.registry.image_id(c.image)
                    c.stage, c.due = "starting", now + self.core.d(START_S)
            elif c.stage == "pull_error":
                c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.image}"'}}
                self.core.event(pod, "Normal", "BackOff", f'Back-off pulling image "{c.image}"',
                                field_path=cfield(c), host=sim.node, wall=wall)
                self.core.event(pod, "Warning", "Failed", "Error: ImagePullBackOff", field_path=cfield(c),
                                host=sim.node, wall=wall)
                c.stage, c.due = "pull_backoff", now + self.core.d(self._backoff(c.pull_attempts))
                c.pull_attempts += 1
            elif c.stage == "pull_backoff":
                self.core.event(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', field_path=cfield(c),
                                host=sim.node, wall=wall)
                c.stage, c.due = "pulling", now + self.core.d(PULL_S)
            elif c.stage in ("starting", "config_error"):
                missing = self._missing_config(pod, cspec)
                if missing:
                    msg = f'configmap "{missing}" not found'
                    c.state = {"waiting": {"reason": "CreateContainerConfigError", "message": msg}}
                    self.core.event(pod, "Warning", "Failed", f"Error: {msg}", field_path=cfield(c),
                                    host=sim.node, wall=wall)
                    c.stage, c.due = "config_error", now + self.core.d(10)
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
                if now >= c.next_log and c.stage == "running":
                    self._log_tick(pod, c, cspec, now, wall)
                if c.stage == "running":
                    c.due = min(c.end_due, c.next_ready_probe, c.next_live_probe, c.next_log)
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
            if self.core.store.get(CONFIGMAPS, ns, name) is None:
                return name
        return ""

    def _start_container(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any],  # noqa: PLR0917
                         now: float, wall: float) -> None:
        self.core.event(pod, "Normal", "Created", f"Created container: {c.name}", field_path=cfield(c),
                        host=sim.node, wall=wall)
        self.core.event(pod, "Normal", "Started", f"Started container {c.name}", field_path=cfield(c),
                        host=sim.node, wall=wall)
        c.container_id = "containerd://" + new_uid().replace("-", "") + new_uid().replace("-", "")[:32]
        c.started_wall = wall
        c.state = {"running": {"startedAt": fmt_time(wall)}}
        c.started = True
        c.stage = "running"
        c.ready_fail = c.live_fail = 0
        behaviour = self._behaviour(pod, sim, c)
        c.logs.append([])
        if len(c.logs) > 5:
            del c.logs[0]
        self._emit(pod, c, logs.start_lines(pod, sim, c, cspec, behaviour, wall))
        c.log_ticks = 0
        c.next_log = INF if sim.kind == "job" else now + self.core.d(logs.next_gap(pod, self.rng, failing=False))
        c.end_due, c.exit = INF, (0, "Completed")
        if sim.kind == "job":
            c.end_due = now + self.core.d(JOB_RUN_S)
            code = self._job_exit(pod, c) if not sim.override else (1 if behaviour == "failing" else 0)
            c.exit = (code, "Error") if code else (0, "Completed")
        elif behaviour == "crashing":
            c.end_due, c.exit = now + self.core.d(CRASH_RUN_S), (1, "Error")
        elif behaviour == "leaking":
            c.end_due, c.exit = now + self.core.d(LEAK_RUN_S), (137, "OOMKilled")
        rp, lp = as_dict(cspec.get("readinessProbe")), as_dict(cspec.get("livenessProbe"))
        c.ready = not rp
        c.next_ready_probe = now + self.core.d(as_int(rp.get("initialDelaySeconds"))) + 0.001 if rp else INF
        c.next_live_probe = now + self.core.d(as_int(lp.get("initialDelaySeconds"))) + self.core.d(1) if lp else INF
        if sim.kind == "job":
            c.next_ready_probe = c.next_live_probe = INF
        c.due = min(c.end_due, c.next_ready_probe, c.next_live_probe, c.next_log)

    def _terminate(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, now: float, wall: float, code: int,  # noqa: PLR0917
                   reason: str) -> None:
        term = {"exitCode": code, "reason": reason, "startedAt": fmt_time(c.started_wall),
                "finishedAt": fmt_time(wall), "containerID": c.container_id}
        if c.logs:
            self._emit(pod, c, logs.end_lines(pod, sim, c, code, reason, wall))
        c.next_log = INF
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
            self.core.event(pod, "Warning", "BackOff",
                            f"Back-off restarting failed container {c.name} in pod "
                            f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                            field_path=cfield(c), host=sim.node, wall=wall)
            c.stage, c.due = "backoff", now + self.core.d(wait)
        else:
            c.state = {"terminated": term}
            c.stage, c.due = "done", INF

    def _probe(self, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any], which: str,  # noqa: PLR0917
               now: float, wall: float) -> None:
        if probes.probe(self.core, pod, sim, c, cspec, which, now, wall):
            self.core.event(pod, "Normal", "Killing", f"Container {c.name} failed liveness probe, will be restarted",
                            field_path=cfield(c), host=sim.node, wall=wall)
            self._terminate(pod, sim, c, now, wall, 137, "Error")

    def _write_pod_status(self, pod: dict[str, Any], sim: PodSim, wall: float) -> None:
        status = pod_status(pod, sim, wall, self.nodes)
        current = self.core.store.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
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
        stored = self.core.put(PODS, new)
        sim.seen_rv = stored["metadata"]["resourceVersion"]

    # ------------------------------------------------------------------ seeding (used by world.py)

    def seed_pod(self, rs: dict[str, Any], created: float, *, override: str = "", restarts: int = 0,
                 crash_ago: float = 60.0) -> dict[str, Any]:
        """A pod of rs that has been running since `created` (wall time), already in its steady state."""
        self.core.seeding = True
        try:
            return self._seed_pod(rs, created, override, restarts, crash_ago)
        finally:
            self.core.seeding = False

    def _seed_pod(self, rs: dict[str, Any], created: float, override: str, restarts: int,
                  crash_ago: float) -> dict[str, Any]:
        now, wall = time.monotonic(), time.time()
        pod = self.core.new_pod(REPLICASETS, rs, created)
        sim = self._new_sim(pod)
        sim.override = override
        sim.node = self.nodes[self._next_node % len(self.nodes)]
        self._next_node += 1
        self._schedule(pod, sim, created, announce=False)
        for c in sim.containers.values():
            cspec = container_spec(pod, c.name)
            self.node_images.setdefault(sim.node, set()).add(c.image)
            c.image_id = self.core.registry.image_id(c.image)
            behaviour = self._behaviour(pod, sim, c)
            self._start_container(pod, sim, c, cspec, now, created)
            c.logs[-1] = [(created + 0.2 * i, line) for i, (_t, line) in enumerate(c.logs[-1])]
            if behaviour in ("crashing", "leaking"):
                code, reason = (1, "Error") if behaviour == "crashing" else (137, "OOMKilled")
                c.restarts = max(restarts, 1) - 1
                c.started_wall = wall - crash_ago - self.core.d(CRASH_RUN_S)
                self.core.seeding = False
                self._terminate(pod, sim, c, now, wall - crash_ago, code, reason)
                if restarts > 1:
                    m = pod["metadata"]
                    self.core.event(pod, "Warning", "BackOff",
                                    f"Back-off restarting failed container {c.name} in pod "
                                    f"{m['name']}_{m['namespace']}({m['uid']})",
                                    field_path=cfield(c), host=sim.node, wall=wall, count=restarts - 1)
                self.core.seeding = True
                c.restarts = max(restarts, 1)
                c.logs.insert(0, list(c.logs[-1]))
                remaining = max(self._backoff(c.restarts) - crash_ago, 5.0)
                c.due = now + self.core.d(remaining)
                continue
            # steady state: run the readiness probe once now to settle Ready
            rp = as_dict(cspec.get("readinessProbe"))
            if rp:
                ok, output = run_probe(self.core, pod, sim, c, cspec, rp)
                c.ready = ok
                if not ok:
                    # failing for the last half hour (or since the pod started, if later)
                    period = as_int(rp.get("periodSeconds"), 10) or 10
                    since = max(created + 5, wall - 1800)
                    self.core.event(pod, "Warning", "Unhealthy", f"Readiness probe failed: {output}",
                                    field_path=cfield(c), host=sim.node, wall=wall,
                                    count=max(int((wall - since) // period), 1), first=since, force=True)
                c.ready_fail = 0 if ok else 3
                c.next_ready_probe = now + max(self.core.d(as_int(rp.get("periodSeconds"), 10)), MIN_PROBE_PERIOD)
            lp = as_dict(cspec.get("livenessProbe"))
            if lp:
                c.next_live_probe = now + max(self.core.d(as_int(lp.get("periodSeconds"), 10)), MIN_PROBE_PERIOD)
            c.due = min(c.end_due, c.next_ready_probe, c.next_live_probe, c.next_log)
        for ctype in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"):
            sim.cond_times[ctype] = ("True", created + 3)
        status = pod_status(pod, sim, wall, self.nodes)
        if all(c.ready for c in sim.containers.values()):
            sim.ready_since = now - 3600
        pod["status"] = status
        stored = self.core.put(PODS, pod)
        sim.seen_rv = stored["metadata"]["resourceVersion"]
        sim.due = min(c.due for c in sim.containers.values()) if sim.containers else INF
        return stored
