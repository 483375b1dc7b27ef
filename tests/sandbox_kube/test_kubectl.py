"""The real kubectl (from the venv) against the sandbox: if kubectl cannot tell the difference, the
sandbox does not lie about the verbs svcbot mirrors (get, set image, rollout status, rollout undo)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from kube_helpers import KUBECTL, unique, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
IMAGE = "jsonpath={.spec.template.spec.containers[0].image}"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed ({result.returncode}): {result.stderr}"
    return result.stdout


def test_get_shows_the_columns_of_a_real_server(kubectl: Kubectl) -> None:
    """`get deploy,rs,pods` prints READY/UP-TO-DATE/AVAILABLE, DESIRED/CURRENT/READY and READY/STATUS/RESTARTS."""
    out = ok(kubectl("get", "deploy,rs,pods", "-n", "prod"))
    assert re.search(r"NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE", out)
    assert re.search(r"NAME\s+DESIRED\s+CURRENT\s+READY\s+AGE", out)
    assert re.search(r"NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE", out)
    assert re.search(r"deployment\.apps/payment-api\s+\d/3\s+\d\s+\d", out)
    assert re.search(r"pod/inventory-\S+\s+0/1\s+(CrashLoopBackOff|Error)\s+\d+ \(\S+ ago\)", out), out


def test_get_missing_deployment_is_not_found(kubectl: Kubectl) -> None:
    """A missing object is the server's NotFound Status, printed the way kubectl prints it."""
    result = kubectl("get", "deploy", "nosuch", "-n", "prod")
    assert result.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "nosuch" not found' in result.stderr


def test_set_image_rollout_status_and_undo(kubectl: Kubectl) -> None:
    """set image -> rollout status reports progress, then success; rollout undo goes back to 1.4.1."""
    args = ("-n", "prod")
    ok(kubectl("rollout", "pause", "deployment/payment-api", *args))
    out = ok(kubectl("set", "image", "deployment/payment-api", "app=registry.example.com/payment:1.4.2", *args))
    assert "image updated" in out
    status = subprocess.Popen([str(KUBECTL), "--context", "sandbox-prod-admin", "rollout", "status",
                               "deployment/payment-api", "--timeout=60s", *args],
                              env=kubectl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # type: ignore[attr-defined]
    try:
        assert status.stdout is not None
        lines = []
        while not any(line.startswith('Waiting for deployment "payment-api" rollout to finish') for line in lines):
            assert len(lines) < 5, lines  # at most "Waiting for deployment spec update to be observed..." before
            lines.append(status.stdout.readline())
        ok(kubectl("rollout", "resume", "deployment/payment-api", *args))
        rest, err = status.communicate(timeout=60)
    finally:
        status.kill()
    assert status.returncode == 0, err
    assert rest.strip().splitlines()[-1] == 'deployment "payment-api" successfully rolled out'
    image = ok(kubectl("get", "deploy", "payment-api", *args, "-o", IMAGE))
    assert image == "registry.example.com/payment:1.4.2"

    out = ok(kubectl("rollout", "undo", "deployment/payment-api", *args))
    assert "rolled back" in out
    ok(kubectl("rollout", "status", "deployment/payment-api", "--timeout=60s", *args))
    image = ok(kubectl("get", "deploy", "payment-api", *args, "-o", IMAGE))
    assert image == "registry.example.com/payment:1.4.1"
    history = ok(kubectl("rollout", "history", "deployment/payment-api", *args))
    revisions = [int(line.split()[0]) for line in history.splitlines() if line[:1].isdigit()]
    assert revisions == sorted(revisions)
    assert len(revisions) >= 2


def create_deployment(kubectl: Kubectl, tmp: Path, name: str, image: str, replicas: int, namespace: str,
                      context: str = "sandbox-prod-admin") -> None:
    """What `kubectl create deployment` makes (that verb sends protobuf, which the sandbox does not decode)."""
    manifest = tmp / f"{name}.yaml"
    manifest.write_text(
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\n"
        f"spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n"
        f"  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
        f"    spec: {{containers: [{{name: payment, image: '{image}'}}]}}\n")
    ok(kubectl("create", "-f", str(manifest), "-n", namespace, context=context))


def test_plain_rollout_of_a_created_deployment(kubectl: Kubectl, tmp_path: Path) -> None:
    """`kubectl create -f`, then set image and rollout status without pausing."""
    name = unique("web")
    args = ("-n", "staging")
    create_deployment(kubectl, tmp_path, name, "registry.example.com/payment:1.4.1", 3, "staging",
                      "sandbox-nonprod-admin")
    ok(kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s", *args, context="sandbox-nonprod-admin"))
    ok(kubectl("set", "image", f"deployment/{name}", "payment=registry.example.com/payment:1.4.3", *args,
               context="sandbox-nonprod-admin"))
    out = ok(kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s", *args,
                     context="sandbox-nonprod-admin"))
    assert out.strip().endswith(f'deployment "{name}" successfully rolled out')
    ok(kubectl("delete", "deployment", name, *args, context="sandbox-nonprod-admin"))


def test_rollout_status_on_a_missing_tag_never_completes(kubectl: Kubectl, tmp_path: Path) -> None:
    """A tag the registry lacks: rollout status times out, the new pod shows ImagePullBackOff, events say why."""
    name = unique("pay")
    args = ("-n", "prod")
    create_deployment(kubectl, tmp_path, name, "registry.example.com/payment:1.4.1", 2, "prod")
    ok(kubectl("rollout", "status", f"deployment/{name}", "--timeout=60s", *args))
    ok(kubectl("set", "image", f"deployment/{name}", "payment=registry.example.com/payment:9.9.9", *args))
    started = time.monotonic()
    result = kubectl("rollout", "status", f"deployment/{name}", "--timeout=2s", *args)
    assert result.returncode != 0
    assert time.monotonic() - started >= 1.5
    assert "Waiting for deployment" in result.stdout
    assert "timed out" in result.stderr

    def backoff_pod() -> str:
        out = ok(kubectl("get", "pods", *args, "--no-headers"))
        for line in out.splitlines():
            if line.startswith(name) and "ImagePullBackOff" in line:
                return line.split()[0]
        return ""

    pod = wait_for(backoff_pod, timeout=15, what="a pod in ImagePullBackOff")
    events = ok(kubectl("get", "events", *args, "--field-selector", f"involvedObject.name={pod}"))
    assert 'Failed to pull image "registry.example.com/payment:9.9.9"' in events
    assert "ErrImagePull" in events
    assert "Back-off pulling image" in events
    assert all(pod in line for line in events.splitlines()[1:])
    # the old pods still serve: maxUnavailable 25% of 2 is 0
    out = ok(kubectl("get", "deploy", name, *args, "--no-headers"))
    assert out.split()[1] == "2/2"
    ok(kubectl("delete", "deployment", name, *args))


def test_logs_describe_and_apply(kubectl: Kubectl, tmp_path: Path) -> None:
    """Other everyday verbs work too: logs --previous of a crash-looping pod, describe, apply."""
    pods = ok(kubectl("get", "pods", "-n", "prod", "-l", "app=inventory", "-o",
                      "jsonpath={range .items[*]}{.metadata.name} "
                      "{.status.containerStatuses[0].restartCount}{'\\n'}{end}"))
    crashing = [line.split()[0] for line in pods.splitlines() if line.split()[1] != "0"]
    assert crashing, pods
    previous = ok(kubectl("logs", crashing[0], "-n", "prod", "--previous"))
    assert "panic: runtime error" in previous
    described = ok(kubectl("describe", "pod", crashing[0], "-n", "prod"))
    assert "CrashLoopBackOff" in described
    assert "Exit Code:    1" in described
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {a: '1'}\n")
    assert "created" in ok(kubectl("apply", "-f", str(manifest), "-n", "dev", context="sandbox-nonprod-admin"))
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {a: '2'}\n")
    assert "configured" in ok(kubectl("apply", "-f", str(manifest), "-n", "dev", context="sandbox-nonprod-admin"))
    data = ok(kubectl("get", "cm", "applied", "-n", "dev", "-o", "jsonpath={.data.a}", context="sandbox-nonprod-admin"))
    assert data == "2"
