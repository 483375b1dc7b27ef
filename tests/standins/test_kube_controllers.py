"""The controllers a real cluster runs, seen through kubectl and lightkube: the HPA keeps its deployment
within min/max (scaled below its minimum, it comes back) and its status moves; a Job's outcome follows what
its command plainly means (`false`, `true`, `sh -c 'exit N'`), or the registry's marker on its image, and its
log says what ran."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from standins_helpers import Kubectl, deployment_yaml

ADMIN = "sandbox-prod-admin"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def ok(result: object) -> str:
    assert getattr(result, "returncode", 1) == 0, getattr(result, "stderr", "")
    return str(getattr(result, "stdout", ""))


def hpa_yaml(name: str, low: int, high: int) -> str:
    return json.dumps({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
                       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                                "minReplicas": low, "maxReplicas": high,
                                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                                    "type": "Utilization", "averageUtilization": 70}}}]}})


class TestHpa:
    def test_keeps_replicas_within_bounds_and_says_so(self, kubectl: Kubectl, kubeconfig: Path) -> None:
        name = unique("hpa")
        ok(kubectl("create", "-f", "-", "-n", "prod", context=ADMIN, stdin=deployment_yaml(name)))
        try:
            # (`kubectl autoscale` sends the HPA as protobuf, which the sandbox does not decode: a manifest)
            ok(kubectl("create", "-f", "-", "-n", "prod", context=ADMIN, stdin=hpa_yaml(name, 3, 5)))
            # below its minimum from the start: the HPA scales it up to 3
            ok(kubectl("wait", f"deployment/{name}", "-n", "prod", "--for=jsonpath={.spec.replicas}=3",
                       "--timeout=90s", context=ADMIN, timeout=120))
            ok(kubectl("wait", f"hpa/{name}", "-n", "prod", "--for=jsonpath={.status.currentReplicas}=3",
                       "--timeout=90s", context=ADMIN, timeout=120))
            hpa = Client(config=KubeConfig.from_file(kubeconfig).get(context_name=ADMIN)).get(
                HorizontalPodAutoscaler, name, namespace="prod")
            assert hpa.status is not None
            assert hpa.status.desiredReplicas == 3
            assert hpa.status.lastScaleTime is not None
            conditions = {c.type: c for c in hpa.status.conditions or []}
            assert conditions["AbleToScale"].status == "True"
            assert conditions["ScalingLimited"].status == "True"
            assert conditions["ScalingLimited"].reason == "TooFewReplicas"
            # a person scales it below the minimum: it comes back
            ok(kubectl("scale", "deployment", name, "-n", "prod", "--replicas=1", context=ADMIN))
            ok(kubectl("wait", "events", "-n", "prod", "--for=jsonpath={.message}=New size: 3; reason: Current "
                       "number of replicas below Spec.MinReplicas",
                       f"--field-selector=involvedObject.name={name},reason=SuccessfulRescale",
                       "--timeout=90s", context=ADMIN, timeout=120))
            ok(kubectl("wait", f"deployment/{name}", "-n", "prod", "--for=jsonpath={.spec.replicas}=3",
                       "--timeout=90s", context=ADMIN, timeout=120))
            events = json.loads(ok(kubectl("get", "events", "-n", "prod", "-o", "json",
                                           f"--field-selector=involvedObject.name={name},reason=SuccessfulRescale",
                                           context=ADMIN)))["items"]
            assert sum(int(e.get("count", 1)) for e in events) >= 2
            # and above its maximum: back to 5 at once, then down to the minimum the load asks for
            ok(kubectl("scale", "deployment", name, "-n", "prod", "--replicas=9", context=ADMIN))
            ok(kubectl("wait", "events", "-n", "prod", "--for=jsonpath={.reason}=SuccessfulRescale",
                       f"--field-selector=involvedObject.name={name},reason=SuccessfulRescale",
                       "--timeout=90s", context=ADMIN, timeout=120))
            ok(kubectl("wait", f"deployment/{name}", "-n", "prod", "--for=jsonpath={.spec.replicas}=3",
                       "--timeout=90s", context=ADMIN, timeout=120))
            table = ok(kubectl("get", "hpa", name, "-n", "prod", context=ADMIN))
            assert f"Deployment/{name}" in table
            assert "cpu: 23%/70%" in table  # the load it started with (1 pod at target) over 3 pods
        finally:
            kubectl("delete", "hpa", name, "-n", "prod", "--ignore-not-found", context=ADMIN)
            kubectl("delete", "deployment", name, "-n", "prod", "--ignore-not-found", context=ADMIN)

    def test_the_seeded_hpa_is_settled(self, kubectl: Kubectl) -> None:
        """payment-api in prod at its minimum of 3: nothing to scale, the status as seeded."""
        status = json.loads(ok(kubectl("get", "hpa", "payment-api", "-n", "prod", "-o", "jsonpath={.status}",
                                       context=ADMIN)))
        assert (status["currentReplicas"], status["desiredReplicas"]) == (3, 3)
        assert "lastScaleTime" not in status
        reasons = {c["type"]: c["reason"] for c in status["conditions"]}
        assert reasons == {"AbleToScale": "ReadyForNewScale", "ScalingActive": "ValidMetricFound",
                           "ScalingLimited": "TooFewReplicas"}


def job_yaml(name: str, image: str, command: list[str]) -> str:
    return json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                       "spec": {"backoffLimit": 0, "template": {"spec": {
                           "restartPolicy": "Never",
                           "containers": [{"name": "job", "image": image, "command": command}]}}}})


RUNNER = "registry.example.com/ci-runner:2"


@pytest.mark.parametrize(("image", "command", "code", "ran"), [
    (RUNNER, ["false"], 1, "+ false"),
    (RUNNER, ["true"], 0, "+ true"),
    (RUNNER, ["sh", "-c", "exit 3"], 3, "+ sh -c 'exit 3'"),
    (RUNNER, ["/bin/sh", "-c", "exit 0"], 0, "+ /bin/sh -c 'exit 0'"),
    (RUNNER, ["exit 4"], 4, "+ exit 4"),
    (RUNNER, ["/usr/local/bin/fail-fast-checker", "--no-fail"], 0, "+ /usr/local/bin/fail-fast-checker --no-fail"),
    ("registry.example.com/payment:1.5.3", ["/app/migrate", "up"], 1, "+ /app/migrate up"),
    ("registry.example.com/payment:1.5.3", ["sh", "-c", "exit 0"], 0, "+ sh -c 'exit 0'"),
])
def test_job_outcome_follows_its_command(kubectl: Kubectl, image: str, command: list[str], code: int,
                                         ran: str) -> None:
    """Plain commands decide (the word "fail" no longer does); otherwise the image's `failing` marker."""
    name = unique("job")
    ok(kubectl("create", "-f", "-", "-n", "prod", context=ADMIN, stdin=job_yaml(name, image, command)))
    try:
        want = "Failed" if code else "Complete"
        ok(kubectl("wait", f"job/{name}", "-n", "prod", f"--for=condition={want}", "--timeout=90s",
                   context=ADMIN, timeout=120))
        exit_code = ok(kubectl("get", "pods", "-n", "prod", "-l", f"job-name={name}", "-o",
                               "jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}",
                               context=ADMIN))
        assert exit_code == str(code)
        logs = ok(kubectl("logs", f"job/{name}", "-n", "prod", context=ADMIN))
        assert logs.splitlines()[0] == ran
    finally:
        kubectl("delete", "job", name, "-n", "prod", "--ignore-not-found", "--cascade=background", context=ADMIN)
