"""bot.insight.liveconfig: a deployment's JSON and its ConfigMaps -> the container's configuration, Secrets unread.

These tests use an in-memory reader at the project's own seam (the `ConfigReader` protocol that
bot.clients.kube.KubeClient satisfies); the sandbox test in test_diff_live.py goes over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.errors import NotFound
from bot.insight.configdiff import Reference
from bot.insight.liveconfig import EnvValue, LiveConfig, MountedFile, live_settings, read_live_config


class MemoryReader:
    """ConfigMaps by name; records every read so tests can check nothing else (no Secret) is asked for."""

    def __init__(self, config_maps: dict[str, dict[str, str]]) -> None:
        self.config_maps = config_maps
        self.reads: list[str] = []

    def read_deployment(self, namespace: str, name: str, *, deadline: float | None = None) -> dict[str, Any]:
        raise AssertionError("not used: the tests pass the deployment")

    def read_config_map(self, namespace: str, name: str, *, deadline: float | None = None) -> dict[str, Any]:
        self.reads.append(name)
        if name not in self.config_maps:
            raise NotFound(f"no config map {name} in namespace {namespace}")
        return {"metadata": {"name": name}, "data": self.config_maps[name]}


def deployment(container: dict[str, Any], volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "payment-api"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", **container}], "volumes": volumes or []}}}}


PROFILE = "payment:\n  provider:\n    timeout: 3s\n  db:\n    password: ${DB_PASSWORD}\n"


def test_env_literals_config_map_refs_and_secret_refs() -> None:
    """Literal env values and configMapKeyRef values are read; secretKeyRef stays a reference, unread."""
    reader = MemoryReader({"payment-env": {"LOG_LEVEL": "info"}})
    live = read_live_config(reader, deployment({"env": [
        {"name": "REGION", "value": "eu-west-1"},
        {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "payment-env", "key": "LOG_LEVEL"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "payment-db", "key": "password"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]}), "prod", "app")
    assert live.env["REGION"].value == "eu-west-1"
    assert live.env["LOG_LEVEL"].value == "info"
    assert live.env["DB_PASSWORD"] == EnvValue(reference="secret payment-db, key password", source="env")
    assert live.env["POD"].reference == "field metadata.name"
    assert reader.reads == ["payment-env"]


def test_env_from_config_map_with_prefix_then_env_overrides() -> None:
    """envFrom keys become env vars with the prefix; an explicit env entry of the same name wins."""
    reader = MemoryReader({"shared": {"TIMEOUT": "30s", "MODE": "a"}})
    live = read_live_config(reader, deployment({
        "envFrom": [{"configMapRef": {"name": "shared"}, "prefix": "PAY_"}, {"secretRef": {"name": "creds"}}],
        "env": [{"name": "PAY_MODE", "value": "b"}],
    }), "prod", "app")
    assert {name: value.value for name, value in live.env.items()} == {"PAY_TIMEOUT": "30s", "PAY_MODE": "b"}
    assert any("secret creds" in note and "not read" in note for note in live.notes)


def test_mounted_config_maps_with_items_and_projected_volumes() -> None:
    """Mounted ConfigMap keys become files at their paths, `items` selecting and renaming keys."""
    reader = MemoryReader({"profiles": {"application-prod.yaml": PROFILE, "unused": "x"},
                           "extra": {"logback.xml": "<configuration/>"}})
    live = read_live_config(reader, deployment(
        {"volumeMounts": [{"name": "config", "mountPath": "/etc/payment"},
                          {"name": "more", "mountPath": "/etc/more"},
                          {"name": "tls", "mountPath": "/etc/tls"}]},
        [{"name": "config", "configMap": {"name": "profiles", "items": [
            {"key": "application-prod.yaml", "path": "application-prod.yaml"}]}},
         {"name": "more", "projected": {"sources": [{"configMap": {"name": "extra"}}]}},
         {"name": "tls", "secret": {"secretName": "payment-tls"}}]), "prod", "app")
    assert [(item.path, item.key) for item in live.files] == [
        ("/etc/payment/application-prod.yaml", "application-prod.yaml"), ("/etc/more/logback.xml", "logback.xml")]
    assert any("/etc/tls" in note and "not read" in note for note in live.notes)


def test_missing_config_map_is_a_note_unless_optional() -> None:
    """A required ConfigMap that does not exist is noted (pods cannot start); an optional one is not."""
    reader = MemoryReader({})
    live = read_live_config(reader, deployment({"envFrom": [
        {"configMapRef": {"name": "gone"}}, {"configMapRef": {"name": "maybe", "optional": True}}]}), "prod", "app")
    assert live.notes == ("config map gone (envFrom) does not exist: pods cannot start with it",)


def test_unknown_container_lists_the_containers() -> None:
    """When the catalog's container is absent and there are several, the error lists them."""
    body = {"metadata": {"name": "payment-api"}, "spec": {"template": {"spec": {"containers": [
        {"name": "web"}, {"name": "sidecar"}]}}}}
    with pytest.raises(NotFound, match=r"no container 'app' \(containers: web, sidecar"):
        read_live_config(MemoryReader({}), body, "prod", "app")


def test_live_settings_parse_profiles_and_bind_env() -> None:
    """A mounted profile is parsed to keys; env vars bind to those keys and override them."""
    live = LiveConfig(deployment="payment-api", namespace="prod", container="app",
                      files=(_file("/etc/payment/application-prod.yaml", PROFILE),
                             _file("/etc/payment/application-dev.yaml", "payment: {provider: {timeout: 9s}}"),
                             _file("/etc/payment/logback.xml", "<configuration/>")),
                      env={"PAYMENT_PROVIDER_TIMEOUT": EnvValue(value="5s"),
                           "DB_PASSWORD": EnvValue(reference="secret payment-db, key password"),
                           "JAVA_OPTS": EnvValue(value="-Xmx1g")})
    settings = live_settings(live, "application-{profile}.yaml", "prod", ["payment.db.password"])
    assert settings == {
        "payment.provider.timeout": "5s",
        "payment.db.password": "${DB_PASSWORD}",
        "/etc/payment/logback.xml": "<configuration/>",
        "DB_PASSWORD": Reference("secret payment-db, key password"),
        "JAVA_OPTS": "-Xmx1g",
    }


def _file(path: str, content: str) -> MountedFile:
    return MountedFile(config_map="profiles", key=path.rsplit("/", 1)[-1], path=path, content=content)
