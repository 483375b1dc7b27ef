"""The chart through Helm's own engine: it lints clean with every example values file, refuses broken
values, and renders what the issue asks for (security context, probes, secrets by reference, RBAC per
managed namespace, read-only mode, git-sync, HTTP mode, access-only installs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ship_chart import CI_VALUES, HelmEngine, Rendered, default_values, errors, load_yaml, template_rules, values_with
from ship_rbac import WRITE_VERBS, expand_rules, without_writes

NAMESPACE_RULES = template_rules("svcbot.namespaceRules")


def ci(name: str) -> dict[str, Any]:
    """An example values file merged over the defaults."""
    return values_with(load_yaml(next(p for p in CI_VALUES if p.name == name)))


@pytest.fixture(name="socket_values")
def _socket_values() -> dict[str, Any]:
    return ci("socket-values.yaml")


def roles_by_namespace(rendered: Rendered) -> dict[str, list[dict[str, Any]]]:
    return {role["metadata"]["namespace"]: role["rules"] for role in rendered.kind("Role")}


def container(rendered: Rendered, name: str = "svcbot") -> dict[str, Any]:
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name)


class TestLint:
    def test_default_values_lint_clean(self, helm: HelmEngine, tmp_path: Path) -> None:
        """`helm lint` with the shipped values reports nothing at error severity, in every engine present."""
        messages = helm.lint(None, tmp_path)
        assert messages, "no engine ran"
        assert errors(messages) == []

    @pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
    def test_ci_values_lint_clean(self, helm: HelmEngine, tmp_path: Path, path: Path) -> None:
        """`helm lint` with each example values file reports nothing at error severity."""
        assert errors(helm.lint(values_with(load_yaml(path)), tmp_path)) == []

    def test_broken_values_fail_lint(self, helm: HelmEngine, tmp_path: Path) -> None:
        """Values the schema refuses make every engine report an error (so a clean lint means something)."""
        messages = helm.lint(values_with({"mode": "webhook", "replicaCount": 3}), tmp_path)
        for engine, found in messages.items():
            assert any(m["severity"] >= 3 for m in found), engine


class TestDeployment:
    def test_security_context_locked_down(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """Non-root, read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp."""
        rendered = renderer.render(default_values(), tmp_path)
        pod = rendered.one("Deployment")["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = container(rendered)["securityContext"]
        assert context == {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                           "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}

    def test_probes_on_the_health_port(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """Liveness on /healthz and readiness on /readyz of the health port svcbot serve listens on."""
        bot = container(renderer.render(default_values(), tmp_path))
        assert bot["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert bot["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in bot["ports"]
        assert "--health-port=8080" in bot["args"]
        assert bot["resources"]["requests"]["memory"]

    def test_writable_paths_are_volumes(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """Only /data (the store) and /tmp are writable mounts; the catalog is read-only and SVCBOT_* point at them."""
        bot = container(renderer.render(default_values(), tmp_path))
        mounts = {m["mountPath"]: m for m in bot["volumeMounts"]}
        assert set(mounts) == {"/etc/svcbot/catalog", "/data", "/tmp"}
        assert mounts["/etc/svcbot/catalog"]["readOnly"] is True
        env = {e["name"]: e for e in bot["env"]}
        assert env["SVCBOT_CATALOG"]["value"] == "/etc/svcbot/catalog/catalog.yaml"
        assert env["SVCBOT_DB"]["value"] == "/data/svcbot.db"

    def test_single_replica_recreate_with_a_kept_claim(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """One replica, Recreate, and a PVC Helm keeps on uninstall."""
        rendered = renderer.render(default_values(), tmp_path)
        spec = rendered.one("Deployment")["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}
        assert rendered.kind("PodDisruptionBudget") == []
        claim = rendered.one("PersistentVolumeClaim")
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]

    def test_several_replicas_on_postgres_roll_spread_and_keep_a_budget(self, renderer: HelmEngine,
                                                                        tmp_path: Path) -> None:
        """PostgreSQL and three replicas: RollingUpdate that never drops below three ready, a PDB, anti-affinity
        on the node, the store URL only from its Secret, and no SQLite volume claim."""
        rendered = renderer.render(ci("replicas-values.yaml"), tmp_path)
        spec = rendered.one("Deployment")["spec"]
        assert spec["replicas"] == 3
        assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        budget = rendered.one("PodDisruptionBudget")["spec"]
        assert budget["maxUnavailable"] == 1
        assert budget["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
        anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
        spread = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert spread[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert spread[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
        env = {e["name"]: e for e in container(rendered)["env"]}
        assert env["SVCBOT_DB"] == {"name": "SVCBOT_DB",
                                    "valueFrom": {"secretKeyRef": {"name": "svcbot-db", "key": "url"}}}
        assert rendered.kind("PersistentVolumeClaim") == []
        volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
        assert "emptyDir" in volumes["data"]

    def test_hard_anti_affinity_and_one_postgres_replica(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """podAntiAffinity: hard requires separate nodes; one replica on PostgreSQL keeps Recreate and no PDB."""
        hard = renderer.render(values_with({**ci("replicas-values.yaml"), "podAntiAffinity": "hard"}), tmp_path)
        anti = hard.one("Deployment")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"]
        single = renderer.render(values_with({"database": {"existingSecret": "svcbot-db"}}), tmp_path)
        assert single.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
        assert single.kind("PodDisruptionBudget") == []
        assert "affinity" not in single.one("Deployment")["spec"]["template"]["spec"]

    def test_slack_tokens_only_by_reference(self, renderer: HelmEngine, tmp_path: Path,
                                            socket_values: dict[str, Any]) -> None:
        """Socket mode reads bot and app tokens from the existing Secret; no value is inlined."""
        env = {e["name"]: e for e in container(renderer.render(socket_values, tmp_path))["env"]}
        for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
            assert "value" not in env[name]
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "svcbot-slack"
        assert env["SLACK_SIGNING_SECRET"]["valueFrom"]["secretKeyRef"]["optional"] is True
        assert env["KUBECONFIG"]["value"] == "/etc/svcbot/kube/config"
        assert env["SVCBOT_LOKI_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True

    def test_catalog_config_map_is_the_values_catalog(self, renderer: HelmEngine, tmp_path: Path,
                                                      socket_values: dict[str, Any]) -> None:
        """The catalog ConfigMap holds the values' catalog as YAML, unchanged."""
        config_map = renderer.render(socket_values, tmp_path).one("ConfigMap", "svcbot-catalog")
        assert yaml.safe_load(config_map["data"]["catalog.yaml"]) == socket_values["catalog"]

    def test_profiles_from_values_keep_their_paths(self, renderer: HelmEngine, tmp_path: Path,
                                                   socket_values: dict[str, Any]) -> None:
        """Profile files given by path are mounted back at that path under profiles.mountPath."""
        rendered = renderer.render(socket_values, tmp_path)
        volumes = {v["name"]: v for v in rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"]}
        items = {item["path"]: item["key"] for item in volumes["profiles"]["configMap"]["items"]}
        data = rendered.one("ConfigMap", "svcbot-profiles")["data"]
        assert set(items) == set(socket_values["profiles"]["files"])
        assert data[items["payment/application-prod.yaml"]].startswith("payment:")

    def test_git_sync_fills_an_empty_dir(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """gitSync: a one-shot init container and a sidecar write the checkout; svcbot mounts it read-only."""
        rendered = renderer.render(ci("http-values.yaml"), tmp_path)
        init, sidecar, bot = (container(rendered, n) for n in ("git-sync-init", "git-sync", "svcbot"))
        assert "--one-time" in init["args"]
        assert "--one-time" not in sidecar["args"]
        assert "--repo=https://git.example.com/platform/service-configs.git" in sidecar["args"]
        for git in (init, sidecar):
            assert git["securityContext"]["readOnlyRootFilesystem"] is True
        volumes = {v["name"]: v for v in rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"]}
        assert "emptyDir" in volumes["profiles"]
        profiles = next(m for m in bot["volumeMounts"] if m["name"] == "profiles")
        assert profiles["readOnly"] is True

    def test_http_mode_exposes_only_slack_events(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """HTTP mode: the signing secret is required, no app token, and the Ingress routes /slack/events only."""
        rendered = renderer.render(ci("http-values.yaml"), tmp_path)
        env = {e["name"]: e for e in container(rendered)["env"]}
        assert "SLACK_APP_TOKEN" not in env
        assert env["SLACK_SIGNING_SECRET"]["valueFrom"]["secretKeyRef"]["optional"] is False
        paths = rendered.one("Ingress")["spec"]["rules"][0]["http"]["paths"]
        assert [(p["path"], p["backend"]["service"]["port"]["name"]) for p in paths] == [("/slack/events", "http")]
        assert {p["name"] for p in rendered.one("Service")["spec"]["ports"]} == {"http", "health"}

    def test_monitoring_objects_toggle(self, renderer: HelmEngine, tmp_path: Path,
                                       socket_values: dict[str, Any]) -> None:
        """ServiceMonitor and PrometheusRule appear only when enabled and scrape the health port."""
        assert not renderer.render(default_values(), tmp_path).kind("ServiceMonitor")
        rendered = renderer.render(socket_values, tmp_path)
        endpoint = rendered.one("ServiceMonitor")["spec"]["endpoints"][0]
        assert (endpoint["port"], endpoint["path"]) == ("health", "/metrics")
        alerts = {r["alert"] for g in rendered.one("PrometheusRule")["spec"]["groups"] for r in g["rules"]}
        assert {"SvcbotDown", "SvcbotSlackDisconnected", "SvcbotInternalErrors"} <= alerts


class TestRbac:
    def test_a_role_per_managed_namespace_with_exactly_the_rules(self, renderer: HelmEngine, tmp_path: Path,
                                                                 socket_values: dict[str, Any]) -> None:
        """Namespaces of in-cluster environments get the Role, with the rules the chart declares; prod
        (another cluster, reached by kubeconfig) gets none here."""
        rendered = renderer.render(socket_values, tmp_path)
        roles = roles_by_namespace(rendered)
        assert set(roles) == {"dev", "staging"}
        for rules in roles.values():
            assert expand_rules(rules) == expand_rules(NAMESPACE_RULES)
        bindings = {b["metadata"]["namespace"]: b for b in rendered.kind("RoleBinding")}
        assert bindings["dev"]["subjects"] == [{"kind": "ServiceAccount", "name": "svcbot", "namespace": "ops"}]

    def test_no_role_in_the_bots_own_namespace(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """Replicas elect their leader through PostgreSQL, not Leases: the bot's own namespace gets no Role
        unless the catalog manages it."""
        rendered = renderer.render(values_with({"database": {"existingSecret": "svcbot-db"}, "replicaCount": 2}),
                                   tmp_path)
        assert "ops" not in roles_by_namespace(rendered)

    def test_read_only_drops_every_write(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """rbac.readOnly leaves every Role with reads only: the declared rules minus write verbs."""
        rendered = renderer.render(ci("read-only-values.yaml"), tmp_path)
        roles = roles_by_namespace(rendered)
        assert set(roles) == {"dev", "staging", "prod"}
        for role in rendered.kind("Role"):
            verbs = {call.verb for call in expand_rules(role["rules"])}
            assert not verbs & WRITE_VERBS, role["metadata"]
        assert expand_rules(roles["prod"]) == expand_rules(without_writes(NAMESPACE_RULES))

    def test_access_only_renders_access_and_nothing_else(self, renderer: HelmEngine, tmp_path: Path) -> None:
        """accessOnly: ServiceAccount, its token Secret and the Roles for the named catalog cluster only."""
        rendered = renderer.render(ci("access-only-values.yaml"), tmp_path)
        kinds = {doc["kind"] for doc in rendered.documents}
        assert kinds == {"ServiceAccount", "Secret", "Role", "RoleBinding"}
        assert set(roles_by_namespace(rendered)) == {"prod"}
        assert rendered.one("Secret")["type"] == "kubernetes.io/service-account-token"
        assert "svcbot-token" in rendered.notes

    def test_explicit_namespaces_win(self, renderer: HelmEngine, tmp_path: Path,
                                     socket_values: dict[str, Any]) -> None:
        """rbac.namespaces replaces what the catalog would give."""
        values = {**socket_values, "rbac": {**socket_values["rbac"], "namespaces": ["payments"]}}
        assert set(roles_by_namespace(renderer.render(values, tmp_path))) == {"payments"}

    def test_rbac_off_renders_no_role(self, renderer: HelmEngine, tmp_path: Path,
                                      socket_values: dict[str, Any]) -> None:
        """rbac.create false: the cluster admin grants access some other way."""
        values = {**socket_values, "rbac": {**socket_values["rbac"], "create": False}}
        assert renderer.render(values, tmp_path).kind("Role") == []
