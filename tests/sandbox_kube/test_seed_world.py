"""The seed world the sandbox starts with (sandbox/seed/world.yaml, described in sandbox/seed/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import wait_for
from kubernetes import client

from sandbox.kube import CONFIGS_DIR

SERVICES = {"payment": "payment-api", "orders": "orders", "gateway": "gateway", "inventory": "inventory"}
ENVS = {"dev": "nonprod", "staging": "nonprod", "prod": "prod"}


def api_for(env: str, nonprod: client.ApiClient, prod: client.ApiClient) -> client.ApiClient:
    return prod if ENVS[env] == "prod" else nonprod


@pytest.mark.parametrize("env", ENVS)
def test_every_service_runs_in_every_environment(env: str, nonprod: client.ApiClient, prod: client.ApiClient) -> None:
    """Four Deployments per namespace: label app=<service>, container `app`, probes on 8080, config mounted."""
    api = api_for(env, nonprod, prod)
    deploys = {d.metadata.name: d for d in client.AppsV1Api(api).list_namespaced_deployment(env).items}
    for service, name in SERVICES.items():
        d = deploys[name]
        assert d.spec.selector.match_labels == {"app": service}
        (c,) = d.spec.template.spec.containers
        assert c.name == "app"
        assert c.image.startswith(f"registry.example.com/{service}:")
        assert c.readiness_probe.http_get.path == "/readyz"
        assert c.readiness_probe.http_get.port == 8080
        assert c.liveness_probe.http_get.path == ("/readyz" if service == "gateway" else "/healthz")
        env_vars = {e.name: e for e in c.env}
        assert env_vars["LOG_LEVEL"].value_from.config_map_key_ref.name == f"{service}-config"
        assert d.spec.template.spec.volumes[0].config_map.name == f"{service}-config"
        cm = client.CoreV1Api(api).read_namespaced_config_map(f"{service}-config", env)
        profile = CONFIGS_DIR / service / f"application-{env}.yaml"
        assert cm.data[f"application-{env}.yaml"] == profile.read_text()
        assert client.CoreV1Api(api).read_namespaced_service(name, env).spec.selector == {"app": service}


def test_payment_is_healthy_everywhere(nonprod: client.ApiClient, prod: client.ApiClient) -> None:
    """payment-api: all replicas ready in every environment; prod runs 3 x 1.4.1 with older revisions kept."""
    for env in ENVS:
        api = api_for(env, nonprod, prod)
        d = wait_for(lambda api=api, env=env: (x := client.AppsV1Api(api).read_namespaced_deployment(
            "payment-api", env)).status.ready_replicas == x.spec.replicas and x, what="payment ready")
        assert d.status.available_replicas == d.spec.replicas
        assert {c.type: c.status for c in d.status.conditions} == {"Available": "True", "Progressing": "True"}
    d = client.AppsV1Api(prod).read_namespaced_deployment("payment-api", "prod")
    assert d.spec.replicas == 3
    assert d.spec.template.spec.containers[0].image == "registry.example.com/payment:1.4.1"
    secret = next(e for e in d.spec.template.spec.containers[0].env if e.name == "DB_PASSWORD")
    assert (secret.value_from.secret_key_ref.name, secret.value_from.secret_key_ref.key) == ("payment-db", "password")
    revisions = {rs.metadata.annotations["deployment.kubernetes.io/revision"] for rs in
                 client.AppsV1Api(prod).list_namespaced_replica_set("prod", label_selector="app=payment").items}
    assert len(revisions) >= 2


def test_orders_staging_is_unready_because_its_database_is_down(nonprod: client.ApiClient) -> None:
    """orders in staging: pods Running but not ready, Unhealthy events with the kubelet's message."""
    c = client.CoreV1Api(nonprod)
    pods = c.list_namespaced_pod("staging", label_selector="app=orders").items
    assert len(pods) == 2
    for p in pods:
        assert p.status.phase == "Running"
        assert not p.status.container_statuses[0].ready
        events = c.list_namespaced_event("staging", field_selector=f"involvedObject.name={p.metadata.name}").items
        unhealthy = [e for e in events if e.reason == "Unhealthy"]
        assert unhealthy[0].message == "Readiness probe failed: HTTP probe failed with statuscode: 503"
        assert unhealthy[0].count > 10
        assert unhealthy[0].first_timestamp < unhealthy[0].last_timestamp
    d = client.AppsV1Api(nonprod).read_namespaced_deployment("orders", "staging")
    available = next(x for x in d.status.conditions if x.type == "Available")
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")
    assert not d.status.ready_replicas
    assert d.status.unavailable_replicas == 2


def test_inventory_prod_has_one_crash_looping_pod(prod: client.ApiClient) -> None:
    """inventory in prod: one of three pods in CrashLoopBackOff (restarts, last exit Error 1), two fine."""
    pods = client.CoreV1Api(prod).list_namespaced_pod("prod", label_selector="app=inventory").items
    assert len(pods) == 3
    restarting = [p for p in pods if p.status.container_statuses[0].restart_count > 0]
    assert len(restarting) == 1
    cs = restarting[0].status.container_statuses[0]
    assert cs.last_state.terminated.reason == "Error"
    assert cs.last_state.terminated.exit_code == 1
    assert cs.last_state.terminated.finished_at is not None
    assert not cs.ready
    assert sum(p.status.container_statuses[0].ready for p in pods) == 2


def test_gateway_runtime_settings(nonprod: client.ApiClient, prod: client.ApiClient) -> None:
    """gateway: GOMAXPROCS=8 under a CPU limit of 2, a memory limit and no GOMEMLIMIT."""
    for env in ENVS:
        d = client.AppsV1Api(api_for(env, nonprod, prod)).read_namespaced_deployment("gateway", env)
        (c,) = d.spec.template.spec.containers
        env_vars = {e.name: e.value for e in c.env}
        assert env_vars["GOMAXPROCS"] == "8"
        assert "GOMEMLIMIT" not in env_vars
        assert c.resources.limits["cpu"] == "2"
        assert c.resources.limits["memory"] == "1Gi"


def test_payment_prod_hpa(prod: client.ApiClient) -> None:
    """payment-api in prod is scaled by an autoscaling/v2 HPA (min 3, max 10) on CPU utilization."""
    hpa = client.AutoscalingV2Api(prod).read_namespaced_horizontal_pod_autoscaler("payment-api", "prod")
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (3, 10)
    assert hpa.spec.scale_target_ref.name == "payment-api"
    assert hpa.spec.scale_target_ref.kind == "Deployment"
    assert hpa.spec.metrics[0].resource.name == "cpu"
    assert hpa.status.current_replicas == 3
    assert hpa.status.current_metrics[0].resource.current.average_utilization


def test_config_profiles_drift_and_hold_secrets_as_placeholders() -> None:
    """Every service has dev/staging/prod profiles that differ; secrets are ${VAR} except a few in dev."""
    for service in SERVICES:
        profiles = {env: yaml.safe_load((CONFIGS_DIR / service / f"application-{env}.yaml").read_text())
                    for env in ENVS}
        assert profiles["dev"] != profiles["staging"] != profiles["prod"]
    prod_text = "".join(p.read_text() for p in Path(CONFIGS_DIR).glob("*/application-prod.yaml"))
    assert "${DB_PASSWORD}" in prod_text
    assert "devpass" not in prod_text
    dev = yaml.safe_load((CONFIGS_DIR / "payment" / "application-dev.yaml").read_text())
    assert dev["database"]["password"] == "devpass123"


def test_seed_is_settled_at_start(kube: Any) -> None:
    """Nothing is mid-rollout at start: every deployment observed its generation and has a current revision."""
    for cluster in kube.clusters.values():
        for d in cluster.objects("apps/deployments"):
            if d["metadata"]["name"] not in {"payment-api", "orders", "gateway", "inventory"}:
                continue
            assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
            assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        assert not cluster.controller.errors
