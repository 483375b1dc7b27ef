"""/svc diff through the real dispatcher: the drift cases people hit, errors, and both renderings."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from diff_world import World

from bot.insight.configdiff import ConfigDiff
from bot.replies.base import Message, Outcome
from bot.replies.diff import DiffReply

STAGING = """\
payment:
  provider:
    endpoint: https://sandbox.psp.example.com/v2
    timeout: 30s
    retries: 3
  feature:
    new-checkout: true
  db:
    host: ${DB_HOST}
    password: Sup3rS3cretStaging!
  api_token: tok-shared-7f3a9c1e
  audit_sink: ${AUDIT_URL}
"""

PROD = """\
payment:
  provider:
    endpoint: https://psp.example.com/v2
    timeout: 3s
    retries: "3"
  db:
    host: ${DB_HOST}
    password: Pr0dPassw0rd#2024
  api_token: tok-shared-7f3a9c1e
"""


WorldFactory = Callable[[Path, str | None], World]


def _diff(reply: object) -> ConfigDiff:
    assert isinstance(reply, DiffReply), reply
    return reply.diff


def _row(text: str, key: str) -> str:
    """The rendered line of one key."""
    lines = [line for line in text.splitlines() if re.match(rf"\s*{re.escape(key)}\s", line)]
    assert lines, f"no line for {key} in:\n{text}"
    return lines[0]


def test_key_missing_in_prod_is_only_in_staging(world: World) -> None:
    """A key staging has and prod lacks is listed under 'Only in staging' with its value."""
    world.write("staging", STAGING)
    world.write("prod", PROD)
    answer = world.run("diff payment staging prod")
    only = {item.key: item.value.text for item in _diff(answer.reply).only_a}
    assert only["payment.feature.new-checkout"] == "true"
    assert "true" in _row(answer.text, "payment.feature.new-checkout")


def test_changed_timeout_shows_both_values(world: World) -> None:
    """A timeout ten times smaller in prod is a change with both values shown, A then B."""
    world.write("staging", STAGING)
    world.write("prod", PROD)
    answer = world.run("diff payment staging prod")
    change = next(c for c in _diff(answer.reply).changed if c.key == "payment.provider.timeout")
    assert (change.a.text, change.b.text) == ("30s", "3s")
    assert re.search(r"payment\.provider\.timeout\s+30s\s+3s", answer.text)


def test_changed_password_is_changed_secret_without_values(world: World) -> None:
    """Two different passwords come out as 'changed (secret)', and neither value appears anywhere."""
    world.write("staging", STAGING)
    world.write("prod", PROD)
    answer = world.run("diff payment staging prod")
    change = next(c for c in _diff(answer.reply).changed if c.key == "payment.db.password")
    assert change.secret
    assert "changed (secret)" in _row(answer.text, "payment.db.password")
    for secret in ("Sup3rS3cretStaging!", "Pr0dPassw0rd#2024"):
        assert secret[:6] not in answer.text + answer.slack


def test_equal_api_token_is_same_secret(world: World) -> None:
    """An API token equal on both sides is reported as same (secret), never shown."""
    world.write("staging", STAGING)
    world.write("prod", PROD)
    answer = world.run("diff payment staging prod")
    assert "payment.api_token" in _diff(answer.reply).same_secrets
    assert re.search(r"same \(secret\):.*payment\.api_token", answer.text)
    assert "7f3a9c1e" not in answer.text + answer.slack


def test_placeholder_only_one_side_uses_is_called_out(world: World) -> None:
    """${AUDIT_URL} used only by staging shows as written and as a variable only staging needs."""
    world.write("staging", STAGING)
    world.write("prod", PROD)
    answer = world.run("diff payment staging prod")
    diff = _diff(answer.reply)
    assert (diff.variables_only_a, diff.variables_only_b) == (("AUDIT_URL",), ())
    assert "${AUDIT_URL}" in _row(answer.text, "payment.audit_sink")
    assert "only staging needs ${AUDIT_URL}" in answer.text


def test_type_change_is_called_out(world: World) -> None:
    """retries: 3 against retries: "3" is a change marked as a type change int -> string."""
    world.write("staging", STAGING)
    world.write("prod", PROD)
    answer = world.run("diff payment staging prod")
    change = next(c for c in _diff(answer.reply).changed if c.key == "payment.provider.retries")
    assert change.type_changed
    assert re.search(r'payment\.provider\.retries\s+3\s+"3"\s+type int → string', answer.text)


def test_unchanged_keys_are_counted_not_listed(world: World) -> None:
    """The unchanged placeholder key is counted and does not appear in any group."""
    world.write("staging", STAGING)
    world.write("prod", PROD)
    answer = world.run("diff payment staging prod")
    diff = _diff(answer.reply)
    assert diff.unchanged == 2  # db.host and the api token
    assert "payment.db.host" not in answer.text
    assert "2 unchanged" in answer.text


def test_identical_profiles_say_no_differences(world: World) -> None:
    """Two identical profiles answer OK with 'no differences' and the key count."""
    world.write("staging", "a: 1\nb: {c: x}\n")
    world.write("prod", "b: {c: x}\na: 1\n")
    answer = world.run("diff payment staging prod")
    assert answer.reply.outcome is Outcome.OK
    assert "no differences (2 keys the same)" in answer.text


def test_unknown_service_lists_known_services(world: World) -> None:
    """An unknown service is a user error naming the services the catalog knows."""
    answer = world.run("diff paymnet staging prod")
    assert isinstance(answer.reply, Message)
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert "unknown service 'paymnet' (known: orders, payment)" in answer.text


def test_unknown_environment_lists_known_environments(world: World) -> None:
    """An unknown environment is a user error naming the environments the catalog knows."""
    answer = world.run("diff payment staging qa")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert "unknown environment 'qa' (known: dev, staging, prod)" in answer.text


def test_missing_profile_names_the_path_looked_for(world: World) -> None:
    """A missing profile file is a user error with the full path that was looked for."""
    world.write("staging", STAGING)
    answer = world.run("diff payment staging prod")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert f"no profile for prod: looked for {world.configs / 'application-prod.yaml'}" in answer.text


def test_yaml_syntax_error_names_file_line_and_column(world: World) -> None:
    """A YAML syntax error names the file, the line and the column, and does not quote the line."""
    world.write("staging", STAGING)
    world.write("prod", "payment:\n  db:\n    password: hunter2-secret\n  timeout: [1, 2\n")
    answer = world.run("diff payment staging prod")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert re.search(r"configs/payment/application-prod\.yaml: YAML syntax error at line \d+, column \d+",
                     answer.text)
    assert "hunter2" not in answer.text


def test_duplicate_key_is_an_error_with_its_line(world: World) -> None:
    """A key written twice in one mapping is refused with the line of the second one."""
    world.write("staging", STAGING)
    world.write("prod", "payment:\n  timeout: 3s\n  retries: 2\n  timeout: 30s\n")
    answer = world.run("diff payment staging prod")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert "line 4, column 3: duplicate key 'timeout' (first at line 2)" in answer.text


def test_service_without_profiles_says_how_to_declare_them(world: World) -> None:
    """A service with no `config` in the catalog is a user error that names the catalog key to add."""
    answer = world.run("diff orders staging prod")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert "services.orders.config" in answer.text


def test_same_environment_twice_is_a_usage_error(world: World) -> None:
    """Comparing an environment with itself without --live is a usage error."""
    answer = world.run("diff payment prod prod")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert "two different environments" in answer.text


def test_lists_by_name_are_compared_by_name(world: World) -> None:
    """List items with a name are matched by name, so reordering is no difference and a change names the item."""
    world.write("staging", "routes:\n  - {name: orders, timeout: 2s}\n  - {name: refunds, timeout: 5s}\n")
    world.write("prod", "routes:\n  - {name: refunds, timeout: 5s}\n  - {name: orders, timeout: 9s}\n")
    diff = _diff(world.run("diff payment staging prod").reply)
    assert [change.key for change in diff.changed] == ["routes[name=orders].timeout"]
    assert diff.unchanged == 3


def test_long_groups_are_cut_in_slack_with_and_n_more(world: World) -> None:
    """Forty keys only in staging show fifteen in the message, 'and 25 more', and all forty in the file."""
    world.write("staging", "".join(f"key{index:02d}: value{index:02d}\n" for index in range(40)))
    world.write("prod", "other: 1\n")
    answer = world.run("diff payment staging prod")
    assert "… and 25 more" in answer.slack
    assert "key14" in answer.slack.split('"file"')[0]
    assert "key39" not in answer.slack.split('"file"')[0]
    attached = answer.slack.split('"file"')[1]
    assert all(f"key{index:02d}" in attached for index in range(40))


def test_terminal_gets_the_full_list_in_a_file(world: World, tmp_path: Path) -> None:
    """The text rendering names the file holding the full list, and that file has every key."""
    world.write("staging", "".join(f"key{index:02d}: value{index:02d}\n" for index in range(40)))
    world.write("prod", "other: 1\n")
    answer = world.run("diff payment staging prod")
    match = re.search(r"\(full output: (.+)\)", answer.text)
    assert match is not None
    full = Path(match.group(1)).read_text(encoding="utf-8")
    assert all(f"key{index:02d}" in full for index in range(40))


def commit_everything(root: Path) -> None:
    """Make `root` a git repository with everything in it committed."""
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "profiles"], check=True)


def test_git_ref_reads_the_committed_profile(world_factory: WorldFactory, tmp_path: Path) -> None:
    """With `ref`, the profiles are read as committed at that ref, not as they are on disk."""
    world = world_factory(tmp_path, "HEAD")
    world.write("staging", "timeout: 30s\n")
    world.write("prod", "timeout: 30s\n")
    commit_everything(tmp_path)
    world.write("prod", "timeout: 3s\n")  # not committed
    answer = world.run("diff payment staging prod")
    assert isinstance(answer.reply, DiffReply)
    assert not answer.reply.diff.differs
    assert "application-prod.yaml at HEAD" in answer.text


def test_git_ref_missing_file_names_ref_and_path(world_factory: WorldFactory, tmp_path: Path) -> None:
    """A profile absent from the commit is a user error naming the ref and the path looked for."""
    world = world_factory(tmp_path, "HEAD")
    world.write("staging", "timeout: 30s\n")
    commit_everything(tmp_path)
    answer = world.run("diff payment staging prod")
    assert answer.reply.outcome is Outcome.USER_ERROR
    assert f"no profile for prod at HEAD: looked for {world.configs / 'application-prod.yaml'}" in answer.text


def test_merge_keys_may_be_overridden(world: World) -> None:
    """A key overriding one merged in with `<<: *defaults` is not a duplicate, and the override wins."""
    world.write("staging", "base: &base {timeout: 1s, retries: 2}\nhttp:\n  <<: *base\n  timeout: 5s\n")
    world.write("prod", "http: {timeout: 5s, retries: 2}\nbase: {timeout: 1s, retries: 2}\n")
    answer = world.run("diff payment staging prod")
    assert isinstance(answer.reply, DiffReply), answer.text
    assert not answer.reply.diff.differs


def test_long_values_are_clipped_in_the_message_and_whole_in_the_file(world: World) -> None:
    """A value longer than a message cell is clipped with … in the message and whole in the attached file."""
    long_value = "word-" * 30
    world.write("staging", f"banner: {long_value}\n")
    world.write("prod", "banner: short\n")
    answer = world.run("diff payment staging prod")
    message, attached = answer.slack.split('"file"')
    assert long_value not in message
    assert re.search(r"banner\s+(word-){11}word…", message)
    assert long_value in attached
