"""bot.insight.profiles: where profiles are looked for, and what a broken one says."""

from __future__ import annotations

from pathlib import Path

import pytest
from diff_world import make_world

from bot.core.errors import UserError
from bot.insight.profiles import load_profile, parse_profile, profile_pattern


def test_empty_file_is_an_empty_profile() -> None:
    """An empty profile has no keys (every key of the other side is then only there)."""
    assert parse_profile("", "x.yaml") == {}


def test_a_list_is_not_a_profile() -> None:
    """A YAML document that is not a mapping is refused, naming the file and what it is."""
    with pytest.raises(UserError, match=r"x\.yaml: a profile must be a mapping of keys, not a list"):
        parse_profile("- a\n- b\n", "x.yaml")


def test_syntax_error_does_not_quote_the_line() -> None:
    """The error names line and column but not the text, which may hold a secret."""
    with pytest.raises(UserError) as caught:
        parse_profile("db:\n  password: \"hunter2\n", "x.yaml")
    assert "line" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_profile_pattern_extracts_the_environment() -> None:
    """File names made from the pattern give back the environment name."""
    match = profile_pattern("application-{profile}.yaml").fullmatch("application-prod.yaml")
    assert match is not None
    assert match.group("profile") == "prod"


@pytest.mark.parametrize("ref", ["--output=/tmp/x", "main:../../etc", "a b", "v1..v2"])
def test_refs_that_could_be_options_or_paths_are_refused(tmp_path: Path, ref: str) -> None:
    """A catalog ref that is not a plain revision is refused before git runs."""
    world = make_world(tmp_path, f"'{ref}'")
    with pytest.raises(UserError, match="is not a git revision svcbot will read"):
        load_profile(world.runtime.catalog, "payment", "prod")


def test_not_a_git_checkout_says_so(tmp_path: Path) -> None:
    """A ref on a directory outside any git checkout says the directory is not in one."""
    world = make_world(tmp_path, "main")
    with pytest.raises(UserError, match="is not in a git checkout"):
        load_profile(world.runtime.catalog, "payment", "prod")
