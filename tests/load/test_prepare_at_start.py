"""At start-up the bot prepares every cluster's client in the background, so the first command after a
restart does not pay for importing the Kubernetes client and reading the kubeconfig; preparing sends no
request, and a cluster whose config is broken is left for its commands to report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bot.clients.backends import Backends
from bot.core.catalog import load_catalog
from sandbox.kube import KubeSandbox


def test_prepare_builds_every_client_without_a_request(catalog: Callable[..., Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Clusters of its own, which nothing else in this process talks to (the shared sandbox may still be
    # finishing requests of earlier tests' bots): every request they log is one this test caused.
    with KubeSandbox(time_scale=0.02) as kube:
        monkeypatch.setenv("KUBECONFIG", str(kube.write_kubeconfig(tmp_path / "kubeconfig")))
        backends = Backends(load_catalog(catalog()))
        assert set(backends.catalog.clusters) == set(kube.clusters)
        backends.prepare_kube()
        try:
            assert all(backends.kube(name).prepared for name in backends.catalog.clusters)
            assert {name: list(cluster.requests) for name, cluster in kube.clusters.items()} == \
                {name: [] for name in kube.clusters}
            assert [backends.kube(name).request_count for name in backends.catalog.clusters] == \
                [0] * len(kube.clusters)
        finally:
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
