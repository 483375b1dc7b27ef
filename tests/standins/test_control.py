"""Failures driven from outside the sandbox's process: the control URL in DIR/control.json (plain HTTP with
its token) and `svcbot sandbox fault`, checked with kubectl, a raw watch and Loki's HTTP API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from standins_helpers import KUBECTL, Kubectl, deployment_yaml

from sandbox.stack import SandboxStack

SVCBOT = Path(sys.executable).parent / "svcbot"
TENANT = {"X-Scope-OrgID": "ops"}


def control(stack: SandboxStack, path: str, body: dict[str, Any] | None = None,
            token: str | None = None) -> requests.Response:
    assert stack.directory is not None
    info = json.loads((stack.directory / "control.json").read_text())
    headers = {"Authorization": f"Bearer {info['token'] if token is None else token}"}
    url = info["url"] + path.removeprefix("_sandbox/")  # info["url"] ends with /_sandbox/
    if body is None:
        return requests.get(url, headers=headers, timeout=10)
    return requests.post(url, json=body, headers=headers, timeout=10)


def fault_cli(directory: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SVCBOT), "sandbox", "fault", "--dir", str(directory), *words], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture(name="clean", autouse=True)
def fixture_clean(stack: SandboxStack) -> Iterator[None]:
    yield
    control(stack, "_sandbox/clear", {})


def test_the_control_file_and_its_token(stack: SandboxStack) -> None:
    assert stack.directory is not None
    path = stack.directory / "control.json"
    assert path.stat().st_mode & 0o777 == 0o600
    info = json.loads(path.read_text())
    assert info["url"].startswith("http://127.0.0.1:")
    assert control(stack, "_sandbox/", token="wrong").status_code == 401
    state = control(stack, "_sandbox/").json()
    assert state["kube"] == {"nonprod": {"fault": None}, "prod": {"fault": None}}
    assert control(stack, "_sandbox/kube/nowhere/fault", {"mode": "down"}).status_code == 404
    assert control(stack, "_sandbox/kube/prod/fault", {"mode": "melt"}).status_code == 400


def test_a_cluster_goes_down_and_comes_back(stack: SandboxStack, kubectl: Kubectl) -> None:
    state = control(stack, "_sandbox/kube/prod/fault", {"mode": "down"}).json()
    assert state["kube"]["prod"]["fault"]["mode"] == "down"
    result = kubectl("get", "pods", "-n", "prod", "--request-timeout=10s", context="sandbox-prod-admin")
    assert result.returncode == 1
    assert "connection refused" in result.stderr
    assert kubectl("get", "pods", "-n", "dev", context="sandbox-nonprod-admin").returncode == 0  # only prod
    control(stack, "_sandbox/kube/prod/clear", {})
    assert kubectl("get", "pods", "-n", "prod", context="sandbox-prod-admin").returncode == 0


def test_a_stalled_cluster_times_kubectl_out(stack: SandboxStack, kubectl: Kubectl) -> None:
    control(stack, "_sandbox/kube/prod/fault", {"mode": "stall"})
    result = kubectl("get", "deployments", "-n", "prod", "--request-timeout=2s", context="sandbox-prod-admin")
    assert result.returncode == 1
    assert "Timeout" in result.stderr or "deadline" in result.stderr
    control(stack, "_sandbox/kube/prod/clear", {})
    assert kubectl("get", "deployments", "-n", "prod", context="sandbox-prod-admin").returncode == 0


def test_the_cli_counts_500s_and_403s_for_a_resource_and_verb(stack: SandboxStack, kubectl: Kubectl) -> None:
    assert stack.directory is not None
    done = fault_cli(stack.directory, "kube", "prod", "500", "--resource", "deployments", "--verb", "get",
                     "--count", "2")
    assert done.returncode == 0, done.stderr
    assert "kube prod: 500 for get deployments (2 left)" in done.stdout
    assert kubectl("get", "pods", "-n", "prod", context="sandbox-prod-admin").returncode == 0  # another resource
    for _ in range(2):
        result = kubectl("get", "deployment", "payment-api", "-n", "prod", context="sandbox-prod-admin")
        assert result.returncode == 1
        assert "Error from server (InternalError)" in result.stderr
    assert kubectl("get", "deployment", "payment-api", "-n", "prod", context="sandbox-prod-admin").returncode == 0
    done = fault_cli(stack.directory, "kube", "nonprod", "403", "--resource", "pods", "--verb", "list",
                     "--count", "1")
    assert done.returncode == 0, done.stderr
    result = kubectl("get", "pods", "-n", "staging", context="sandbox-nonprod-admin")
    assert "Error from server (Forbidden)" in result.stderr
    assert kubectl("get", "pods", "-n", "staging", context="sandbox-nonprod-admin").returncode == 0
    shown = fault_cli(stack.directory, "show")
    assert shown.stdout.splitlines()[:2] == ["kube nonprod: normal", "kube prod: normal"]
    assert fault_cli(stack.directory, "kube", "prod", "melt").returncode == 1


def test_expired_watches_end_with_410(stack: SandboxStack) -> None:
    """A raw watch (what client-go's reflector holds open) gets the ERROR event with the 410 Status."""
    assert stack.kube is not None
    assert stack.directory is not None
    cluster = stack.kube.cluster("prod")
    ca = stack.kube.auth.write_ca(stack.directory / "ca.crt")
    events: list[dict[str, Any]] = []
    opened = threading.Event()

    def watch() -> None:
        with requests.get(cluster.url + "/api/v1/namespaces/prod/configmaps?watch=1&timeoutSeconds=60",
                          headers=stack.kube.admin_headers(), verify=str(ca), stream=True, timeout=60) as answer:
            for line in answer.iter_lines():
                if line:
                    events.append(json.loads(line))
                    opened.set()
                    if events[-1]["type"] == "ERROR":
                        return

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    assert opened.wait(30)  # the initial ADDED events: the watch is open
    assert control(stack, "_sandbox/kube/prod/expire-watches", {}).status_code == 200
    reader.join(30)
    assert not reader.is_alive()
    error = events[-1]
    assert error["type"] == "ERROR"
    assert (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")
    assert error["object"]["message"].startswith("too old resource version:")


def test_kubectl_rollout_status_survives_an_expired_watch(stack: SandboxStack, kubectl: Kubectl) -> None:
    """Mid-rollout, the watches expire: kubectl rollout status (client-go's UntilWithSync) relists and still
    sees the rollout finish."""
    name = f"expire-{uuid.uuid4().hex[:6]}"
    slow = ("  template:\n    metadata: {labels: {app: NAME}}\n    spec:\n      containers:\n"
            "      - name: app\n        image: registry.example.com/payment:1.4.2\n"
            "        readinessProbe: {httpGet: {path: /readyz, port: 8080}, initialDelaySeconds: 100}\n")
    manifest = deployment_yaml(name).split("  template:")[0] + slow.replace("NAME", name)
    admin = "sandbox-prod-admin"
    assert kubectl("create", "-f", "-", "-n", "prod", context=admin, stdin=manifest).returncode == 0
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(stack.directory),
           "KUBECONFIG": str(Path(str(stack.directory)) / "kubeconfig")}
    watcher = subprocess.Popen([str(KUBECTL), "--context", admin, "rollout", "status", f"deployment/{name}",
                                "-n", "prod", "--timeout=120s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()  # kubectl is watching, and the pod is not ready yet (5 s at 0.05)
        assert first.startswith("Waiting for deployment"), first
        assert control(stack, "_sandbox/kube/prod/expire-watches", {}).status_code == 200
        out, err = watcher.communicate(timeout=150)
        assert watcher.returncode == 0, err
        assert f'deployment "{name}" successfully rolled out' in out
        assert stack.kube is not None
        watches = [path for _method, path, _code in list(stack.kube.cluster("prod").requests)
                   if "/deployments" in path and "watch=true" in path and name in path]
        assert len(watches) >= 2, watches  # the expired watch, and the one after relisting
    finally:
        if watcher.poll() is None:
            watcher.kill()
        kubectl("delete", "deployment", name, "-n", "prod", "--ignore-not-found", context=admin)


@pytest.mark.parametrize(("status", "body"), [
    (429, "too many outstanding requests"),
    (500, "rpc error: code = Internal desc = sandbox fault injection"),
    (504, "request timed out"),
])
def test_loki_answers_the_status_asked_for(stack: SandboxStack, status: int, body: str) -> None:
    assert stack.directory is not None
    done = fault_cli(stack.directory, "loki", str(status), "--times", "2")
    assert done.returncode == 0, done.stderr
    assert f"loki: 2 x {status}" in done.stdout
    url = stack.loki_url() + "/loki/api/v1/query_range"
    params = {"query": '{namespace="prod"}', "limit": "1"}
    for _ in range(2):
        answer = requests.get(url, params=params, headers=TENANT, timeout=10)
        assert answer.status_code == status
        assert answer.text.startswith(body)
    assert requests.get(url, params=params, headers=TENANT, timeout=10).status_code == 200


def test_a_stalled_loki_holds_queries_until_cleared(stack: SandboxStack) -> None:
    assert stack.directory is not None
    assert fault_cli(stack.directory, "loki", "stall").returncode == 0
    url = stack.loki_url() + "/loki/api/v1/labels"
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, headers=TENANT, timeout=1.5)
    assert fault_cli(stack.directory, "loki", "clear").returncode == 0
    assert requests.get(url, headers=TENANT, timeout=10).status_code == 200


@pytest.mark.skipif(not KUBECTL.exists(), reason="no kubectl in the venv")
def test_svcbot_sandbox_writes_its_control_file(tmp_path: Path) -> None:
    """`svcbot sandbox --dir DIR` in its own process; `svcbot sandbox fault --dir DIR` drives it; Ctrl-C ends
    it and takes control.json away."""
    env = dict(os.environ, SVCBOT_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([str(SVCBOT), "sandbox", "--dir", str(tmp_path), "--time-scale", "0.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner ends with how to stop it, once everything listens
            if line.startswith("Ctrl-C here stops the sandbox"):
                break
        assert (tmp_path / "control.json").exists()
        done = fault_cli(tmp_path, "kube", "prod", "500", "--resource", "pods", "--count", "1")
        assert done.returncode == 0, done.stderr
        kube = [str(KUBECTL), "--kubeconfig", str(tmp_path / "kubeconfig"), "--context", "sandbox-prod-admin"]
        first = subprocess.run([*kube, "get", "pods", "-n", "prod"], capture_output=True, text=True, timeout=60,
                               check=False)
        assert "Error from server (InternalError)" in first.stderr
        second = subprocess.run([*kube, "get", "pods", "-n", "prod"], capture_output=True, text=True, timeout=60,
                                check=False)
        assert second.returncode == 0, second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0
    assert not (tmp_path / "control.json").exists()
    assert fault_cli(tmp_path, "show").returncode == 2
