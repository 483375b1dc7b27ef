"""The catalog: loaded into frozen models, every problem reported with its YAML path."""

from __future__ import annotations

import copy
import os
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


# --- issue 17: what `svcbot check` (and `serve` at start) refuse ------------------------------------------

def write_catalog(tmp_path: Path, text: str) -> Path:
    """The example catalog's text after an edit, with its profile directory found where it is."""
    path = tmp_path / "catalog.yaml"
    path.write_text(text.replace("dir: configs/payment", f"dir: {EXAMPLE_PROFILES}"))
    return path


def svcbot_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", "check", "--catalog", str(path)],
                          capture_output=True, text=True, check=False, timeout=120)


EXAMPLE_PROFILES = Path(__file__).resolve().parents[2] / "examples" / "configs" / "payment"
RULE_2_APPROVAL = "approval: {approvers: [release-managers, sre-leads], quorum: 1, self_approval: false, expires: 30m}"
WAIT_ROLLOUT = "{wait_rollout: {timeout: 10m}}"


def edited(text: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


class TestCheckRefuses:
    """Each refusal runs `svcbot check` as a process on a bad catalog file: exit 1, the problem with its path."""

    def refused(self, example_catalog_path: Path, tmp_path: Path, *replacements: tuple[str, str]) -> str:
        path = write_catalog(tmp_path, edited(example_catalog_path.read_text(), *replacements))
        result = svcbot_check(path)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        return result.stderr

    def test_durations_that_overflow(self, example_catalog_path: Path, tmp_path: Path) -> None:
        """`99999999999d` loaded, then every command failed with OverflowError; an integer too large for a
        float and `.inf` are refused the same way."""
        stderr = self.refused(
            example_catalog_path, tmp_path,
            ("command_deadline: 20s", "command_deadline: 99999999999d"),
            ("expires: 30m", "expires: 99999999999d"),
            (WAIT_ROLLOUT, "{wait_rollout: {timeout: 1" + "0" * 400 + "}}"),
            ("datasource_uid: loki", "datasource_uid: loki\n  timeout: .inf"),
        )
        assert "settings.command_deadline: 99999999999d is longer than this key allows (at most 10m)" in stderr
        assert "access.rules.2.approval.expires: 99999999999d is longer than this key allows (at most 7d)" in stderr
        assert ("pipelines.standard.targets.deploy.steps.1.wait_rollout.timeout: that many seconds is longer than "
                "this key allows (at most 1d)") in stderr
        assert "loki.timeout: that many seconds is longer than this key allows (at most 10m)" in stderr

    def test_durations_beyond_their_key_maximum(self, example_catalog_path: Path, tmp_path: Path) -> None:
        """Each duration key has a maximum: command_deadline 10m, loki.timeout 10m, approval expires 7d, step
        timeouts and unready_for 1d."""
        stderr = self.refused(
            example_catalog_path, tmp_path,
            ("command_deadline: 20s", "command_deadline: 11m"),
            ("expires: 30m", "expires: 8d"),
            (WAIT_ROLLOUT, "{wait_rollout: {timeout: 25h, unready_for: 2d}}"),
            ("{probe: {}}", "{probe: {timeout: 86401}}"),
        )
        assert "settings.command_deadline: 11m is longer than this key allows (at most 10m)" in stderr
        assert "access.rules.2.approval.expires: 8d is longer than this key allows (at most 7d)" in stderr
        assert "steps.1.wait_rollout.timeout: 25h is longer than this key allows (at most 1d)" in stderr
        assert "steps.1.wait_rollout.unready_for: 2d is longer than this key allows (at most 1d)" in stderr
        assert "steps.2.probe.timeout: 86401 seconds is longer than this key allows (at most 1d)" in stderr

    def test_deeply_nested_yaml(self, example_catalog_path: Path, tmp_path: Path) -> None:
        """5,000 nested lists were a RecursionError traceback; now one line with the path where it gets too deep."""
        stderr = self.refused(example_catalog_path, tmp_path,
                              ("datasource_uid: loki", "datasource_uid: " + "[" * 5000 + "]" * 5000))
        assert "loki.datasource_uid.0.0.0" in stderr
        assert "nested deeper than 20 levels (line 30)" in stderr

    def test_duplicate_keys_at_any_level(self, example_catalog_path: Path, tmp_path: Path) -> None:
        """The later of two equal keys silently won; every duplicate is named with its path and lines."""
        stderr = self.refused(
            example_catalog_path, tmp_path,
            ("    pipeline: standard\n  orders:", "    pipeline: standard\n    pipeline: fast\n  orders:"),
            ('envs: ["*"], who: ["*"]}', 'envs: ["*"], who: ["*"], who: [oncall]}'),
            ("loki:\n", "settings: {}\nloki:\n"),
        )
        assert "settings: duplicate key 'settings' (line 25; first on line 4)" in stderr
        # payment's pipeline line in the example, one further down for the settings line added above it
        first = example_catalog_path.read_text().split("    pipeline: standard\n  orders:")[0].count("\n") + 2
        expected = f"duplicate key 'pipeline' (line {first + 1}; first on line {first})"
        assert f"services.payment.pipeline: {expected}" in stderr
        assert "access.rules.0.who: duplicate key 'who'" in stderr

    def test_approval_with_no_approvers(self, example_catalog_path: Path, tmp_path: Path) -> None:
        """An approval nobody can give: no approvers, or only groups with nobody in them."""
        stderr = self.refused(example_catalog_path, tmp_path,
                              ("approvers: [release-managers, sre-leads]", "approvers: []"))
        assert "access.rules.2.approval.approvers: empty, so nobody could ever approve" in stderr
        stderr = self.refused(example_catalog_path, tmp_path,
                              ("release-managers: [U02CCC]", "release-managers: []"),
                              ("sre-leads: [S0SRELEADS]", "sre-leads: [release-managers]"))
        assert "access.rules.2.approval.approvers: every group named is empty, so nobody could ever approve" in stderr

    def test_user_entries_that_are_not_slack_ids(self, example_catalog_path: Path, tmp_path: Path) -> None:
        """who, approvers and group members are group names, U…/W… user ids, S… user group ids (or '*' in rules);
        terminal users map to U…/W… ids."""
        stderr = self.refused(
            example_catalog_path, tmp_path,
            ("oncall: [U01AAA, U01BBB]", "oncall: [U01AAA, alice@example.com, '*']"),
            ('envs: [dev, staging], who: [oncall]}', 'envs: [dev, staging], who: [oncall, "<@U01BBB>"]}'),
            ("approvers: [release-managers, sre-leads]", "approvers: [release-managers, bob]"),
            ("users: {alice: U01AAA}", "users: {alice: alice}"),
            ("sre-leads: [S0SRELEADS]", "sre-leads: [S0SRELEADS, sre-leads]"),
        )
        allowed = ("entries are catalog group names (access.groups), Slack user ids (U…, W…), Slack user group ids "
                   "(S…)")
        assert f"access.groups.oncall.1: 'alice@example.com' is not a Slack user or group id; {allowed}\n" in stderr
        assert f"access.groups.oncall.2: '*' is not a Slack user or group id; {allowed}\n" in stderr
        assert f"access.rules.1.who.1: '<@U01BBB>' is not a Slack user or group id; {allowed} or '*'" in stderr
        assert "access.rules.2.approval.approvers.1: unknown group 'bob' (known: oncall, release-managers" in stderr
        assert "terminal.users.alice: 'alice' is not a Slack user id (U… or W…)" in stderr
        assert "access.groups: groups contain each other in a cycle sre-leads -> sre-leads" in stderr


class TestProfileDirectories:
    """A profile directory that does not exist: a warning in `check`, an error when `serve` starts."""

    def catalog(self, example_catalog_path: Path, tmp_path: Path) -> Path:
        path = tmp_path / "catalog.yaml"
        path.write_text(example_catalog_path.read_text().replace("dir: configs/payment", "dir: configs/nowhere"))
        return path

    def test_a_warning_in_check(self, example_catalog_path: Path, tmp_path: Path) -> None:
        result = svcbot_check(self.catalog(example_catalog_path, tmp_path))
        assert result.returncode == 0, result.stderr
        assert "OK (2 clusters" in result.stdout
        assert (f"warning: services.payment.config.dir: 'configs/nowhere' is not a directory (looked at "
                f"{tmp_path / 'configs' / 'nowhere'}) (svcbot serve refuses to start without it)") in result.stderr

    def test_an_error_at_serve(self, example_catalog_path: Path, tmp_path: Path) -> None:
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-1-test", "SLACK_SIGNING_SECRET": "test-secret",
               "SVCBOT_SLACK_API_URL": "http://127.0.0.1:9/api/", "KUBECONFIG": str(tmp_path / "none")}
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--catalog", str(self.catalog(example_catalog_path, tmp_path)),
             "--host", "127.0.0.1", "--port", "0", "--health-port", "0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = process.communicate(timeout=60)  # before: it started and served, never exiting
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 1, stderr
        assert "services.payment.config.dir: 'configs/nowhere' is not a directory" in stderr
        assert "Traceback" not in stderr
