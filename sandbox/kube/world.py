"""Loading the seed world (sandbox/seed/world.yaml) and building the settled clusters from it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import objects
from .health import Endpoint, Health, endpoint_from
from .registry import Registry
from .resources import CONFIGMAPS, DEPLOYMENTS, HPAS, NAMESPACES, REPLICASETS, SERVICES
from .sim.deployments import DESIRED, MAX_REPLICAS, REVISION
from .util import clone, fmt_time, new_uid, parse_duration, parse_time

if TYPE_CHECKING:
    from .cluster import Cluster

SEED_DIR = Path(__file__).resolve().parent.parent / "seed"
WORLD_FILE = SEED_DIR / "world.yaml"
CONFIGS_DIR = SEED_DIR / "configs"


@dataclass
class EnvSpec:
    version: str
    replicas: int = 1
    history: list[str] = field(default_factory=list)
    age: float = 30 * 86400
    rollout_age: float = 86400
    log_level: str = "info"
    hpa: dict[str, Any] | None = None
    health: dict[str, Any] = field(default_factory=dict)
    pod_faults: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ServiceSpec:
    name: str
    deployment: str
    image: str
    port: int = 8080
    liveness: str = "/healthz"
    readiness: str = "/readyz"
    readiness_initial_delay: int = 0
    resources: dict[str, Any] = field(default_factory=dict)
    env: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)
    environments: dict[str, EnvSpec] = field(default_factory=dict)


@dataclass
class World:
    clusters: dict[str, list[str]]
    environments: dict[str, tuple[str, str]]  # env -> (cluster, namespace)
    registry: Registry
    health_defaults: dict[str, Any]
    services: dict[str, ServiceSpec]
    configs_dir: Path

    def env_of(self, cluster: str, namespace: str) -> str | None:
        for env, (c, ns) in self.environments.items():
            if c == cluster and ns == namespace:
                return env
        return None


def load_world(path: Path | None = None, configs_dir: Path | None = None) -> World:
    path = path or WORLD_FILE
    raw = yaml.safe_load(Path(path).read_text())
    clusters = {name: list(spec.get("namespaces") or []) for name, spec in (raw.get("clusters") or {}).items()}
    envs = {name: (str(spec["cluster"]), str(spec["namespace"]))
            for name, spec in (raw.get("environments") or {}).items()}
    services: dict[str, ServiceSpec] = {}
    for name, spec in (raw.get("services") or {}).items():
        env_specs: dict[str, EnvSpec] = {}
        for env, e in (spec.get("environments") or {}).items():
            env_specs[env] = EnvSpec(
                version=str(e["version"]), replicas=int(e.get("replicas", 1)),
                history=[str(v) for v in e.get("history") or []],
                age=parse_duration(e.get("age", "30d")), rollout_age=parse_duration(e.get("rollout_age", "1d")),
                log_level=str(e.get("log_level", "info")), hpa=e.get("hpa"), health=e.get("health") or {},
                pod_faults=list(e.get("pod_faults") or []),
            )
        services[name] = ServiceSpec(
            name=name, deployment=str(spec.get("deployment") or name), image=str(spec["image"]),
            port=int(spec.get("port", 8080)), liveness=str(spec.get("liveness", "/healthz")),
            readiness=str(spec.get("readiness", "/readyz")),
            readiness_initial_delay=int(spec.get("readiness_initial_delay", 0)),
            resources=spec.get("resources") or {}, env=list(spec.get("env") or []), health=spec.get("health") or {},
            environments=env_specs,
        )
    return World(clusters, envs, Registry.from_seed(raw.get("registry")), raw.get("health") or {}, services,
                 Path(configs_dir or CONFIGS_DIR))


def configure_health(world: World, health: Health) -> None:
    for path, spec in world.health_defaults.items():
        health.set_default(path, endpoint_from(spec, Endpoint()))
    for svc in world.services.values():
        for path, spec in svc.health.items():
            base = health.resolve("", "", "", "", path)
            health.set_service(svc.name, "*", path, endpoint_from(spec, base))
        for env, e in svc.environments.items():
            _cluster, ns = world.environments[env]
            for path, spec in e.health.items():
                base = health.resolve("", ns, svc.name, "", path)
                health.set_service(svc.name, ns, path, endpoint_from(spec, base))


# ---------------------------------------------------------------------------------------------------


def _meta(name: str, namespace: str, created: float, labels: dict[str, str] | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "uid": new_uid(), "creationTimestamp": fmt_time(created)}
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    return m


def _container(svc: ServiceSpec, env: str, version: str) -> dict[str, Any]:
    env_vars = []
    for e in svc.env:
        item: dict[str, Any] = {"name": e["name"]}
        if "value" in e:
            item["value"] = str(e["value"]).replace("{env}", env).replace("{service}", svc.name)
        elif "configMapKeyRef" in e:
            item["valueFrom"] = {"configMapKeyRef": {"name": f"{svc.name}-config", "key": e["configMapKeyRef"]}}
        elif "secretKeyRef" in e:
            item["valueFrom"] = {"secretKeyRef": dict(e["secretKeyRef"])}
        env_vars.append(item)
    probe = {"port": svc.port, "path": svc.liveness}
    return {
        "name": "app",
        "image": f"{svc.image}:{version}",
        "ports": [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}],
        "env": env_vars,
        "resources": clone(svc.resources),
        "livenessProbe": {"httpGet": probe, "initialDelaySeconds": 10, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"port": svc.port, "path": svc.readiness},
                           "initialDelaySeconds": svc.readiness_initial_delay, "periodSeconds": 10},
        "volumeMounts": [{"name": "config", "mountPath": f"/etc/{svc.name}", "readOnly": True}],
    }


def _template(svc: ServiceSpec, env: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": svc.name, "app.kubernetes.io/name": svc.name,
                                "app.kubernetes.io/part-of": "shop"}},
        "spec": {
            "containers": [_container(svc, env, version)],
            "volumes": [{"name": "config", "configMap": {"name": f"{svc.name}-config"}}],
        },
    }


def seed_cluster(cluster: Cluster, world: World) -> None:
    """Create the settled state of one cluster: objects already rolled out, pods running (or failing)."""
    store, ctl = cluster.store, cluster.controller
    wall = time.time()
    for ns in ["default", "kube-system", *cluster.namespaces]:
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, "", wall - 400 * 86400)}
        objects.apply_defaults(NAMESPACES, obj)
        store.put(NAMESPACES, obj)
    for svc in world.services.values():
        for env, e in svc.environments.items():
            cname, ns = world.environments[env]
            if cname != cluster.name:
                continue
            created = wall - e.age
            rolled = wall - e.rollout_age
            labels = {"app": svc.name, "app.kubernetes.io/name": svc.name, "app.kubernetes.io/part-of": "shop"}
            profile = world.configs_dir / svc.name / f"application-{env}.yaml"
            data = {"log.level": e.log_level}
            if profile.exists():
                data[profile.name] = profile.read_text()
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(f"{svc.name}-config", ns, rolled - 600,
                                                                           labels), "data": data}
            store.put(CONFIGMAPS, cm)
            service = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(svc.deployment, ns, created, labels),
                       "spec": {"selector": {"app": svc.name},
                                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
            objects.apply_defaults(SERVICES, service)
            service["spec"]["clusterIP"] = cluster.api.allocate_cluster_ip()
            service["spec"]["clusterIPs"] = [service["spec"]["clusterIP"]]
            store.put(SERVICES, service)

            versions = [*e.history, e.version]
            d = {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": _meta(svc.deployment, ns, created, labels),
                 "spec": {"replicas": e.replicas, "selector": {"matchLabels": {"app": svc.name}},
                          "template": _template(svc, env, e.version)}}
            objects.apply_defaults(DEPLOYMENTS, d)
            d["metadata"]["generation"] = len(versions)
            d["metadata"]["annotations"] = {REVISION: str(len(versions))}
            surge, _ = objects.resolve_surge_unavailable(d)
            # Revisions spread from the deployment's creation to its last rollout, the current one at the rollout
            # itself (a single revision too), so history and status tell the same time.
            since = ([created + (rolled - created) * i / (len(versions) - 1) for i in range(len(versions))]
                     if len(versions) > 1 else [rolled])
            current_rs: dict[str, Any] = {}
            for rev, (version, at) in enumerate(zip(versions, since, strict=True), start=1):
                tmpl = _template(svc, env, version)
                objects.default_pod_spec(tmpl["spec"])
                h = objects.template_hash(tmpl)
                tmpl["metadata"]["labels"]["pod-template-hash"] = h
                is_current = rev == len(versions)
                rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                      "metadata": dict(_meta(f"{svc.deployment}-{h}", ns, at, tmpl["metadata"]["labels"]),
                                       generation=1,
                                       annotations={REVISION: str(rev), DESIRED: str(e.replicas),
                                                    MAX_REPLICAS: str(e.replicas + surge)},
                                       ownerReferences=[ctl.owner_ref(DEPLOYMENTS, d)]),
                      "spec": {"replicas": e.replicas if is_current else 0,
                               "selector": {"matchLabels": {"app": svc.name, "pod-template-hash": h}},
                               "template": tmpl},
                      "status": {"replicas": 0, "observedGeneration": 1}}
                store.put(REPLICASETS, rs)
                if is_current:
                    current_rs = rs
            faults = {int(f.get("index", 0)): f for f in e.pod_faults}
            for i in range(e.replicas):
                f = faults.get(i, {})
                ctl.seed_pod(current_rs, rolled + 20 + i * 5, override=str(f.get("behaviour", "")),
                             restarts=int(f.get("restarts", 0)),
                             crash_ago=parse_duration(f.get("last_crash", "60s")))
            complete = fmt_time(rolled + 60)
            d["status"] = {
                "observedGeneration": len(versions),
                "conditions": [
                    {"type": "Available", "status": "True", "lastUpdateTime": complete,
                     "lastTransitionTime": fmt_time(created + 60), "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability."},
                    {"type": "Progressing", "status": "True", "lastUpdateTime": complete,
                     "lastTransitionTime": fmt_time(created), "reason": "NewReplicaSetAvailable",
                     "message": f'ReplicaSet "{current_rs["metadata"]["name"]}" has successfully progressed.'},
                ],
            }
            store.put(DEPLOYMENTS, d)
            if e.hpa:
                _seed_hpa(store, svc, ns, e, created)
    # let the controllers compute statuses once, then backdate what they stamped "now"
    ctl.run_pass()
    ctl.run_pass()
    for obj in store.list(DEPLOYMENTS):
        conds = obj.get("status", {}).get("conditions") or []
        stamps = [parse_time(c.get(k)) or 0 for c in conds for k in ("lastUpdateTime", "lastTransitionTime")]
        if any(t >= wall - 1 for t in stamps):
            new = clone(obj)
            for c in new["status"]["conditions"]:
                for k in ("lastUpdateTime", "lastTransitionTime"):
                    if (parse_time(c.get(k)) or 0) >= wall - 1:
                        c[k] = fmt_time(wall - 1800)
            store.put(DEPLOYMENTS, new)


def _seed_hpa(store: Any, svc: ServiceSpec, ns: str, e: EnvSpec, created: float) -> None:
    spec = e.hpa or {}
    target, current = int(spec.get("cpu_target", 70)), int(spec.get("cpu_current", 40))
    cpu_req = str(svc.resources.get("requests", {}).get("cpu", "250m"))
    millis = int(cpu_req[:-1]) if cpu_req.endswith("m") else int(float(cpu_req) * 1000)
    ts = fmt_time(created + 60)
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(svc.deployment, ns, created, {"app": svc.name}),
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc.deployment},
                 "minReplicas": int(spec.get("min", 1)), "maxReplicas": int(spec.get("max", 10)),
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": target}}}]},
        "status": {
            "currentReplicas": e.replicas, "desiredReplicas": e.replicas,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": current, "averageValue": f"{millis * current // 100}m"}}}],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": ts, "reason": "ReadyForNewScale",
                 "message": "recommended size matches current size"},
                {"type": "ScalingActive", "status": "True", "lastTransitionTime": ts, "reason": "ValidMetricFound",
                 "message": "the HPA was able to successfully calculate a replica count from cpu resource "
                            "utilization (percentage of request)"},
                {"type": "ScalingLimited", "status": "True" if e.replicas <= int(spec.get("min", 1)) else "False",
                 "lastTransitionTime": ts,
                 "reason": "TooFewReplicas" if e.replicas <= int(spec.get("min", 1)) else "DesiredWithinRange",
                 "message": "the desired replica count is less than the minimum replica count"
                 if e.replicas <= int(spec.get("min", 1)) else "the desired count is within the acceptable range"},
            ],
        },
    }
    store.put(HPAS, hpa)
