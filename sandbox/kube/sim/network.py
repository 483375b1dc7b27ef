"""What a pod's containers answer over the network: the ports they declare, whether anything listens on a
port, and the Endpoint a path answers with (the seed world's and tests' settings from health.py, plus
what an image's registry behaviour implies). Read by the kubelet's probes and by pods/services proxy."""

from __future__ import annotations

import time
from typing import Any

from sandbox.kube.health import Endpoint
from sandbox.kube.registry import BEHAVIOURS, split_image
from sandbox.kube.sim import metrics
from sandbox.kube.sim.core import Core
from sandbox.kube.sim.pod_state import ContainerSim, container_spec
from sandbox.kube.util import as_dict, as_list


def container_ports(cspec: dict[str, Any]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for p in as_list(cspec.get("ports")):
        p = as_dict(p)
        if isinstance(p.get("containerPort"), int):
            ports[str(p.get("name") or p["containerPort"])] = p["containerPort"]
    return ports


def resolve_port(cspec: dict[str, Any], port: Any) -> int | None:
    """A port number or a named container port, as a number (None if the name is unknown)."""
    ports = container_ports(cspec)
    if isinstance(port, int):
        return port
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        return ports.get(port)
    return None


def listening(cspec: dict[str, Any], port: int) -> bool:
    declared = set(container_ports(cspec).values())
    return port in declared if declared else port == 8080


def endpoint(core: Core, pod: dict[str, Any], c: ContainerSim, path: str) -> Endpoint:
    meta = pod["metadata"]
    service = str(as_dict(meta.get("labels")).get("app", ""))
    ep = core.health.resolve(core.cluster_name, meta["namespace"], service, meta["name"], path)
    norm = "/" + path.lstrip("/")
    if norm == "/readyz" and core.registry.has(c.image, "unready") and not core.health.has_pod_override(
            core.cluster_name, meta["namespace"], meta["name"], norm):
        return Endpoint(503, {"status": "fail", "checks": {"warmup": {
            "status": "down", "error": "cache warm-up did not finish: context deadline exceeded"}}})
    if norm == "/version" and ep.status == 404:
        return Endpoint(200, {"version": split_image(c.image)[1], "service": service})
    if norm == "/metrics" and ep.status == 404:
        return Endpoint(200, pod_metrics(core, pod, c).exposition(time.time()), content_type=metrics.CONTENT_TYPE)
    return ep


LEAK_RUN_S = 4.0  # simulated seconds a leaking container runs before the OOM kill (sim/pods.py uses it too)


def pod_metrics(core: Core, pod: dict[str, Any], c: ContainerSim) -> metrics.PodModel:
    """The metrics model of a running container (its registry behaviours, its run's start)."""
    behaviours = {b for b in BEHAVIOURS if core.registry.has(c.image, b)}
    return metrics.model_for(pod, container_spec(pod, c.name), c.image, behaviours, c.started_wall,
                             core.d(LEAK_RUN_S))
