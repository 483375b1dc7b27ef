"""/svc diff on the sandbox's seed world: its payment profiles, and --live against its two clusters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from diff_world import Answer, answer_for

from bot.insight.configdiff import ConfigDiff
from bot.replies.diff import DiffReply
from bot.runtime import Runtime, build_runtime
from sandbox.stack import SandboxStack


@pytest.fixture(name="stack_dir", scope="module")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("diff-seed")
    with SandboxStack() as stack:
        stack.start(directory, time_scale=0.02)
        yield directory


@pytest.fixture(name="runtime")
def _runtime(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("KUBECONFIG", str(stack_dir / "kubeconfig"))
    runtime = build_runtime(stack_dir / "catalog.yaml")
    yield runtime
    runtime.close()


def diff_of(runtime: Runtime, text: str) -> tuple[ConfigDiff, DiffReply, Answer]:
    answer = answer_for(runtime, text)
    assert isinstance(answer.reply, DiffReply), answer.text
    return answer.reply.diff, answer.reply, answer


def test_seed_staging_against_prod(runtime: Runtime) -> None:
    """prod alone has a read replica and a rate limit; ledger timeout and sslmode differ; same placeholders."""
    diff, _reply, answer = diff_of(runtime, "diff payment staging prod")
    assert {item.key for item in diff.only_b} >= {"database.read_replica.host", "rate_limit.per_merchant_rps"}
    changed = {change.key: (change.a.text, change.b.text) for change in diff.changed}
    assert changed["ledger.timeout"] == ("3s", "2s")
    assert changed["database.sslmode"] == ("require", "verify-full")
    assert "database.password" not in changed  # ${DB_PASSWORD} on both sides
    assert "Changed" in answer.text


def test_seed_dev_password_is_masked_against_prod_placeholder(runtime: Runtime) -> None:
    """dev's literal password and webhook secret are masked; prod's ${VAR}s show and are needed only by prod."""
    diff, _reply, answer = diff_of(runtime, "diff payment dev prod")
    password = next(change for change in diff.changed if change.key == "database.password")
    assert (password.a.text, password.b.text) == (None, "${DB_PASSWORD}")
    assert "DB_PASSWORD" in diff.variables_only_b
    for secret in ("devpass", "whsec_dev", "4f9a2c1e"):
        assert secret not in answer.text + answer.slack


def test_seed_live_runs_what_it_declares(runtime: Runtime) -> None:
    """The seed ConfigMaps hold the seed profiles: no drift; DB_PASSWORD comes from a Secret reference."""
    _diff, reply, answer = diff_of(runtime, "diff payment staging prod --live")
    for drift in reply.drift:
        assert drift.diff.changed == (), answer.text
        assert [item.key for item in drift.supplied_variables if item.key == "DB_PASSWORD"] == ["DB_PASSWORD"]
        assert "DB_PASSWORD" not in drift.missing_variables
    assert "secret payment-db, key password" in answer.text
