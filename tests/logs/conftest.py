"""Fixtures for /svc logs and /svc trace: one seeded Loki stand-in for the module, catalogs pointing at it.

The stand-in is shared (starting it and pushing the seed takes a moment); every test leaves it without
faults, and tests that push lines of their own use a namespace nobody else reads.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from logs_helpers import FixedAnswers, catalog_yaml

from bot.runtime import Runtime, build_runtime
from sandbox.loki import LokiSandbox


@pytest.fixture(name="loki", scope="session")
def _loki() -> Iterator[LokiSandbox]:
    sandbox = LokiSandbox().start()
    sandbox.push_seed(time.time())
    yield sandbox
    sandbox.stop()


@pytest.fixture(autouse=True)
def _no_faults_left(loki: LokiSandbox) -> Iterator[None]:
    loki.clear_faults()
    yield
    loki.clear_faults()


@pytest.fixture(autouse=True)
def _attachments_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # render_reply writes an attached full result to a temporary file: keep it in the test's folder.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(name="make_runtime")
def _make_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    runtimes: list[Runtime] = []

    def make(loki_url: str | None, **options: Any) -> Runtime:
        path = tmp_path / f"catalog-{len(runtimes)}.yaml"
        path.write_text(catalog_yaml(loki_url, **options), encoding="utf-8")
        runtime = build_runtime(path)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.close()


@pytest.fixture(name="runtime")
def _runtime(make_runtime: Callable[..., Runtime], loki: LokiSandbox) -> Runtime:
    return make_runtime(loki.url)


@pytest.fixture(name="run")
def _run(runtime: Runtime) -> Callable[[str], Any]:
    def run(text: str) -> Any:
        return runtime.dispatcher.execute(text, "U0ALICE", source="terminal", follow_runs=True)

    return run


@pytest.fixture(name="fixed")
def _fixed() -> Iterator[FixedAnswers]:
    server = FixedAnswers()
    yield server
    server.close()
