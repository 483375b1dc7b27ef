"""The chart's Prometheus credentials (issue 21): named Secret keys become SVCBOT_PROMETHEUS_* variables, each
optional; without a Secret there are none; the catalog may hold a `prometheus:` section, globally or per cluster."""

from __future__ import annotations

from pathlib import Path

from ship_chart import CI_VALUES, HelmEngine, default_values, load_yaml, values_with


def _env(renderer: HelmEngine, values: dict[str, object], tmp_path: Path) -> dict[str, dict[str, object]]:
    spec = renderer.render(values, tmp_path).one("Deployment")["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "svcbot")
    return {e["name"]: e for e in container["env"]}


def test_prometheus_credentials_from_a_secret(renderer: HelmEngine, tmp_path: Path) -> None:
    env = _env(renderer, values_with({"prometheus": {"existingSecret": "svcbot-prometheus",
                                                     "keys": {"token": "bearer"}}}), tmp_path)
    for name in ("SVCBOT_PROMETHEUS_USER", "SVCBOT_PROMETHEUS_PASSWORD", "SVCBOT_PROMETHEUS_TOKEN"):
        assert "value" not in env[name]
        assert env[name]["valueFrom"] == {"secretKeyRef": {
            "name": "svcbot-prometheus", "key": {"SVCBOT_PROMETHEUS_TOKEN": "bearer"}.get(name, name.rsplit("_", 1)[1]
                                                                                         .lower()),
            "optional": True}}


def test_no_prometheus_secret_no_variables(renderer: HelmEngine, tmp_path: Path) -> None:
    assert not [name for name in _env(renderer, default_values(), tmp_path) if name.startswith("SVCBOT_PROMETHEUS")]


def test_catalog_may_name_prometheus(helm: HelmEngine, tmp_path: Path) -> None:
    values = values_with(load_yaml(next(p for p in CI_VALUES if p.name == "socket-values.yaml")))
    catalog = dict(values["catalog"])
    catalog["prometheus"] = {"url": "http://prometheus.monitoring:9090", "labels": {"cluster": "cluster"}}
    clusters = {name: {**spec, "prometheus": {"url": "https://thanos.example.com"}}
                for name, spec in catalog["clusters"].items()}
    catalog["clusters"] = clusters
    messages = helm.lint({**values, "catalog": catalog}, tmp_path)
    assert messages, "no engine ran"
    assert not [m for found in messages.values() for m in found if m["severity"] >= 3]
