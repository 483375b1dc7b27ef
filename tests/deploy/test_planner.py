"""Planning: dependency order, variables, validation before substitution, the dry-run text, the stored plan."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.catalog import Catalog, Pipeline, Target, parse_catalog
from bot.core.errors import NotFound, UsageError
from bot.deploys.plan import (
    SAFE_VALUE,
    Plan,
    plan_deploy,
    plan_rollback,
    resolve_variables,
    target_order,
    validate_version,
)

TINY_CATALOG = """
settings: {{default_env: e}}
clusters: {{c: {{context: x}}}}
environments: {{e: {{cluster: c, namespace: e}}}}
services: {{s: {{image: reg/s, version_pattern: '{pattern}'}}}}
"""
HOSTILE = ["1.0;rm -rf /", "$(id)", "--help", "1.2.3 4", "1.2.3\n", "1.2.3\nrm", "`id`", "1.2.3|cat",
           "../../etc", "", "1.2.3&&true", "-1.2.3", "1.2.3 ", "1.2.3$HOME"]


class TestOrder:
    def test_prerequisites_first_each_once(self, catalog: Catalog) -> None:
        """deploy needs test and build, test needs build: build, test, deploy (build once)."""
        assert target_order(catalog.pipelines["local"], "deploy") == ["build", "test", "deploy"]

    def test_diamond_runs_shared_prerequisite_once(self) -> None:
        """A diamond (d needs b and c, both need a) orders a, b, c, d."""
        pipeline = Pipeline(goal="d", targets={"a": Target(), "b": Target(needs=("a",)),
                                               "c": Target(needs=("a",)), "d": Target(needs=("b", "c"))})
        assert target_order(pipeline, "d") == ["a", "b", "c", "d"]

    def test_cycle_is_reported(self) -> None:
        """A cycle (not caught because the catalog was built in code) is named, not looped on."""
        pipeline = Pipeline(goal="a", targets={"a": Target(needs=("b",)), "b": Target(needs=("a",))})
        with pytest.raises(UsageError, match="a -> b -> a"):
            target_order(pipeline, "a")


class TestVariables:
    def test_later_layers_override_and_values_expand(self) -> None:
        """Environment vars override pipeline defaults, target vars override both; values expand recursively."""
        values = resolve_variables(
            [{"IMAGE": "{image}:{version}", "X": "pipeline", "Y": "{X}!"}, {"X": "env"}, {"Z": "{IMAGE}"}],
            {"image": "reg/pay", "version": "1.2.3"})
        assert (values["X"], values["Y"], values["Z"]) == ("env", "env!", "reg/pay:1.2.3")

    def test_variable_loop_is_an_error(self) -> None:
        """A = {B}, B = {A} is refused with the loop named."""
        with pytest.raises(UsageError, match="loop"):
            resolve_variables([{"A": "{B}", "B": "{A}"}], {})

    def test_plan_substitutes_every_layer(self, catalog: Catalog) -> None:
        """The plan's steps carry substituted values: env var in build, target var in test, IMAGE in deploy."""
        plan = plan_deploy(catalog, "payment", "staging", "1.4.2")
        build, test, set_image, wait = plan.steps
        assert build.args["vars"] == {"VERSION": "1.4.2", "GREETING": "staging-hello"}
        assert test.args["argv"][-2:] == ["payment-staging", "1.4.2"]
        assert set_image.args["image"] == "registry.example.com/payment:1.4.2"
        assert wait.args["timeout"] == 120.0
        assert [step.rollback_on_failure for step in plan.steps] == [False, False, True, True]


class TestValidation:
    @pytest.mark.parametrize("version", HOSTILE)
    def test_hostile_versions_are_refused_with_the_pattern(self, catalog: Catalog, version: str) -> None:
        """Shell metacharacters, options, spaces and newlines never get past planning; the message shows the pattern."""
        with pytest.raises(UsageError) as refused:
            plan_deploy(catalog, "payment", "staging", version)
        assert catalog.services["payment"].version_pattern in refused.value.message
        assert "\n" not in refused.value.message

    def test_a_permissive_pattern_still_cannot_admit_shell_characters(self) -> None:
        """Even a service whose pattern is '^.*$' cannot deploy '$(id)': the hard guard applies."""
        catalog = parse_catalog(TINY_CATALOG.format(pattern="^[a-z0-9.]*$"))
        catalog = catalog.model_copy(update={"services": {"s": catalog.services["s"].model_copy(
            update={"version_pattern": "^.*$"})}})
        with pytest.raises(UsageError):
            validate_version(catalog, "s", "$(id)")
        assert validate_version(catalog, "s", "1.2.3") == "1.2.3"

    def test_unknown_service_and_environment(self, catalog: Catalog) -> None:
        """Names come from the catalog; unknown ones list the known ones."""
        with pytest.raises(NotFound, match="known: orders, payment"):
            plan_deploy(catalog, "nosuch", "staging", "1.0.0")
        with pytest.raises(NotFound, match="unknown environment 'qa'"):
            plan_deploy(catalog, "payment", "qa", "1.0.0")

    @given(st.text(max_size=40))
    def test_any_accepted_version_is_safe(self, version: str) -> None:
        """Whatever string is typed, an accepted version has only letters, digits, '.', '_', '+' and '-'."""
        catalog = parse_catalog(TINY_CATALOG.format(pattern="^[0-9A-Za-z._+-]+$"))
        try:
            validate_version(catalog, "s", version)
        except UsageError:
            return
        assert SAFE_VALUE.fullmatch(version)
        assert not version.startswith("-")
        assert re.search(r"[\s$`;|&()<>\\'\"]", version) is None


class TestPlanText:
    def test_dry_run_lines_read_like_make_n(self, catalog: Catalog) -> None:
        """Targets in order, each step with its arguments substituted."""
        lines = plan_deploy(catalog, "payment", "staging", "1.4.2").lines()
        assert lines[0] == "build:"
        assert "make --no-print-directory -C workspace build GREETING=staging-hello VERSION=1.4.2" in lines[1]
        assert lines[4] == "deploy:  (on failure: rollback)"
        assert ("kubectl set image deployment/payment-api app=registry.example.com/payment:1.4.2 -n staging"
                in lines[5])
        assert "--timeout=2m" in lines[6]

    def test_plan_survives_json_round_trip(self, catalog: Catalog) -> None:
        """The stored plan reads back identical (approval runs exactly what was shown)."""
        plan = plan_deploy(catalog, "payment", "staging", "1.4.2")
        assert Plan.from_json(plan.to_json()) == plan

    def test_service_without_pipeline_gets_the_built_in_one(self, catalog: Catalog) -> None:
        """set_image, wait_rollout and probe with rollback on failure."""
        plan = plan_deploy(catalog, "orders", "dev", "2.0.0")
        assert [step.kind for step in plan.steps] == ["set_image", "wait_rollout", "probe"]
        assert plan.image == "registry.example.com/orders:2.0.0"
        assert all(step.rollback_on_failure for step in plan.steps)

    def test_rollback_plan_is_undo_then_wait(self, catalog: Catalog) -> None:
        """/svc rollback plans kubectl rollout undo (to a revision when given) and a rollout wait."""
        plan = plan_rollback(catalog, "payment", "prod", 3)
        assert [step.kind for step in plan.steps] == ["undo", "wait_rollout"]
        assert "--to-revision=3" in plan.lines()[1]
