"""SandboxStack: the files it writes (kubeconfig, catalog.yaml), its addresses, and the served-call record."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from bot.core.catalog import load_catalog
from sandbox.kube import KubeSandbox
from sandbox.stack import SandboxStack


def test_kubeconfig_has_one_context_per_catalog_cluster(stack: SandboxStack, kubeconfig: Path) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    assert set(contexts) == {"sandbox-nonprod", "sandbox-prod", "sandbox-nonprod-admin", "sandbox-prod-admin"}
    assert config["current-context"] == "sandbox-nonprod"
    servers = {c["name"]: c["cluster"]["server"] for c in config["clusters"]}
    assert stack.kube is not None
    for name in ("nonprod", "prod"):
        assert servers[contexts[f"sandbox-{name}"]["cluster"]] == stack.kube.cluster(name).url
        assert contexts[f"sandbox-{name}"]["user"] == "svcbot"
        assert contexts[f"sandbox-{name}-admin"]["user"] == "admin"
        assert stack.kube.cluster(name).url.startswith("https://127.0.0.1:")
    users = {u["name"]: u["user"]["token"] for u in config["users"]}
    assert users == {"svcbot": stack.kube.auth.bot_token, "admin": stack.kube.auth.admin_token}


def test_catalog_is_valid_and_points_at_the_sandbox(stack: SandboxStack) -> None:
    """The generated catalog passes svcbot's own validation and names the sandbox contexts and seed configs."""
    assert stack.directory is not None
    catalog = load_catalog(stack.directory / "catalog.yaml")
    assert {n: c.context for n, c in catalog.clusters.items()} == {"nonprod": "sandbox-nonprod",
                                                                   "prod": "sandbox-prod"}
    assert catalog.environments["prod"].protected
    assert catalog.environments["staging"].namespace == "staging"
    assert set(catalog.services) == {"payment", "orders", "gateway", "inventory"}
    assert catalog.deployment_name("payment") == "payment-api"
    for name in catalog.services:
        config_dir = catalog.config_dir(name)
        assert config_dir is not None
        assert (config_dir / "application-prod.yaml").exists()
    assert catalog.terminal.allow_as
    assert catalog.access.groups["oncall"] == ("U0ALICE", "U0BOB")
    assert catalog.access.groups["release-managers"] == ("U0CAROL", "U0BOB")
    steps = [s.kind for t in catalog.pipelines["standard"].targets.values() for s in t.steps]
    assert set(steps) <= {"job", "set_image", "wait_rollout", "probe"}
    assert "U0CAROL" in (stack.directory / "catalog.yaml").read_text().split("settings:")[0]


def test_addresses_and_environment(stack: SandboxStack) -> None:
    addresses = stack.addresses()
    assert addresses["kube/nonprod"].startswith("https://127.0.0.1:")
    assert addresses["kube/prod"] != addresses["kube/nonprod"]
    env = stack.environment()
    assert Path(env["KUBECONFIG"]).name == "kubeconfig"
    assert Path(env["SVCBOT_CATALOG"]).name == "catalog.yaml"
    assert stack.slack is None
    assert stack.loki is None


def test_served_records_rbac_tuples(stack: SandboxStack, prod: client.ApiClient) -> None:
    """Every request is recorded as (api group, resource, subresource, verb), per cluster and for the stack."""
    assert stack.kube is not None
    client.AppsV1Api(prod).list_namespaced_deployment("prod")
    pod = client.CoreV1Api(prod).list_namespaced_pod("prod", label_selector="app=payment").items[0].metadata.name
    client.CoreV1Api(prod).connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", "prod", "healthz",
                                                                      _preload_content=False)
    client.CoreV1Api(prod).read_namespaced_pod_log(pod, "prod")
    served = stack.kube.served
    assert {("apps", "deployments", "", "list"), ("", "pods", "", "list"), ("", "pods", "proxy", "get"),
            ("", "pods", "log", "get")} <= served
    assert ("apps", "deployments", "", "list") in stack.kube.cluster("prod").served
    assert all(len(key) == 4 and key[1] for key in served)


def test_a_second_stack_starts_and_stops_cleanly(tmp_path: Path) -> None:
    """Independent stacks get their own ports; stop() frees them; a KubeSandbox is a context manager too."""
    with SandboxStack() as stack:
        stack.start(tmp_path, time_scale=0.05)
        assert stack.kube is not None
        url = stack.kube.cluster("prod").url
        assert client.AppsV1Api(_api(tmp_path)).list_namespaced_deployment("prod").items
    try:
        urllib.request.urlopen(url + "/version", timeout=2, context=stack.kube.auth.client_context())
        raise AssertionError("still listening after stop()")
    except urllib.error.URLError:
        pass
    with KubeSandbox(time_scale=0.05) as kube:
        assert kube.cluster("nonprod").namespaces == ["dev", "staging"]
        assert kube.env("prod") == (kube.cluster("prod"), "prod")


def _api(directory: Path) -> Any:
    return config.new_client_from_config(config_file=str(directory / "kubeconfig"), context="sandbox-prod-admin")
