"""/svc diff --live against the sandbox Kubernetes API (two clusters over HTTP, the real client).

The sandbox seeds each service's ConfigMap `<service>-config` from a configs directory and mounts it at
/etc/<service>; here that directory holds what was *deployed*, while the catalog's config dir holds what
is *declared* now (prod's timeout was edited after the deploy), so prod drifts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from diff_world import Answer, answer_for

from bot.replies.base import Outcome
from bot.replies.diff import DiffReply
from bot.runtime import Runtime, build_runtime
from sandbox.kube import KubeSandbox

STAGING = """\
payment:
  provider: {endpoint: "https://sandbox.psp.example.com/v2", timeout: 30s}
  db: {password: "${DB_PASSWORD}"}
  webhook-secret: Wh00k-st4ging-8d7c6b5a
"""
PROD_DEPLOYED = """\
payment:
  provider: {endpoint: "https://psp.example.com/v2", timeout: 3s}
  db: {password: "${DB_PASSWORD}"}
  webhook-secret: Wh00k-pr0d-1a2b3c4d
"""
PROD_DECLARED = PROD_DEPLOYED.replace("timeout: 3s", "timeout: 5s")

CATALOG = """\
settings: {default_env: prod}
clusters:
  nonprod: {context: sandbox-nonprod}
  prod: {context: sandbox-prod}
environments:
  dev: {cluster: nonprod, namespace: dev}
  staging: {cluster: nonprod, namespace: staging}
  prod: {cluster: prod, namespace: prod}
services:
  payment:
    deployment: payment-api
    config: {dir: declared/payment}
access:
  rules:
    - {verbs: [diff], envs: ["*"], who: ["*"]}
"""


def write_profiles(directory: Path, profiles: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for env, text in profiles.items():
        (directory / f"application-{env}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture(name="sandbox", scope="module")
def _sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeSandbox, Path]]:
    root = tmp_path_factory.mktemp("diff-sandbox")
    write_profiles(root / "deployed" / "payment", {"staging": STAGING, "prod": PROD_DEPLOYED})
    write_profiles(root / "declared" / "payment", {"staging": STAGING, "prod": PROD_DECLARED})
    (root / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    kube = KubeSandbox(time_scale=0.02, configs_dir=root / "deployed")
    kube.start()
    kube.write_kubeconfig(root / "kubeconfig")
    try:
        yield kube, root
    finally:
        kube.stop()


@pytest.fixture(name="runtime")
def _runtime(sandbox: tuple[KubeSandbox, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    _kube, root = sandbox
    monkeypatch.setenv("KUBECONFIG", str(root / "kubeconfig"))
    runtime = build_runtime(root / "catalog.yaml")
    yield runtime
    runtime.close()


def live_diff(runtime: Runtime, text: str) -> tuple[DiffReply, Answer]:
    answer = answer_for(runtime, text)
    assert isinstance(answer.reply, DiffReply), answer.text
    return answer.reply, answer


def test_live_staging_against_prod(runtime: Runtime) -> None:
    """The mounted profiles and the env of both clusters compare key by key; secrets stay hidden."""
    reply, answer = live_diff(runtime, "diff payment staging prod --live")
    changed = {change.key: change for change in reply.diff.changed}
    assert (changed["payment.provider.timeout"].a.text, changed["payment.provider.timeout"].b.text) == ("30s", "3s")
    assert (changed["APP_ENV"].a.text, changed["APP_ENV"].b.text) == ("staging", "prod")
    assert changed["payment.webhook-secret"].secret
    assert "Wh00k" not in answer.text + answer.slack
    assert "payment.db.password" not in changed  # the same ${DB_PASSWORD} on both sides


def test_live_reports_prod_drift(runtime: Runtime) -> None:
    """prod runs timeout 3s while its profile now declares 5s; staging runs what it declares."""
    reply, answer = live_diff(runtime, "diff payment staging prod --live")
    drift = {item.env: item for item in reply.drift}
    changed = [(c.key, c.a.text, c.b.text) for c in drift["prod"].diff.changed]
    assert changed == [("payment.provider.timeout", "5s", "3s")]
    assert drift["staging"].diff.changed == ()
    assert [item.key for item in drift["prod"].supplied_variables] == ["DB_PASSWORD"]
    assert "Drift in prod (profile → live): 1 differ" in answer.text


def test_secret_refs_are_never_resolved(runtime: Runtime, sandbox: tuple[KubeSandbox, Path]) -> None:
    """DB_PASSWORD's secretKeyRef is shown by name; the sandbox never served a Secret."""
    kube, _root = sandbox
    kube.reset_served()
    reply, answer = live_diff(runtime, "diff payment prod prod --live")
    assert "secret payment-db, key password" in answer.text
    assert {resource for _group, resource, _sub, _verb in kube.served} == {"deployments", "configmaps"}
    assert [item.env for item in reply.drift] == ["prod"]


def test_a_cluster_refusing_answers_at_once_while_the_other_stalls(runtime: Runtime,
                                                                    sandbox: tuple[KubeSandbox, Path]) -> None:
    """prod's RBAC refusal is the answer as soon as it comes, not after the stalled staging cluster."""
    kube, _root = sandbox
    nonprod = kube.cluster("nonprod")
    nonprod.faults.set(mode="stall", seconds=30)  # until cleared below: longer than the command's deadline
    held = nonprod.faults.hits
    kube.cluster("prod").faults.set(mode="403", resource="deployments")
    try:
        started = time.monotonic()
        answer = answer_for(runtime, "diff payment staging prod --live")
        elapsed = time.monotonic() - started
        staging_asked = nonprod.faults.hits > held
    finally:
        kube.clear_faults()
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert "missing RBAC permission verb=get resource=deployments" in answer.text
    assert staging_asked  # staging was asked, and held: the answer did not wait for it
    # Waiting for staging would have taken the command's whole deadline (20 s); the refusal came well before.
    assert elapsed < 10.0
