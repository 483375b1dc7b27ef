"""A local, stateful, kubectl-compatible stand-in for the Kubernetes API.

    kube = KubeSandbox(time_scale=0.05)
    kube.start()
    kube.cluster("prod").url                       # https://127.0.0.1:<port> (CA: kube.auth.ca_pem)
    kube.auth.admin_token, kube.auth.bot_token     # bearer tokens of the two identities
    kube.cluster("prod").faults.set(mode="stall", seconds=5); ...; .faults.clear()
    kube.set_health("nonprod", "staging", "orders", "/readyz", status=503, body={...}, latency=0.2)
    kube.served                                    # {(group, resource, subresource, verb), ...}
    kube.stop()
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from .auth import Auth
from .cluster import Cluster
from .faults import Fault, Faults
from .health import Endpoint, Health
from .resources import PODS
from .world import CONFIGS_DIR, WORLD_FILE, World, configure_health, load_world, seed_cluster

__all__ = ["CONFIGS_DIR", "WORLD_FILE", "Cluster", "Endpoint", "Fault", "Faults", "KubeSandbox", "World"]


class KubeSandbox:
    """One HTTP API server per catalog cluster (nonprod: dev+staging, prod: prod), seeded from the world."""

    name = "kube"

    def __init__(self, time_scale: float = 1.0, world: Path | None = None, configs_dir: Path | None = None):
        self.time_scale = float(time_scale)
        self.world: World = load_world(world, configs_dir)
        self.health = Health()
        configure_health(self.world, self.health)
        self.served: set[tuple[str, str, str, str]] = set()
        """Every (api group, resource, subresource, verb) served, over all clusters (live; clear() to reset)."""
        managed: dict[str, list[str]] = {}
        for cname, ns in self.world.environments.values():
            managed.setdefault(cname, []).append(ns)
        self.auth = Auth(managed)
        self.clusters: dict[str, Cluster] = {
            name: Cluster(name, namespaces, self.health, self.world.registry, lambda: self.time_scale, self.served,
                          auth=self.auth)
            for name, namespaces in self.world.clusters.items()
        }
        self._started = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            for c in self.clusters.values():
                seed_cluster(c, self.world)
            for c in self.clusters.values():
                c.start()
            self._started = True

    def stop(self) -> None:
        with self._lock:
            for c in self.clusters.values():
                c.stop()
            self._started = False

    def __enter__(self) -> KubeSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ lookups

    def cluster(self, name: str) -> Cluster:
        try:
            return self.clusters[name]
        except KeyError:
            raise KeyError(f"no sandbox cluster {name!r}; clusters: {sorted(self.clusters)}") from None

    def env(self, env: str) -> tuple[Cluster, str]:
        """(cluster, namespace) of an environment of the seed world: env("staging") -> (nonprod, "staging")."""
        cname, ns = self.world.environments[env]
        return self.clusters[cname], ns

    def addresses(self) -> dict[str, str]:
        return {f"kube/{name}": c.url for name, c in self.clusters.items()}

    def pod_names(self) -> dict[tuple[str, str], list[str]]:
        """(namespace, app label) -> the names of its pods, and (namespace, "<app>/crashing") -> the ones the
        seed world makes crash-loop (for the seed's log history, sandbox.seed.logs)."""
        out: dict[tuple[str, str], list[str]] = {}
        for c in self.clusters.values():
            with c.store.lock:
                for pod in c.store.list(PODS):
                    m = pod["metadata"]
                    app = (m.get("labels") or {}).get("app")
                    if not app or m.get("deletionTimestamp"):
                        continue
                    out.setdefault((m["namespace"], app), []).append(m["name"])
                    sim = c.controller.kubelet.pods.get(m.get("uid", ""))
                    if sim is not None and sim.override in ("crashing", "leaking"):
                        out.setdefault((m["namespace"], f"{app}/crashing"), []).append(m["name"])
        return out

    def reset_served(self) -> None:
        self.served.clear()
        for c in self.clusters.values():
            c.served.clear()

    # ------------------------------------------------------------------ knobs

    def set_health(self, cluster: str, namespace: str, service: str, path: str, *, status: int = 200,
                   body: Any = None, latency: float = 0.0, pod: str | None = None) -> None:
        """Make <service>'s pods (or one pod) in cluster/namespace answer `path` with this status, JSON body
        and latency (seconds). Probes of the simulated kubelet see it too (readiness -> Ready, events)."""
        self.cluster(cluster)
        self.health.set(cluster, namespace, service, path, Endpoint(status, body, latency), pod=pod)
        self.cluster(cluster).controller.kick()

    def clear_health(self, cluster: str | None = None, namespace: str | None = None, service: str | None = None,
                     path: str | None = None, pod: str | None = None) -> None:
        """Drop runtime overrides made with set_health (the seed world's settings stay)."""
        self.health.clear(cluster, namespace, service, path, pod)
        for c in self.clusters.values():
            c.controller.kick()

    def clear_faults(self) -> None:
        for c in self.clusters.values():
            c.faults.clear()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        return all(c.wait_idle(timeout) for c in self.clusters.values())

    # ------------------------------------------------------------------ client configuration

    def kubeconfig(self) -> dict[str, Any]:
        """Contexts `sandbox-<cluster>` act as the bot (user `svcbot`, RBAC-bound by the chart's Role; the catalog
        names these, and the first is current) and `sandbox-<cluster>-admin` as an admin (user `admin`)."""
        clusters, contexts, admin_contexts = [], [], []
        for name, c in self.clusters.items():
            ctx = f"sandbox-{name}"
            clusters.append({"name": ctx, "cluster": {"server": c.url,
                                                      "certificate-authority-data": self.auth.ca_data}})
            ns = c.namespaces[0] if c.namespaces else "default"
            contexts.append({"name": ctx, "context": {"cluster": ctx, "user": "svcbot", "namespace": ns}})
            admin_contexts.append({"name": f"{ctx}-admin", "context": {"cluster": ctx, "user": "admin",
                                                                      "namespace": ns}})
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": clusters, "contexts": contexts + admin_contexts,
            "users": [{"name": "svcbot", "user": {"token": self.auth.bot_token}},
                      {"name": "admin", "user": {"token": self.auth.admin_token}}],
            "current-context": contexts[0]["name"] if contexts else "",
        }

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth.admin_token}"}

    def write_kubeconfig(self, path: Path) -> Path:
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        path.chmod(0o600)
        return path
