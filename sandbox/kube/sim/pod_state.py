"""What the simulated kubelet knows about each pod and container beyond the stored object: the lifecycle
stage and when it next changes, probe counters, restart counts, and the log lines of each container run.
Shared by the kubelet (pods.py) and what reads its state: probes, pods/log and pods/proxy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.kube.sim.core import INF
from sandbox.kube.util import as_dict, as_list


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
    next_log: float = INF  # when the running service next logs (its traffic, or its database failing)
    log_ticks: int = 0
    logs: list[list[tuple[float, str]]] = field(default_factory=list)  # one list per run, the newest last


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


def cfield(c: ContainerSim) -> str:
    """The fieldPath events about a container carry."""
    return f"spec.containers{{{c.name}}}"


def container_spec(pod: dict[str, Any], name: str) -> dict[str, Any]:
    """The spec of the pod's container `name` ({} if it has none)."""
    for c in as_list(as_dict(pod.get("spec")).get("containers")):
        if as_dict(c).get("name") == name:
            return as_dict(c)
    return {}
