"""values.schema.json: accepts the chart's values and the CI examples, rejects broken values with readable
messages; the catalogs in the examples are catalogs svcbot accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ship_chart import CHART, CI_VALUES, ROOT, default_values, load_yaml, merge_values, schema, values_with

from bot.core.catalog import parse_catalog


def problems(jsonschema_module: Any, values: dict[str, Any]) -> list[str]:
    validator = jsonschema_module.Draft7Validator(schema())
    return sorted(f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
                  for error in validator.iter_errors(values))


def test_schema_is_a_valid_draft7_schema(jsonschema_module: Any) -> None:
    """The schema itself is well-formed draft-07, the dialect Helm and jsonschema both read."""
    jsonschema_module.Draft7Validator.check_schema(schema())


def test_default_values_pass(jsonschema_module: Any) -> None:
    """helm/svcbot/values.yaml as shipped validates."""
    assert problems(jsonschema_module, default_values()) == []


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_ci_values_pass(jsonschema_module: Any, path: Path) -> None:
    """Every example values file (merged over the defaults, as Helm does) validates."""
    assert problems(jsonschema_module, values_with(load_yaml(path))) == []


def test_example_catalog_fits_in_values(jsonschema_module: Any) -> None:
    """examples/catalog.yaml pasted under `catalog:` validates, so the documented path works."""
    catalog = load_yaml(ROOT / "examples" / "catalog.yaml")
    assert problems(jsonschema_module, values_with({"catalog": catalog})) == []


BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    "unknown mode": ({"mode": "webhook"}, "mode: 'webhook' is not one of"),
    "two replicas on SQLite": ({"replicaCount": 2}, "replicaCount: 2 is greater than the maximum of 1"),
    "token in values": ({"slack": {"botToken": "xoxb-1"}}, "slack: Additional properties are not allowed"),
    "no Slack secret": ({"slack": {"existingSecret": ""}}, "slack/existingSecret"),
    "ingress in socket mode": ({"ingress": {"enabled": True}}, "mode: 'http' was expected"),
    "rolling update on SQLite": ({"strategy": {"type": "RollingUpdate"}}, "'Recreate' was expected"),
    "git-sync without a repo": ({"profiles": {"source": "gitSync"}}, "profiles/gitSync/repo"),
    "both git credentials": ({"profiles": {"gitSync": {"httpsSecret": "a", "sshSecret": "b"}}},
                             "profiles/gitSync/sshSecret: '' was expected"),
    "profile path escaping": ({"profiles": {"files": {"../etc/passwd": "x"}}}, "profiles/files"),
    "namespace not a DNS label": ({"rbac": {"namespaces": ["Prod_EU"]}}, "rbac/namespaces/0"),
    "catalog without environments": ({"catalog": {"clusters": {"a": {"in_cluster": True}}, "services": {}}},
                                     "'environments' is a required property"),
    "environment without namespace": ({"catalog": {"clusters": {"a": {"in_cluster": True}}, "services": {},
                                                   "environments": {"dev": {"cluster": "a"}}}},
                                      "catalog/environments/dev: 'namespace' is a required property"),
    "typo at the top": ({"replicas": 1}, "Additional properties are not allowed ('replicas' was unexpected)"),
    "image digest malformed": ({"image": {"digest": "latest"}}, "image/digest"),
    "database URL in values": ({"database": {"url": "postgresql://svcbot:pw@db/svcbot"}},
                               "database: Additional properties are not allowed ('url' was unexpected)"),
    "two replicas, database secret empty": ({"replicaCount": 2, "database": {"existingSecret": ""}},
                                            "replicaCount: 2 is greater than the maximum of 1"),
    "unknown anti-affinity": ({"podAntiAffinity": "strict"}, "podAntiAffinity: 'strict' is not one of"),
}


def test_several_replicas_on_postgres_pass(jsonschema_module: Any) -> None:
    """Three replicas with a rolling update are fine once the store is PostgreSQL (a URL from a Secret)."""
    values = values_with({"replicaCount": 3, "strategy": {"type": "RollingUpdate"},
                          "database": {"existingSecret": "svcbot-db"}})
    assert problems(jsonschema_module, values) == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_values_rejected_with_a_readable_message(jsonschema_module: Any, case: str) -> None:
    """Each kind of broken values fails validation, and the message points at the key."""
    override, expected = BROKEN[case]
    found = problems(jsonschema_module, values_with(override))
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize("path", [p for p in CI_VALUES if "catalog" in (load_yaml(p) or {})], ids=lambda p: p.name)
def test_ci_catalogs_are_valid_svcbot_catalogs(path: Path) -> None:
    """The catalogs in the example values load in svcbot itself (what the pod does at start-up)."""
    catalog = parse_catalog(yaml.safe_dump(load_yaml(path)["catalog"]))
    assert catalog.environments


def test_merge_follows_helm() -> None:
    """Maps merge key by key, lists and scalars replace, null deletes: Helm's coalescing rules."""
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": 2}
    assert merge_values(base, {"a": {"c": [3]}, "d": None}) == {"a": {"b": 1, "c": [3]}, "e": 2}


def test_values_keep_no_secret_material() -> None:
    """values.yaml names Secrets and keys only: no token-shaped value anywhere in the chart's defaults."""
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    for prefix in ("xoxb-", "xapp-", "xoxp-"):
        assert f"{prefix}1" not in text
        assert f": {prefix}" not in text
