"""Simulation of what runs behind the API server of one sandbox cluster: the scheduler, the kubelet (image
pulls, container lifecycle, probes, logs) and the deployment, replicaset, job, HPA and garbage-collector
controllers.

The rules follow the real controllers (pkg/controller/deployment/{sync,rolling,progress}.go,
pkg/controller/replicaset, pkg/controller/job, pkg/kubelet) closely enough that kubectl's rollout-status
rules give the answers they would give on a real cluster. Durations are simulated seconds multiplied by the
sandbox's time_scale; object timestamps are wall-clock time.

Controller, here, runs the passes on its own thread and answers what the API server (server.py: pods/log,
pods/proxy, services/proxy) and the seeding (world.py) ask of the simulation. The parts are in
sandbox/kube/sim/, one per resource:

    core.py          store, clock, events, owner references, the garbage collector
    pods.py          the kubelet and scheduler (pod_state.py, pod_status.py, probes.py, network.py)
    replicasets.py   the ReplicaSet controller
    deployments.py   the Deployment controller (the rollout) and the HPA status
    jobs.py          the Job controller
    proxy.py, logs.py  pods/proxy and services/proxy targets, pods/log

They are composed rather than mixed into one class because, as in Kubernetes, the controllers share
nothing but the stored objects and the conventions in core.py. Composition keeps that visible: each part
is handed the core and names any other part it needs (the ReplicaSet controller asks the kubelet how long
a pod has been ready; the proxy and pods/log read the kubelet's containers), and none can reach into
another's state by accident, which a mixin's shared `self` would allow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .health import Endpoint
from .registry import Registry
from .sim import logs
from .sim.core import INF, Core
from .sim.deployments import DESIRED, MAX_REPLICAS, REVISION, DeploymentController, HpaController
from .sim.jobs import JobController
from .sim.network import endpoint
from .sim.pod_state import ContainerSim
from .sim.pods import Kubelet
from .sim.proxy import PodProxy
from .sim.replicasets import ReplicaSetController

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["DESIRED", "INF", "MAX_REPLICAS", "REVISION", "Controller"]

log = logging.getLogger("sandbox.kube")


class Controller:
    def __init__(self, cluster: Cluster, registry: Registry, time_scale: Callable[[], float]):
        self.cluster = cluster
        self.store = cluster.store
        self.core = Core(cluster, registry, time_scale)
        self.kubelet = Kubelet(self.core)
        self.replicasets = ReplicaSetController(self.core, self.kubelet)
        self.deployments = DeploymentController(self.core)
        self.jobs = JobController(self.core)
        self.hpas = HpaController(self.core)
        self.proxy = PodProxy(self.core, self.kubelet)
        # in this order, each sees in the same pass what the one before it wrote: pod statuses, then
        # replicaset counts, then deployment counts
        self._steps: tuple[Callable[[float, float], float], ...] = (
            self.core.collect_garbage, self.kubelet.step_pods, self.replicasets.sync_replicasets,
            self.deployments.sync_deployments, self.jobs.sync_jobs, self.hpas.sync_hpas)
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._paused = threading.Event()
        self._last_event_gc = 0.0
        self.passes = 0
        self.errors: list[str] = []
        self.store.write_hooks.append(lambda _c: self._kick.set())

    # ------------------------------------------------------------------ lifecycle

    @property
    def scale(self) -> float:
        return self.core.scale

    def d(self, seconds: float) -> float:
        return self.core.d(seconds)

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
        """One pass of every part; returns when (monotonic) the next one is due."""
        with self.store.lock:
            self.passes += 1
            now, wall = time.monotonic(), time.time()
            due = INF
            for step in self._steps:
                try:
                    due = min(due, step(now, wall))
                except Exception as e:
                    log.exception("controller step %s failed", step.__name__)
                    self.errors.append(f"{step.__name__}: {e!r}")
            if wall - self._last_event_gc > 60:
                self._last_event_gc = wall
                self.core.gc_events(wall)
            return due

    # ------------------------------------------------------------------ for the API server (server.py)

    def log_lines(self, namespace: str, name: str, container: str | None, previous: bool
                  ) -> tuple[list[tuple[float, str]], bool]:
        """The lines of a container instance, and whether that instance has finished."""
        return logs.read(self.store, self.kubelet.pods, namespace, name, container, previous)

    def proxy_target(self, namespace: str, name: str, port: str) -> tuple[dict[str, Any], ContainerSim, int]:
        return self.proxy.pod_target(namespace, name, port)

    def service_target(self, namespace: str, name: str, port: str) -> tuple[str, str]:
        """Pick a ready pod behind a service: (pod name, target port)."""
        return self.proxy.service_target(namespace, name, port)

    def endpoint(self, pod: dict[str, Any], c: ContainerSim, path: str) -> Endpoint:
        return endpoint(self.core, pod, c, path)

    # ------------------------------------------------------------------ for the seeding (world.py)

    owner_ref = staticmethod(Core.owner_ref)

    def seed_pod(self, rs: dict[str, Any], created: float, *, override: str = "", restarts: int = 0,
                 crash_ago: float = 60.0) -> dict[str, Any]:
        """A pod of rs that has been running since `created` (wall time), already in its steady state."""
        return self.kubelet.seed_pod(rs, created, override=override, restarts=restarts, crash_ago=crash_ago)

