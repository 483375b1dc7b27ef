"""/svc diff --live: the real kubernetes client reads deployments and ConfigMaps over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from diff_world import World
from live_api import LiveApi, serve_live_api, write_kubeconfig

from bot.replies.base import Outcome
from bot.replies.diff import DiffReply

STAGING_PROFILE = """\
payment:
  provider:
    endpoint: https://sandbox.psp.example.com/v2
    timeout: 30s
  db:
    host: ${DB_HOST}
    password: ${DB_PASSWORD}
"""
PROD_PROFILE = """\
payment:
  provider:
    endpoint: https://psp.example.com/v2
    timeout: 3s
  db:
    host: ${DB_HOST}
    password: ${DB_PASSWORD}
"""


def add_payment(api: LiveApi, namespace: str, profile: str, env: dict[str, str], token: str) -> None:
    """payment-api with its profile mounted from a ConfigMap, env from another, and secret refs."""
    api.add_config_map(namespace, "payment-profile", {f"application-{namespace}.yaml": profile})
    api.add_config_map(namespace, "payment-env", env)
    api.add_deployment(namespace, "payment-api", {
        "envFrom": [{"configMapRef": {"name": "payment-env"}}],
        "env": [
            {"name": "DB_HOST", "value": f"db.{namespace}.svc"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "payment-db", "key": "password"}}},
            {"name": "PAYMENT_API_TOKEN", "value": token},
        ],
        "volumeMounts": [{"name": "profile", "mountPath": "/etc/payment"}],
    }, [{"name": "profile", "configMap": {"name": "payment-profile"}}])


@pytest.fixture(name="live_api")
def _live_api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveApi]:
    with serve_live_api() as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url, ("nonprod-eu", "prod-eu"))
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        world.write("staging", STAGING_PROFILE)
        world.write("prod", PROD_PROFILE)
        yield api
        world.runtime.close()


def test_live_compares_what_the_clusters_run(world: World, live_api: LiveApi) -> None:
    """Live staging and prod differ in mounted profiles and env; the equal token is same (secret)."""
    add_payment(live_api, "staging", STAGING_PROFILE, {"LOG_LEVEL": "debug"}, "tok-9f8e7d6c5b4a")
    add_payment(live_api, "prod", PROD_PROFILE, {"LOG_LEVEL": "info", "PAYMENT_PROVIDER_TIMEOUT": "4s"},
                "tok-9f8e7d6c5b4a")
    answer = world.run("diff payment staging prod --live")
    assert isinstance(answer.reply, DiffReply), answer.text
    changed = {change.key: (change.a.text, change.b.text) for change in answer.reply.diff.changed}
    # PAYMENT_PROVIDER_TIMEOUT overrides the mounted profile's payment.provider.timeout (relaxed binding).
    assert changed["payment.provider.timeout"] == ("30s", "4s")
    assert changed["payment.provider.endpoint"] == ("https://sandbox.psp.example.com/v2", "https://psp.example.com/v2")
    assert changed["LOG_LEVEL"] == ("debug", "info")
    assert changed["DB_HOST"] == ("db.staging.svc", "db.prod.svc")
    assert "PAYMENT_API_TOKEN" in answer.reply.diff.same_secrets
    assert "tok-9f8e" not in answer.text + answer.slack


def test_live_reports_drift_from_the_declared_profile(world: World, live_api: LiveApi) -> None:
    """prod runs timeout 4s while its profile declares 3s: drift in prod, none in staging."""
    add_payment(live_api, "staging", STAGING_PROFILE, {}, "t")
    add_payment(live_api, "prod", PROD_PROFILE.replace("3s", "4s"), {}, "t")
    answer = world.run("diff payment staging prod --live")
    assert isinstance(answer.reply, DiffReply), answer.text
    drift = {item.env: item.diff for item in answer.reply.drift}
    assert [(c.key, c.a.text, c.b.text) for c in drift["prod"].changed] == [("payment.provider.timeout", "3s", "4s")]
    assert drift["staging"].changed == ()
    assert "Drift in prod (profile → live): 1 differ" in answer.text


def test_secret_refs_are_shown_as_references_and_never_read(world: World, live_api: LiveApi) -> None:
    """DB_PASSWORD from a secretKeyRef shows as the secret's name and key; no Secret is ever requested."""
    add_payment(live_api, "staging", STAGING_PROFILE, {}, "t")
    add_payment(live_api, "prod", PROD_PROFILE, {}, "t")
    live_api.objects["deployments", "prod", "payment-api"]["spec"]["template"]["spec"]["containers"][0]["env"][1] = {
        "name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "payment-db-prod", "key": "password"}}}
    answer = world.run("diff payment staging prod --live")
    assert isinstance(answer.reply, DiffReply), answer.text
    change = next(c for c in answer.reply.diff.changed if c.key == "DB_PASSWORD")
    assert (change.a.text, change.b.text) == ("secret payment-db, key password", "secret payment-db-prod, key password")
    assert not [path for path in live_api.requests if "/secrets/" in path]


def test_missing_deployment_is_a_user_error_naming_it(world: World, live_api: LiveApi) -> None:
    """A deployment that is not on the cluster is a user error naming it and the environment."""
    add_payment(live_api, "staging", STAGING_PROFILE, {}, "t")
    answer = world.run("diff payment staging prod --live")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert "no deployment payment-api in prod (namespace prod)" in answer.text


def test_one_environment_against_its_cluster(world: World, live_api: LiveApi) -> None:
    """`diff payment prod prod --live` checks prod's profile against prod's cluster only."""
    add_payment(live_api, "prod", PROD_PROFILE.replace("3s", "4s"), {}, "t")
    answer = world.run("diff payment prod prod --live")
    assert isinstance(answer.reply, DiffReply), answer.text
    assert [item.env for item in answer.reply.drift] == ["prod"]
    assert not [path for path in live_api.requests if "/namespaces/staging/" in path]


def test_variables_the_profile_needs_are_checked_against_the_live_env(world: World, live_api: LiveApi) -> None:
    """Env vars supplying the profile's ${VAR}s are not drift; a ${VAR} nothing live sets is called out."""
    add_payment(live_api, "staging", STAGING_PROFILE, {}, "t")
    add_payment(live_api, "prod", PROD_PROFILE, {}, "t")
    container = live_api.objects["deployments", "prod", "payment-api"]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [item for item in container["env"] if item["name"] != "DB_PASSWORD"]
    answer = world.run("diff payment staging prod --live")
    assert isinstance(answer.reply, DiffReply), answer.text
    drift = {item.env: item for item in answer.reply.drift}
    assert [item.key for item in drift["prod"].supplied_variables] == ["DB_HOST"]
    assert drift["prod"].missing_variables == ("DB_PASSWORD",)
    assert drift["staging"].missing_variables == ()
    assert "DB_HOST" not in [item.key for item in drift["staging"].diff.only_b]
    assert "the profile needs ${DB_PASSWORD}, which nothing live sets" in answer.text
