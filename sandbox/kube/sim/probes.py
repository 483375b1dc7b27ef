"""The kubelet's readiness and liveness probes: when each runs, what it sees (httpGet against the pod's
simulated endpoints, tcpSocket against its declared ports), and what failures do: an unready container
after failureThreshold readiness failures, a restart after failureThreshold liveness failures."""

from __future__ import annotations

from typing import Any

from sandbox.kube.sim.core import Core
from sandbox.kube.sim.network import endpoint, listening, resolve_port
from sandbox.kube.sim.pod_state import ContainerSim, PodSim, cfield
from sandbox.kube.util import as_dict, as_int

MIN_PROBE_PERIOD = 0.05  # real seconds: keeps failing probes from flooding the store at tiny time scales


def probe(core: Core, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any],  # noqa: PLR0917
          which: str, now: float, wall: float) -> bool:
    """Run the container's `which` probe ("readinessProbe" or "livenessProbe") and schedule the next one.
    True when a liveness failure crossed the threshold: the kubelet then restarts the container."""
    spec = as_dict(cspec.get(which))
    period = max(core.d(as_int(spec.get("periodSeconds"), 10) or 10), MIN_PROBE_PERIOD)
    if which == "readinessProbe":
        c.next_ready_probe = now + period
    else:
        c.next_live_probe = now + period
    ok, output = run_probe(core, pod, sim, c, cspec, spec)
    threshold_fail = max(as_int(spec.get("failureThreshold"), 3), 1)
    label = "Readiness" if which == "readinessProbe" else "Liveness"
    if ok:
        if which == "readinessProbe":
            c.ready_fail = 0
            c.ready = True
        else:
            c.live_fail = 0
        return False
    core.event(pod, "Warning", "Unhealthy", f"{label} probe failed: {output}", field_path=cfield(c),
               host=sim.node, wall=wall)
    if which == "readinessProbe":
        c.ready_fail += 1
        if c.ready_fail >= threshold_fail:
            c.ready = False
        return False
    c.live_fail += 1
    return c.live_fail >= threshold_fail


def run_probe(core: Core, pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any],  # noqa: PLR0917
              spec: dict[str, Any]) -> tuple[bool, str]:
    """(passed, what the kubelet reports when it did not)."""
    if "httpGet" in spec:
        hg = as_dict(spec["httpGet"])
        port = resolve_port(cspec, hg.get("port"))
        path = str(hg.get("path") or "/")
        scheme = str(hg.get("scheme") or "HTTP").lower()
        url = f"{scheme}://{sim.ip}:{port}{path if path.startswith('/') else '/' + path}"
        if port is None or not listening(cspec, port):
            return False, f'Get "{url}": dial tcp {sim.ip}:{port}: connect: connection refused'
        ep = endpoint(core, pod, c, path)
        if ep.latency > max(as_int(spec.get("timeoutSeconds"), 1), 1):
            return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        if 200 <= ep.status < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {ep.status}"
    if "tcpSocket" in spec:
        port = resolve_port(cspec, as_dict(spec["tcpSocket"]).get("port"))
        if port is None or not listening(cspec, port):
            return False, f"dial tcp {sim.ip}:{port}: connect: connection refused"
    return True, ""
