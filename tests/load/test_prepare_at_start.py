"""At start-up the bot prepares every cluster's client in the background, so the first command after a
restart does not pay for importing the Kubernetes client and reading the kubeconfig; preparing sends no
request, and a cluster whose config is broken is left for its commands to report."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bot.clients.backends import Backends
from bot.core.catalog import load_catalog
from sandbox.stack import SandboxStack


def test_prepare_builds_every_client_without_a_request(stack: SandboxStack, catalog: Callable[..., Path]) -> None:
    assert stack.kube is not None
    backends = Backends(load_catalog(catalog()))
    time.sleep(0.2)  # let requests from earlier tests' bots settle
    before = {name: len(cluster.requests) for name, cluster in stack.kube.clusters.items()}
    backends.prepare_kube()
    assert all(backends.kube(name).prepared for name in backends.catalog.clusters)
    assert {name: len(cluster.requests) for name, cluster in stack.kube.clusters.items()} == before
    backends.close()


def test_a_broken_cluster_is_left_for_its_commands(catalog: Callable[..., Path], tmp_path: Path) -> None:
    raw = yaml.safe_load(catalog().read_text(encoding="utf-8"))
    raw["clusters"]["prod"] = {"context": "no-such-context"}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    backends = Backends(load_catalog(path))
    backends.prepare_kube()  # logs, does not raise
    assert backends.kube("nonprod").prepared
    assert not backends.kube("prod").prepared
    backends.close()
