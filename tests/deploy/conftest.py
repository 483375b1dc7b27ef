"""Fixtures for the deploy tests: a store in a temporary directory, a catalog whose pipelines run
locally (make, run, http), fake step kinds and an in-memory lock for engine tests (our own seams)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deploy_fakes import EXECUTED, FAKE_KINDS, FAST, GATES, MemoryLocker
from deploy_world import SANDBOX_SETTINGS, DeployWorld, sandbox_catalog

from bot.core.catalog import Catalog, load_catalog
from bot.deploys.engine import RunEngine
from bot.deploys.store import Store
from bot.runtime import build_runtime
from sandbox.stack import SandboxStack

LOCAL_CATALOG = """
settings: {default_env: staging}
clusters:
  local: {context: nowhere}
environments:
  dev: {cluster: local, namespace: dev}
  staging: {cluster: local, namespace: staging, vars: {GREETING: staging-hello}}
  prod: {cluster: local, namespace: prod, protected: true}
terminal: {allow_as: true, users: {alice: U0ALICE}}
services:
  payment:
    deployment: payment-api
    image: registry.example.com/payment
    pipeline: local
  orders:
    image: registry.example.com/orders
access:
  groups: {oncall: [U0ALICE, U0BOB], release-managers: [U0CAROL]}
  rules:
    - {verbs: [status, probe, logs, trace, diff, history], envs: ["*"], who: ["*"]}
    - {verbs: [deploy, rollback], envs: [dev, staging], who: [oncall]}
    - {verbs: [deploy, rollback], envs: [prod], who: [oncall],
       approval: {approvers: [release-managers], quorum: 1, expires: 30m}}
pipelines:
  local:
    vars: {IMAGE: "{image}:{version}", GREETING: hello, WHO: "{service}-{env}"}
    targets:
      build:
        steps:
          - {make: {target: build, dir: workspace, vars: {VERSION: "{version}", GREETING: "{GREETING}"}}}
      test:
        needs: [build]
        vars: {GREETING: target-hello}
        steps:
          - {run: {argv: [sh, -c, 'echo "testing $0 for $1"', "{WHO}", "{version}"], cwd: workspace}}
      deploy:
        needs: [test, build]
        on_failure: rollback
        steps:
          - {set_image: {image: "{IMAGE}"}}
          - {wait_rollout: {timeout: 2m}}
    goal: deploy
"""

MAKEFILE = """\
VERSION ?= unset
GREETING ?= unset

build:
\t@echo "building $(VERSION) with $(GREETING)"
\t@printf '%s %s\\n' "$(VERSION)" "$(GREETING)" > built.txt

broken:
\t@echo "compiling $(VERSION)"
\t@echo "error: undefined reference to main" >&2
\t@exit 2
"""


@pytest.fixture(name="workspace")
def _workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "workspace"
    directory.mkdir()
    (directory / "Makefile").write_text(MAKEFILE)
    return directory


@pytest.fixture(name="catalog_path")
def _catalog_path(tmp_path: Path, workspace: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(LOCAL_CATALOG)
    return path


@pytest.fixture(name="catalog")
def _catalog(catalog_path: Path) -> Catalog:
    return load_catalog(catalog_path)


@pytest.fixture(name="db_path")
def _db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store" / "svcbot.db"
    monkeypatch.setenv("SVCBOT_DB", str(path))
    return path


@pytest.fixture(name="store")
def _store(db_path: Path) -> Iterator[Store]:
    store = Store.open(str(db_path), stale_after=FAST.stale_after)
    yield store
    store.close()


@pytest.fixture(name="engine")
def _engine(store: Store) -> Iterator[tuple[RunEngine, MemoryLocker]]:
    EXECUTED.clear()
    GATES.clear()
    locker = MemoryLocker()
    engine = RunEngine(store, locker=locker, settings=FAST, kinds=FAKE_KINDS)
    yield engine, locker
    for gate in GATES.values():
        gate.set()
    engine.shutdown(5.0)


@pytest.fixture(name="world")
def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployWorld]:
    stack = SandboxStack()
    stack.start(tmp_path / "sandbox", time_scale=0.02)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "sandbox" / "kubeconfig"))
    db_path = tmp_path / "svcbot.db"
    monkeypatch.setenv("SVCBOT_DB", str(db_path))
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(sandbox_catalog(stack)))
    runtime = build_runtime(catalog_path)
    runtime.deploys.run_settings = SANDBOX_SETTINGS
    try:
        yield DeployWorld(stack=stack, runtime=runtime, catalog_path=catalog_path, db_path=db_path)
    finally:
        runtime.deploys.close_store(10.0)
        runtime.close()
        stack.stop()
