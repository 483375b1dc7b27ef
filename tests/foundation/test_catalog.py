"""The catalog: loaded into frozen models, every problem reported with its YAML path."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.catalog import load_catalog, parse_catalog, parse_duration
from bot.core.errors import CatalogError, NotFound


@pytest.fixture(name="raw")
def _raw(example_catalog_path: Path) -> dict[str, Any]:
    return yaml.safe_load(example_catalog_path.read_text())


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(yaml.safe_dump(raw))
    return caught.value.problems


class TestExample:
    def test_example_loads(self, example_catalog_path: Path) -> None:
        """The shipped example is complete and valid."""
        catalog = load_catalog(example_catalog_path)
        assert catalog.settings.command_deadline == 20.0
        assert catalog.deployment_name("payment") == "payment-api"
        assert catalog.deployment_name("orders") == "orders"
        assert catalog.environments["prod"].protected
        assert catalog.pipelines["standard"].targets["deploy"].steps[0].kind == "set_image"
        assert catalog.config_dir("payment") == example_catalog_path.parent / "configs" / "payment"

    def test_models_are_frozen(self, example_catalog_path: Path) -> None:
        """Nothing can change the catalog after start-up."""
        catalog = load_catalog(example_catalog_path)
        with pytest.raises(Exception, match="frozen"):
            catalog.settings.default_env = "dev"  # type: ignore[misc]

    def test_lookup_errors_list_known_names(self, example_catalog_path: Path) -> None:
        """An unknown service or environment names the known ones."""
        catalog = load_catalog(example_catalog_path)
        with pytest.raises(NotFound, match=r"unknown service 'pay' \(known: orders, payment\)"):
            catalog.service("pay")
        with pytest.raises(NotFound, match=r"unknown environment 'qa' \(known: dev, staging, prod\)"):
            catalog.environment("qa")

    def test_a_lookalike_character_is_named(self, example_catalog_path: Path) -> None:
        """`pаyment` with a Cyrillic а reads exactly like `payment`: the answer says which character it is."""
        catalog = load_catalog(example_catalog_path)
        with pytest.raises(NotFound) as raised:
            catalog.service("p\u0430yment")
        assert "not plain ASCII" in raised.value.message
        assert "U+0430 CYRILLIC SMALL LETTER A" in raised.value.message
        with pytest.raises(NotFound) as plain:
            catalog.service("pay")
        assert "ASCII" not in plain.value.message


class TestProblems:
    def test_unknown_pipeline(self, raw: dict[str, Any]) -> None:
        """A service naming an unknown pipeline is reported with its path and the known pipelines."""
        raw["services"]["payment"]["pipeline"] = "fast"
        assert "services.payment.pipeline: unknown pipeline 'fast' (known: standard)" in problems_of(raw)

    def test_unknown_key(self, raw: dict[str, Any]) -> None:
        """Unknown keys are rejected, at any depth."""
        raw["services"]["payment"]["health"]["livenes"] = "/x"
        raw["colour"] = "blue"
        problems = problems_of(raw)
        assert "services.payment.health.livenes: unknown key 'livenes'" in problems
        assert "colour: unknown key 'colour'" in problems

    def test_wrong_types(self, raw: dict[str, Any]) -> None:
        """Wrong types and bad durations are reported."""
        raw["settings"]["command_deadline"] = "soon"
        raw["services"]["payment"]["health"]["port"] = "eighty"
        problems = problems_of(raw)
        assert any(p.startswith("settings.command_deadline: 'soon' is not a duration") for p in problems)
        assert any(p.startswith("services.payment.health.port:") for p in problems)

    def test_unknown_cluster_and_group(self, raw: dict[str, Any]) -> None:
        """References across sections are checked: clusters, groups, environments in rules."""
        raw["environments"]["dev"]["cluster"] = "moon"
        raw["access"]["rules"][1]["who"] = ["ghosts"]
        raw["access"]["rules"][1]["envs"] = ["qa"]
        problems = problems_of(raw)
        assert "environments.dev.cluster: unknown cluster 'moon' (known: nonprod, prod)" in problems
        assert any(p.startswith("access.rules.1.who.0: unknown group 'ghosts'") for p in problems)
        assert any(p.startswith("access.rules.1.envs.0: unknown environment 'qa'") for p in problems)

    def test_bad_names(self, raw: dict[str, Any]) -> None:
        """Names must match a strict pattern."""
        raw["services"]["Pay_Ment"] = copy.deepcopy(raw["services"]["orders"])
        assert any(p.startswith("services.Pay_Ment: 'Pay_Ment' does not match") for p in problems_of(raw))

    def test_protected_env_needs_approval(self, raw: dict[str, Any]) -> None:
        """A protected environment's deploy rules must all require approval."""
        del raw["access"]["rules"][2]["approval"]
        assert ("environments.prod.protected: every deploy/rollback rule that names 'prod' needs an approval block"
                in problems_of(raw))

    def test_pipeline_cycle_and_unknown_target(self, raw: dict[str, Any]) -> None:
        """Cycles, unknown prerequisites, unknown goals and unknown variables are rejected."""
        targets = raw["pipelines"]["standard"]["targets"]
        targets["test"]["needs"] = ["deploy"]
        targets["migrate"]["needs"] = ["test", "lint"]
        targets["deploy"]["steps"][0]["set_image"]["image"] = "{IMAGE}:{FLAVOUR}"
        raw["pipelines"]["standard"]["goal"] = "ship"
        problems = problems_of(raw)
        assert any("dependency cycle" in p for p in problems)
        assert any(p.startswith("pipelines.standard.targets.migrate.needs.1: unknown target 'lint'") for p in problems)
        assert any(p.startswith("pipelines.standard.goal: unknown target 'ship'") for p in problems)
        assert any(p.startswith("pipelines.standard.targets.deploy.steps.0.set_image.image: unknown variable "
                                "'{FLAVOUR}'") for p in problems)

    def test_step_has_one_kind(self, raw: dict[str, Any]) -> None:
        """A step names exactly one kind."""
        raw["pipelines"]["standard"]["targets"]["deploy"]["steps"].append({"probe": {}, "wait_rollout": {}})
        assert any("a step has exactly one of" in p for p in problems_of(raw))

    def test_permissive_version_pattern(self, raw: dict[str, Any]) -> None:
        """A version pattern that admits shell metacharacters is refused."""
        raw["services"]["payment"]["version_pattern"] = "^.+$"
        assert any(p.startswith("services.payment.version_pattern: admits shell") for p in problems_of(raw))

    def test_every_problem_at_once(self, raw: dict[str, Any]) -> None:
        """Structural and reference problems are reported together."""
        raw["services"]["payment"]["bogus"] = 1
        raw["services"]["payment"]["pipeline"] = "fast"
        assert len(problems_of(raw)) >= 2

    def test_yaml_syntax_error(self) -> None:
        """A YAML syntax error names the line and column."""
        with pytest.raises(CatalogError, match=r"YAML syntax error at line 3, column 9: expected .,. or .]."):
            parse_catalog("clusters:\n  a: [b\nservices: {}\n")


def test_durations() -> None:
    """Durations accept s/m/h/d/ms and plain seconds; nonsense is refused."""
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1.5h") == 5400
    assert parse_duration(5) == 5
    for bad in ("", "10", "-5s", "0s", True, "5 minutes"):
        with pytest.raises(ValueError):
            parse_duration(bad)


class TestCheckCommand:
    def test_check_ok(self, example_catalog_path: Path) -> None:
        """`svcbot check` prints a summary and exits 0 on a valid catalog."""
        result = subprocess.run([sys.executable, "-m", "bot.cli", "check", "--catalog", str(example_catalog_path)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        assert "OK (2 clusters, 3 environments, 2 services, 3 access rules, 1 pipeline)" in result.stdout

    def test_check_reports_problems(self, raw: dict[str, Any], tmp_path: Path) -> None:
        """`svcbot check` prints each problem with its path and exits 1."""
        raw["services"]["payment"]["pipeline"] = "fast"
        path = tmp_path / "catalog.yaml"
        path.write_text(yaml.safe_dump(raw))
        result = subprocess.run([sys.executable, "-m", "bot.cli", "check", "--catalog", str(path)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 1
        assert "services.payment.pipeline: unknown pipeline 'fast' (known: standard)" in result.stderr
