"""Writes the real server refuses or changes: unknown fields (dropped with a Warning, or 400 under
fieldValidation=Strict), a Lease PUT without resourceVersion (422; Deployments and ConfigMaps allow it),
and exec / attach / port-forward (a clear Status: the sandbox runs no processes)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import kr8s
import pytest
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap
from standins_helpers import Kubectl, deployment_yaml


def client(kubeconfig: Path, context: str = "sandbox-prod") -> Client:
    return Client(config=KubeConfig.from_file(kubeconfig).get(context_name=context))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class TestUnknownFields:
    def test_kubectl_strict_by_default_is_refused_with_400(self, kubectl: Kubectl) -> None:
        result = kubectl("create", "-f", "-", "-n", "prod", context="sandbox-prod-admin",
                         stdin=deployment_yaml(unique("strict"), "  foo: bar\n"))
        assert result.returncode == 1
        assert "Error from server (BadRequest)" in result.stderr
        assert 'cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo"' in result.stderr

    def test_kubectl_warn_drops_the_field_and_says_so(self, kubectl: Kubectl) -> None:
        name = unique("warn")
        result = kubectl("create", "--validate=warn", "-f", "-", "-n", "prod", context="sandbox-prod-admin",
                         stdin=deployment_yaml(name, "  foo: bar\n"))
        assert result.returncode == 0, result.stderr
        assert 'Warning: unknown field "spec.foo"' in result.stderr
        spec = kubectl("get", "deployment", name, "-n", "prod", "-o", "jsonpath={.spec}", context="sandbox-prod-admin")
        assert "foo" not in spec.stdout
        kubectl("delete", "deployment", name, "-n", "prod", context="sandbox-prod-admin")

    @pytest.mark.filterwarnings("ignore:Kubernetes version:UserWarning")  # kr8s 0.20 knows versions up to 1.35
    def test_kr8s_create_keeps_only_declared_fields(self, kubeconfig: Path) -> None:
        api = kr8s.api(kubeconfig=str(kubeconfig), context="sandbox-prod-admin")
        name = unique("kr8s")
        cm = kr8s.objects.ConfigMap({"metadata": {"name": name, "namespace": "prod"}, "data": {"a": "1"},
                                     "spec": {"x": 1}, "dataa": {"typo": "1"}}, api=api)
        cm.create()
        try:
            stored = kr8s.objects.ConfigMap.get(name, namespace="prod", api=api).raw
            assert stored["data"] == {"a": "1"}
            assert "spec" not in stored
            assert "dataa" not in stored
        finally:
            cm.delete()


class TestLeaseUpdates:
    def test_a_lease_put_without_resource_version_is_invalid(self, kubeconfig: Path) -> None:
        """The bot's own identity may create and update Leases; an unconditional update is still refused."""
        bot = client(kubeconfig)
        name = unique("lease")
        now = dt.datetime.now(dt.UTC)
        created = bot.create(Lease(metadata=ObjectMeta(name=name, namespace="prod"),
                                   spec=LeaseSpec(holderIdentity="a", leaseDurationSeconds=15, renewTime=now)))
        assert created.metadata is not None
        assert created.metadata.resourceVersion
        blind = Lease(metadata=ObjectMeta(name=name, namespace="prod"),
                      spec=LeaseSpec(holderIdentity="b", leaseDurationSeconds=15, renewTime=now))
        with pytest.raises(ApiError) as caught:
            bot.replace(blind)
        status: Any = caught.value.status
        assert (status.code, status.reason) == (422, "Invalid")
        assert status.message == (f'leases.coordination.k8s.io "{name}" is invalid: metadata.resourceVersion: '
                                  "Invalid value: 0x0: must be specified for an update")
        blind.metadata.resourceVersion = created.metadata.resourceVersion  # type: ignore[union-attr]
        assert bot.replace(blind).spec.holderIdentity == "b"  # type: ignore[union-attr]

    def test_configmaps_and_deployments_still_allow_it(self, kubeconfig: Path, kubectl: Kubectl) -> None:
        admin = client(kubeconfig, "sandbox-prod-admin")
        name = unique("cm")
        admin.create(ConfigMap(metadata=ObjectMeta(name=name, namespace="prod"), data={"a": "1"}))
        replaced = admin.replace(ConfigMap(metadata=ObjectMeta(name=name, namespace="prod"), data={"a": "2"}))
        assert replaced.data == {"a": "2"}
        admin.delete(ConfigMap, name, namespace="prod")
        deployment = unique("put")
        assert kubectl("create", "-f", "-", "-n", "prod", context="sandbox-prod-admin",
                       stdin=deployment_yaml(deployment)).returncode == 0
        result = kubectl("replace", "-f", "-", "-n", "prod", context="sandbox-prod-admin",
                         stdin=deployment_yaml(deployment).replace("replicas: 1", "replicas: 2"))
        assert result.returncode == 0, result.stderr
        kubectl("delete", "deployment", deployment, "-n", "prod", context="sandbox-prod-admin")


class TestStreams:
    @pytest.mark.parametrize("sub", ["exec", "attach", "portforward"])
    def test_exec_attach_and_port_forward_say_the_sandbox_does_not_support_them(self, stack: Any, sub: str) -> None:
        import requests  # noqa: PLC0415

        kube = stack.kube
        pod = next(p["metadata"]["name"] for p in kube.cluster("prod").objects("pods", "prod"))
        ca = kube.auth.write_ca(Path(stack.directory) / "ca.crt")
        answer = requests.post(f"{kube.cluster('prod').url}/api/v1/namespaces/prod/pods/{pod}/{sub}",
                               headers=kube.admin_headers(), verify=str(ca), timeout=5)
        assert answer.status_code == 400
        assert answer.json()["reason"] == "BadRequest"
        assert f"pods/{sub} is not supported by the sandbox" in answer.json()["message"]

    def test_kubectl_exec_reports_it(self, kubectl: Kubectl, stack: Any) -> None:
        pod = next(p["metadata"]["name"] for p in stack.kube.cluster("prod").objects("pods", "prod"))
        result = kubectl("exec", pod, "-n", "prod", "--", "true", context="sandbox-prod-admin")
        assert result.returncode != 0
        assert "not supported by the sandbox" in result.stderr, result.stderr

    def test_the_bot_may_not_exec_at_all(self, kubectl: Kubectl, stack: Any) -> None:
        pod = next(p["metadata"]["name"] for p in stack.kube.cluster("prod").objects("pods", "prod"))
        result = kubectl("exec", pod, "-n", "prod", "--", "true")
        assert "forbidden" in result.stderr
