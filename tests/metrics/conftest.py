"""Fixtures for /svc metrics, status numbers and verify: one sandbox (Kubernetes + the Prometheus stand-in
scraping its pods every second) for the whole session, runtimes on catalogs derived from its catalog, and
small HTTP servers standing in for a Prometheus that is slow or answers errors (real HTTP, no mocks)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from metrics_helpers import FixedPrometheus

from bot.runtime import build_runtime
from sandbox.prometheus import PrometheusSandbox
from sandbox.stack import SandboxStack

TIME_SCALE = 0.02
SCRAPE_INTERVAL = 1.0


@pytest.fixture(name="stack", scope="session")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    directory = tmp_path_factory.mktemp("metrics-sandbox")
    stack = SandboxStack()
    stack.prometheus = PrometheusSandbox(interval=SCRAPE_INTERVAL)
    with stack:
        stack.start(directory, time_scale=TIME_SCALE)
        _wait_for_rates(stack.prometheus, 'http_requests_total{namespace="prod",app="payment"}')
        yield stack


def _wait_for_rates(prometheus: PrometheusSandbox, selector: str, timeout: float = 30.0) -> None:
    """Until the stand-in has a rate for the selector (two scrapes at least)."""
    import urllib.parse  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    query = urllib.parse.urlencode({"query": f"sum(rate({selector}[1m]))"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?{query}", timeout=5) as response:
            result = json.load(response)["data"]["result"]
        if result and float(result[0]["value"][1]) > 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the Prometheus stand-in has no rate of {selector} after {timeout}s")


@pytest.fixture(autouse=True)
def _files_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # render_reply writes the chart to a temporary file: keep it in the test's folder.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(name="sandbox_catalog")
def _sandbox_catalog(stack: SandboxStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The sandbox's catalog as a mapping (edit it, then `runtime_for`); KUBECONFIG points at the sandbox."""
    assert stack.directory is not None
    monkeypatch.setenv("KUBECONFIG", str(stack.directory / "kubeconfig"))
    return dict(yaml.safe_load((stack.directory / "catalog.yaml").read_text()))


@pytest.fixture(name="runtime_for")
def _runtime_for(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Any]]:
    runtimes: list[Any] = []

    def build(catalog: dict[str, Any]) -> Any:
        path = tmp_path / f"catalog-{len(runtimes)}.yaml"
        path.write_text(yaml.safe_dump(catalog, sort_keys=False))
        runtime = build_runtime(path)
        runtimes.append(runtime)
        return runtime

    yield build
    for runtime in runtimes:
        runtime.close()


@pytest.fixture(name="runtime")
def _runtime(sandbox_catalog: dict[str, Any], runtime_for: Callable[[dict[str, Any]], Any]) -> Any:
    return runtime_for(sandbox_catalog)


@pytest.fixture(name="fixed_prometheus")
def _fixed_prometheus() -> Iterator[Callable[..., FixedPrometheus]]:
    servers: list[FixedPrometheus] = []

    def make(status: int, body: dict[str, Any] | str, delay: float = 0.0) -> FixedPrometheus:
        server = FixedPrometheus(status, body, delay)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
