"""Access policy: default-deny, every touched environment checked, the strictest matching rule wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.catalog import Catalog, load_catalog, parse_catalog
from bot.core.policy import Policy


@pytest.fixture(name="catalog")
def _catalog(example_catalog_path: Path) -> Catalog:
    return load_catalog(example_catalog_path)


def with_rules(example_catalog_path: Path, rules: list[dict[str, Any]]) -> Catalog:
    raw = yaml.safe_load(example_catalog_path.read_text())
    raw["access"]["rules"] = rules
    for env in raw["environments"].values():
        env.pop("protected", None)
    return parse_catalog(yaml.safe_dump(raw))


def test_oncall_deploys_staging_without_approval(catalog: Catalog) -> None:
    """A member of the allowed group deploys to a non-protected environment at once."""
    decision = Policy(catalog).check("deploy", ["staging"], "U01AAA")
    assert decision.allowed
    assert decision.approval is None


def test_prod_deploy_needs_approval(catalog: Catalog) -> None:
    """The prod rule's approval block comes with the decision."""
    decision = Policy(catalog).check("deploy", ["prod"], "U01BBB")
    assert decision.allowed
    assert decision.approval is not None
    assert decision.approval.quorum == 1


def test_denied_names_who_may(catalog: Catalog) -> None:
    """Someone outside the group is denied with the groups that may."""
    decision = Policy(catalog).check("deploy", ["prod"], "U02CCC")
    assert not decision.allowed
    assert decision.reason == "you may not deploy to prod (allowed: @oncall)"


def test_default_deny(catalog: Catalog) -> None:
    """A verb no rule names is denied."""
    decision = Policy(catalog).check("rollback", ["dev"], "U09NOBODY")
    assert not decision.allowed


def test_everyone_reads(catalog: Catalog) -> None:
    """'*' in who lets anyone read."""
    assert Policy(catalog).check("status", ["prod", "dev"], "U09NOBODY").allowed


def test_every_env_is_checked(example_catalog_path: Path) -> None:
    """diff staging prod needs both environments allowed."""
    catalog = with_rules(example_catalog_path, [
        {"verbs": ["diff"], "envs": ["staging"], "who": ["*"]},
        {"verbs": ["diff"], "envs": ["prod"], "who": ["oncall"]},
    ])
    policy = Policy(catalog)
    assert policy.check("diff", ["staging", "prod"], "U01AAA").allowed
    decision = policy.check("diff", ["staging", "prod"], "U02CCC")
    assert not decision.allowed
    assert "prod" in decision.reason


def test_strictest_rule_wins(example_catalog_path: Path) -> None:
    """When a rule with approval and one without both match, approval is required."""
    catalog = with_rules(example_catalog_path, [
        {"verbs": ["deploy"], "envs": ["*"], "who": ["oncall"]},
        {"verbs": ["deploy"], "envs": ["staging"], "who": ["*"],
         "approval": {"approvers": ["release-managers"], "quorum": 2}},
    ])
    decision = Policy(catalog).check("deploy", ["staging"], "U01AAA")
    assert decision.allowed
    assert decision.approval is not None
    assert decision.approval.quorum == 2


def test_slack_user_groups_resolve(catalog: Catalog) -> None:
    """Approvers may be Slack user groups, resolved through the given resolver."""
    policy = Policy(catalog, resolve_user_group=lambda group: frozenset({"U07LEAD"}) if group == "S0SRELEADS"
                    else frozenset())
    approval = policy.check("deploy", ["prod"], "U01AAA").approval
    assert approval is not None
    assert policy.is_approver(approval, "U07LEAD")
    assert policy.is_approver(approval, "U02CCC")
    assert not policy.is_approver(approval, "U01AAA")
