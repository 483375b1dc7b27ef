"""The status the simulated kubelet reports for a pod: phase, the five pod conditions with their transition
times, host and pod IPs, and one containerStatus per container (state, lastState, ready, restartCount)."""

from __future__ import annotations

import time
from typing import Any

from sandbox.kube import objects
from sandbox.kube.sim.pod_state import PodSim
from sandbox.kube.util import as_dict, clone, fmt_time


def _cond(sim: PodSim, ctype: str, status: bool, wall: float, reason: str = "",  # noqa: PLR0917
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


def pod_status(pod: dict[str, Any], sim: PodSim, wall: float, nodes: list[str]) -> dict[str, Any]:
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
        _cond(sim, "PodReadyToStartContainers", not finished, wall),
        _cond(sim, "Initialized", True, wall),
        _cond(sim, "Ready", all_ready, wall, ready_reason, ready_msg),
        _cond(sim, "ContainersReady", all_ready, wall, ready_reason, ready_msg),
        _cond(sim, "PodScheduled", True, wall),
    ]
    status["hostIP"] = f"192.168.49.{nodes.index(sim.node) + 2 if sim.node in nodes else 2}"
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
