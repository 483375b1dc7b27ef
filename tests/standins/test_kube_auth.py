"""The Kubernetes stand-in refuses what a real API server refuses: no TLS trust, no token or a wrong one
(401), a call the chart's Role does not allow (403), and `kubectl auth can-i` / `whoami` answer from the same
rules. Checked with kubectl 1.37, lightkube and kr8s."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import kr8s
import pytest
import requests
import yaml
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod
from standins_helpers import Kubectl, deployment_yaml

from sandbox.kube.auth import RULES_FILE
from sandbox.stack import SandboxStack

HELPERS = Path(__file__).resolve().parents[2] / "helm" / "svcbot" / "templates" / "_helpers.tpl"
BOT = "system:serviceaccount:svcbot:svcbot"


def lightkube_client(kubeconfig: Path, context: str) -> Client:
    return Client(config=KubeConfig.from_file(kubeconfig).get(context_name=context))


class TestTls:
    def test_the_kubeconfig_carries_the_ca_and_the_server_speaks_https(self, stack: SandboxStack,
                                                                        kubeconfig: Path) -> None:
        """Every cluster is https with the CA in certificate-authority-data; a client that does not trust that
        CA cannot even connect."""
        config = yaml.safe_load(kubeconfig.read_text())
        for cluster in config["clusters"]:
            assert cluster["cluster"]["server"].startswith("https://127.0.0.1:")
            assert cluster["cluster"]["certificate-authority-data"]
        assert stack.kube is not None
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(stack.kube.cluster("prod").url + "/version", timeout=5)

    def test_kubectl_without_the_ca_refuses_the_server(self, kubectl: Kubectl, stack: SandboxStack) -> None:
        assert stack.kube is not None
        url = stack.kube.cluster("prod").url
        result = kubectl("get", "pods", "-n", "prod", f"--server={url}", f"--token={stack.kube.auth.admin_token}",
                         "--certificate-authority=/dev/null", context="sandbox-prod-admin")
        assert result.returncode != 0
        assert "certificate" in result.stderr


class TestAuthentication:
    def test_kubectl_with_a_wrong_token_is_unauthorized(self, kubectl: Kubectl) -> None:
        result = kubectl("get", "deployments", "-n", "prod", "--token=not-a-token")
        assert result.returncode == 1
        assert "error: You must be logged in to the server" in result.stderr

    def test_no_token_gets_the_401_status(self, stack: SandboxStack) -> None:
        """Kubernetes' own Status body, with TLS verified against the sandbox CA."""
        assert stack.kube is not None
        answer = requests.get(stack.kube.cluster("prod").url + "/api/v1/namespaces/prod/pods",
                              verify=str(stack.kube.auth.write_ca(Path(stack.directory or ".") / "ca.crt")), timeout=5)
        assert answer.status_code == 401
        assert answer.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": "Unauthorized", "reason": "Unauthorized", "code": 401}

    def test_lightkube_sees_the_bot_and_the_admin(self, kubeconfig: Path) -> None:
        bot = lightkube_client(kubeconfig, "sandbox-prod")
        assert any(d.metadata.name == "payment-api" for d in bot.list(Deployment, namespace="prod"))
        admin = lightkube_client(kubeconfig, "sandbox-prod-admin")
        assert any(p.metadata.name.startswith("payment-api-") for p in admin.list(Pod, namespace="prod"))

    def test_kubectl_whoami_names_each_identity(self, kubectl: Kubectl) -> None:
        assert BOT in kubectl("auth", "whoami").stdout
        assert "kubernetes-admin" in kubectl("auth", "whoami", context="sandbox-prod-admin").stdout


class TestRbac:
    def test_the_sandbox_rules_are_the_charts(self) -> None:
        """sandbox/kube/rbac_rules.yaml is a copy of the chart's svcbot.namespaceRules block: they must not drift."""
        text = HELPERS.read_text(encoding="utf-8")
        block = re.search(r'\{\{- define "svcbot\.namespaceRules" -\}\}\n(.*?)\{\{- end -\}\}', text, re.S)
        assert block is not None
        assert yaml.safe_load(block.group(1)) == yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))

    def test_kubectl_create_as_the_bot_is_forbidden(self, kubectl: Kubectl) -> None:
        name = f"rbac-{uuid.uuid4().hex[:6]}"
        result = kubectl("create", "-f", "-", "-n", "prod", stdin=deployment_yaml(name))
        assert result.returncode == 1
        assert (f'deployments.apps is forbidden: User "{BOT}" cannot create resource "deployments" in API group '
                '"apps" in the namespace "prod"') in result.stderr

    @pytest.mark.parametrize(("args", "answer"), [
        (("get", "deployments", "-n", "prod"), "yes"),
        (("patch", "deployments", "-n", "prod"), "yes"),
        (("create", "deployments", "-n", "prod"), "no"),
        (("delete", "pods", "-n", "prod"), "no"),
        (("get", "pods", "--subresource=log", "-n", "prod"), "yes"),
        (("update", "leases", "-n", "prod"), "yes"),
        (("get", "pods", "-n", "staging"), "no"),  # staging is another cluster's namespace
        (("list", "pods", "-n", "kube-system"), "no"),
        (("list", "pods", "--all-namespaces"), "no"),
        (("create", "pods/exec", "-n", "prod"), "no"),
    ])
    def test_kubectl_auth_can_i_answers_from_the_charts_role(self, kubectl: Kubectl, args: tuple[str, ...],
                                                              answer: str) -> None:
        """On the prod cluster the bot's Role is bound in prod only."""
        result = kubectl("auth", "can-i", *args)
        assert result.stdout.strip() == answer, result.stderr
        assert result.returncode == (0 if answer == "yes" else 1)

    def test_the_bot_is_bound_in_the_namespaces_of_each_cluster(self, kubectl: Kubectl) -> None:
        for namespace in ("dev", "staging"):
            result = kubectl("auth", "can-i", "update", "leases", "-n", namespace, context="sandbox-nonprod")
            assert result.stdout.strip() == "yes", result.stderr
        assert kubectl("auth", "can-i", "list", "pods", "-n", "default", context="sandbox-nonprod").returncode == 1

    def test_the_admin_can_do_anything(self, kubectl: Kubectl) -> None:
        assert kubectl("auth", "can-i", "*", "*", "--all-namespaces", context="sandbox-prod-admin").stdout.strip() \
            == "yes"

    def test_lightkube_gets_the_real_403_status(self, kubeconfig: Path) -> None:
        bot = lightkube_client(kubeconfig, "sandbox-prod")
        with pytest.raises(ApiError) as caught:
            bot.delete(Deployment, "payment-api", namespace="prod")
        status: Any = caught.value.status
        assert (status.code, status.reason) == (403, "Forbidden")
        assert status.message == (f'deployments.apps "payment-api" is forbidden: User "{BOT}" cannot delete resource '
                                  '"deployments" in API group "apps" in the namespace "prod"')
        with pytest.raises(ApiError) as caught:
            list(bot.list(Pod, namespace="*"))
        assert caught.value.status.message.endswith('cannot list resource "pods" in API group "" at the cluster scope')

    @pytest.mark.filterwarnings("ignore:Kubernetes version:UserWarning")  # kr8s 0.20 knows versions up to 1.35
    def test_kr8s_as_the_bot_reads_deployments_but_cannot_create_configmaps(self, kubeconfig: Path) -> None:
        api = kr8s.api(kubeconfig=str(kubeconfig), context="sandbox-prod")
        deployment = kr8s.objects.Deployment.get("payment-api", namespace="prod", api=api)
        assert deployment.raw["spec"]["template"]["spec"]["containers"][0]["name"] == "app"
        config_map = kr8s.objects.ConfigMap({"metadata": {"name": "not-allowed", "namespace": "prod"},
                                             "data": {"a": "1"}}, api=api)
        with pytest.raises(kr8s.ServerError) as caught:
            config_map.create()
        assert caught.value.response is not None
        assert caught.value.response.status_code == 403
