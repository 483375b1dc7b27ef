"""The Loki stand-in refuses what Loki refuses (no tenant; regex syntax Go's regexp rejects, in Go's words),
matches with RE2, and the bot's own paths (status, probe, logs, a deploy with its Lease and Jobs) work against
the stricter stand-ins as the bot's identity, with no 401 or 403 on the way."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bot.replies.base import Outcome
from bot.runtime import Runtime, build_runtime
from sandbox.kube.auth import BOT_USER
from sandbox.stack import SandboxStack

NS = 1_000_000_000
TENANT = {"X-Scope-OrgID": "ops"}


def query(stack: SandboxStack, logql: str, headers: dict[str, str] | None = None) -> requests.Response:
    end = time.time_ns()
    return requests.get(stack.loki_url() + "/loki/api/v1/query_range", timeout=10,
                        params={"query": logql, "start": str(end - 3600 * NS), "end": str(end), "limit": "50"},
                        headers=TENANT if headers is None else headers)


def lines(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [line for item in answer.json()["data"]["result"] for _ts, line in item["values"]]


@pytest.fixture(name="greek", scope="module")
def fixture_greek(stack: SandboxStack) -> None:
    loki: Any = stack.loki
    loki.push([{"stream": {"namespace": "re2", "app": "t"}, "values": [
        [str(time.time_ns() - 2 * NS), "alpha αβγ line"], [str(time.time_ns() - NS), "plain a.b line"]]}])


class TestLoki:
    def test_a_query_without_a_tenant_gets_no_org_id(self, stack: SandboxStack) -> None:
        answer = query(stack, '{app="payment"}', headers={})
        assert (answer.status_code, answer.text.strip()) == (401, "no org id")

    def test_the_sandbox_catalog_names_the_tenant(self, stack: SandboxStack) -> None:
        assert stack.catalog()["loki"]["tenant"] == "ops"
        assert lines(query(stack, '{namespace="prod", app="payment"}'))

    @pytest.mark.parametrize(("pattern", "go_error"), [
        ("(?=x)", "invalid or unsupported Perl syntax: `(?=`"),
        ("(?!x)y", "invalid or unsupported Perl syntax: `(?!`"),
        ("(a)\\\\1", "invalid escape sequence: `\\1`"),
        ("a\\\\C", "invalid escape sequence: `\\C`"),
        ("a**", "invalid nested repetition operator: `**`"),
    ])
    def test_python_only_regex_syntax_is_refused_in_gos_words(self, stack: SandboxStack, pattern: str,
                                                              go_error: str) -> None:
        for logql in (f'{{app="payment"}} |~ "{pattern}"', f'{{app=~"{pattern}"}}'):
            answer = query(stack, logql)
            assert answer.status_code == 400, logql
            assert f"error parsing regexp: {go_error}" in answer.text

    def test_re2_syntax_python_lacks_or_reads_differently_works(self, stack: SandboxStack, greek: None) -> None:
        assert lines(query(stack, '{namespace="re2"} |~ "\\\\p{Greek}+"')) == ["alpha αβγ line"]
        assert lines(query(stack, '{namespace="re2"} |~ "\\\\Qa.b\\\\E"')) == ["plain a.b line"]
        assert lines(query(stack, '{namespace="re2"} |~ "^[[:alpha:]]+ a"')) == ["plain a.b line"]
        assert lines(query(stack, '{namespace="re2"} |~ "line\\\\z"')) == ["plain a.b line", "alpha αβγ line"]

    def test_re2_keeps_its_error_log_off_the_terminal(self) -> None:
        code = ("from sandbox import logql_engine as e\n"
                "for p in ('(?=x)', '[a', 'a**'):\n"
                "    try: e.go_regexp(p)\n"
                "    except ValueError: pass\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
        assert (result.returncode, result.stderr) == (0, "")


@pytest.fixture(name="runtime")
def fixture_runtime(stack: SandboxStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    assert stack.directory is not None
    monkeypatch.setenv("KUBECONFIG", str(stack.directory / "kubeconfig"))
    monkeypatch.setenv("SVCBOT_DB", str(stack.directory / "svcbot.db"))
    runtime = build_runtime(stack.directory / "catalog.yaml")
    yield runtime
    runtime.close()


class TestTheBotsPaths:
    def test_status_probe_logs_and_a_deploy_as_the_bot(self, stack: SandboxStack, runtime: Runtime) -> None:
        assert stack.kube is not None
        for cluster in stack.kube.clusters.values():
            cluster.callers.clear()
        loki: Any = stack.loki
        seen_before = len(loki.seen)
        for text in ("status payment", "status all", "probe payment prod", "logs payment prod --since 1h",
                     "deploy payment dev 1.4.2"):
            reply = runtime.dispatcher.execute(text, "U0ALICE", source="terminal", follow_runs=True)
            assert reply.outcome is Outcome.OK, (text, [getattr(e, "problem", "") for e in getattr(reply, "envs", ())])
        callers = {c for cluster in stack.kube.clusters.values() for c in cluster.callers}
        assert {c[0] for c in callers} == {BOT_USER}
        assert not [c for c in callers if c[-1] in (401, 403)]
        verbs = {(c[2], c[4]) for c in callers}
        assert {("leases", "create"), ("jobs", "create"), ("deployments", "patch")} <= verbs
        assert {seen.tenant for seen in loki.seen[seen_before:] if seen.path.endswith("query_range")} == {"ops"}
