"""The terminal: the shell's built-ins and identity rules, `svcbot run` exit codes, logs on stderr only."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.errors import UsageError
from bot.runtime import build_runtime
from bot.terminal.shell import Shell, default_user, resolve_as


def catalog_file(example_catalog_path: Path, tmp_path: Path, allow_as: bool) -> Path:
    raw: dict[str, Any] = yaml.safe_load(example_catalog_path.read_text())
    raw["terminal"]["allow_as"] = allow_as
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_shell(path: Path, user: str, lines: list[str]) -> str:
    runtime = build_runtime(path)
    feed = iter(lines)

    def read(_prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    out = io.StringIO()
    Shell(runtime.dispatcher, user, out=out, read=read).loop()
    return out.getvalue()


def test_shell_session(example_catalog_path: Path, tmp_path: Path) -> None:
    """The shell runs commands, switches user with `as`, answers whoami and stops at exit."""
    path = catalog_file(example_catalog_path, tmp_path, allow_as=True)
    output = run_shell(path, "U01AAA", ["/svc help", "as alice", "whoami", "as U02CCC", "whoami", "exit", "help"])
    assert "/svc help [verb]" in output
    assert "now acting as U01AAA" in output
    assert "acting as U02CCC" in output
    assert output.count("svcbot commands") == 1  # nothing after exit


def test_help_lists_the_shells_own_commands(example_catalog_path: Path, tmp_path: Path) -> None:
    """`help` in the shell also names the shell's own commands; `help <verb>` is about the verb only."""
    path = catalog_file(example_catalog_path, tmp_path, allow_as=True)
    output = run_shell(path, "U01AAA", ["help"])
    assert "shell commands" in output
    for word in ("as USER", "whoami", "exit"):
        assert word in output
    assert "shell commands" not in run_shell(path, "U01AAA", ["help deploy"])


def test_whoami_names_groups_and_what_the_user_may_do(example_catalog_path: Path, tmp_path: Path) -> None:
    """whoami: the terminal name and user id, the catalog groups, the verbs by environment (prod deploys with
    approval), and what the user approves."""
    path = catalog_file(example_catalog_path, tmp_path, allow_as=True)
    oncall = run_shell(path, "U01AAA", ["whoami"])
    assert "acting as alice (U01AAA)" in oncall
    assert "groups: @oncall" in oncall
    [deploys] = [line for line in oncall.splitlines() if line.strip().startswith("deploy, rollback in")]
    assert set(deploys.split(" in ", 1)[1].split(", ")) == {"dev", "staging", "prod (with approval)"}
    assert "approves" not in oncall
    approver = run_shell(path, "U02CCC", ["whoami"])
    assert "groups: @release-managers" in approver
    assert "approves: deploy/rollback in prod" in approver
    assert "deploy, rollback" not in approver.split("approves")[0]
    nobody = run_shell(path, "U09NOBODY", ["whoami"])
    assert "groups: none" in nobody
    [reads] = [line for line in nobody.splitlines() if line.strip().startswith("status, probe")]
    assert set(reads.split(" in ", 1)[1].split(", ")) == {"dev", "staging", "prod"}
    assert "deploy" not in nobody.split("may:")[1]


def test_as_refused_unless_allowed(example_catalog_path: Path, tmp_path: Path) -> None:
    """`as` is refused when the catalog does not allow acting as someone else."""
    path = catalog_file(example_catalog_path, tmp_path, allow_as=False)
    output = run_shell(path, "terminal:me", ["as U02CCC", "whoami"])
    assert "acting as another user is off in this catalog" in output
    assert "acting as terminal:me" in output


def test_identity_rules(example_catalog_path: Path, tmp_path: Path) -> None:
    """Without --as the OS user maps through terminal.users, or is nobody in particular."""
    catalog = build_runtime(catalog_file(example_catalog_path, tmp_path, allow_as=True)).catalog
    assert default_user(catalog, "alice") == "U01AAA"
    assert default_user(catalog, "mallory") == "terminal:mallory"
    assert resolve_as(catalog, "alice") == "U01AAA"
    with pytest.raises(UsageError, match="neither a Slack user id"):
        resolve_as(catalog, "bob; rm -rf /")


def svcbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, check=False,
                          timeout=60)


def test_run_prints_answer_on_stdout_and_logs_on_stderr(example_catalog_path: Path) -> None:
    """`svcbot run` prints only the answer on stdout; JSON log lines go to stderr, with the OS user."""
    result = svcbot("--log-level", "INFO", "run", "help", "--catalog", str(example_catalog_path))
    assert result.returncode == 0
    assert result.stdout.startswith("svcbot commands")
    finished = [json.loads(line) for line in result.stderr.splitlines() if '"command.finished"' in line]
    assert len(finished) == 1
    assert finished[0]["verb"] == "help"
    assert finished[0]["source"] == "terminal"
    assert finished[0]["os_user"]


def test_the_shell_logs_to_a_file_and_says_where(example_catalog_path: Path, tmp_path: Path) -> None:
    """In `svcbot shell` nothing but answers reaches the screen: the log (a denial's audit line included) goes
    to the file the shell names at start."""
    log = tmp_path / "shell.log"
    result = subprocess.run([sys.executable, "-m", "bot.cli", "shell", "--catalog", str(example_catalog_path)],
                            input="status payment prod\ndeploy payment prod 1.4.2\nexit\n", capture_output=True,
                            text=True, check=False, timeout=60, env={**os.environ, "SVCBOT_LOG_FILE": str(log)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"(logs go to {log})" in result.stdout
    assert "audit.denied" not in result.stdout
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "audit.denied" in events
    assert events.count("command.finished") == 2


def test_run_exit_code_for_user_error(example_catalog_path: Path) -> None:
    """A user error exits 1 with the message on stdout."""
    result = svcbot("run", "sttus payment", "--catalog", str(example_catalog_path))
    assert result.returncode == 1
    assert "unknown command 'sttus'" in result.stdout


def test_missing_catalog_is_explained() -> None:
    """Without a catalog, svcbot says where it looked and what to do."""
    result = subprocess.run([sys.executable, "-m", "bot.cli", "run", "help"], capture_output=True, text=True,
                            check=False, cwd="/", timeout=60)
    assert result.returncode == 1
    assert "no catalog: pass --catalog PATH or set SVCBOT_CATALOG" in result.stderr
