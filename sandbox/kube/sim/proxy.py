"""pods/proxy and services/proxy: which container of which pod a proxied request reaches, on which port,
with the API server's errors when none can answer (no host yet, unknown port, nothing listening, no
ready endpoints). What the container then answers comes from network.endpoint."""

from __future__ import annotations

from typing import Any

from sandbox.kube.resources import PODS, SERVICES
from sandbox.kube.sim.core import Core
from sandbox.kube.sim.network import container_ports, listening, resolve_port
from sandbox.kube.sim.pod_state import ContainerSim
from sandbox.kube.sim.pods import Kubelet
from sandbox.kube.util import ApiError, as_dict, as_list


class PodProxy:
    def __init__(self, core: Core, kubelet: Kubelet):
        self.core = core
        self.kubelet = kubelet

    def pod_target(self, namespace: str, name: str, port: str) -> tuple[dict[str, Any], ContainerSim, int]:
        """(pod, container, port number) for `port`: a number or a port name; empty means the first
        container's first declared port."""
        pod = self.core.store.get(PODS, namespace, name)
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "group": "", "kind": "pods"})
        sim = self.kubelet.pods.get(pod["metadata"].get("uid", ""))
        containers = as_list(as_dict(pod.get("spec")).get("containers"))
        if sim is None or not sim.ip:
            raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
        chosen: dict[str, Any] = as_dict(containers[0]) if containers else {}
        number: int | None = None
        if port:
            for cspec in containers:
                cspec = as_dict(cspec)
                p = resolve_port(cspec, int(port) if port.isdigit() else port)
                if p is not None and (not port.isdigit() or p in container_ports(cspec).values()):
                    chosen, number = cspec, p
                    break
            if number is None:
                number = int(port) if port.isdigit() else None
        else:
            number = next(iter(container_ports(chosen).values()), 80)
        c = sim.containers.get(str(chosen.get("name")))
        if number is None:
            raise ApiError(503, "ServiceUnavailable", f'error trying to reach service: unknown port "{port}"')
        if c is None or c.stage != "running" or sim.stage == "terminating" or not listening(chosen, number):
            raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {sim.ip}:{number}: "
                                                      "connect: connection refused")
        return pod, c, number

    def service_target(self, namespace: str, name: str, port: str) -> tuple[str, str]:
        """Pick a ready pod behind a service: (pod name, target port)."""
        svc = self.core.store.get(SERVICES, namespace, name)
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
        for pod in self.core.store.list(PODS, namespace):
            labels = as_dict(pod["metadata"].get("labels"))
            if not sel or any(labels.get(k) != v for k, v in sel.items()) or pod["metadata"].get("deletionTimestamp"):
                continue
            conds = as_list(as_dict(pod.get("status")).get("conditions"))
            if any(as_dict(x).get("type") == "Ready" and as_dict(x).get("status") == "True" for x in conds):
                ready.append(pod)
        if not ready:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
        # the kubelet's IP counter only ever grows, which is all a round robin over the ready pods needs
        pod = ready[self.kubelet.ip_counter % len(ready)]
        self.kubelet.ip_counter += 1
        target = chosen.get("targetPort", chosen.get("port"))
        return pod["metadata"]["name"], str(target)
