"""Step kinds that run on the bot's host: make (a real Makefile), run (argv, no shell) and http."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from deploy_fakes import WORKLOAD, MemoryLocker, approved_request

from bot.core.catalog import Catalog
from bot.deploys.engine import RunEngine, RunSettings
from bot.deploys.plan import plan_deploy
from bot.deploys.steps import KINDS
from bot.deploys.steps.base import RunFacts, StepContext, StepFailed
from bot.deploys.store import State, Store


def _context(workspace: Path) -> StepContext:
    def no_cluster(_cluster: str) -> Any:
        raise AssertionError("a local step asked for a cluster")

    return StepContext(run_id="abcd1234", seq=0, workload=WORKLOAD, workspace=workspace, kube_for=no_cluster,
                       cancelled=lambda: False, facts=RunFacts(), poll=0.02)


class TestMake:
    def test_make_runs_the_target_with_variables(self, tmp_path: Path, workspace: Path) -> None:
        """`make -C workspace build VERSION=... GREETING=...` runs the real Makefile with the values passed."""
        ctx = _context(tmp_path)
        summary = KINDS["make"].execute({"target": "build", "dir": "workspace",
                                         "vars": {"VERSION": "1.4.2", "GREETING": "hi there"}}, ctx)
        assert summary == "make build succeeded"
        assert (workspace / "built.txt").read_text() == "1.4.2 hi there\n"
        assert "building 1.4.2 with hi there" in ctx.output.text()

    def test_failing_target_fails_with_its_output(self, tmp_path: Path, workspace: Path) -> None:
        """A target that exits non-zero fails the step; its output (stderr included) is the tail."""
        ctx = _context(tmp_path)
        with pytest.raises(StepFailed, match="make broken: exit status 2"):
            KINDS["make"].execute({"target": "broken", "dir": str(workspace), "vars": {"VERSION": "2.0.0"}}, ctx)
        assert "error: undefined reference to main" in ctx.output.text()

    def test_planned_pipeline_runs_make_and_run_steps(self, catalog: Catalog, store: Store, workspace: Path) -> None:
        """The build and test targets of the catalog's pipeline run for real through the engine."""
        plan = plan_deploy(catalog, "payment", "staging", "1.4.2")
        local = dataclasses.replace(plan, steps=plan.steps[:2])
        engine = RunEngine(store, locker=MemoryLocker(), settings=RunSettings(heartbeat=0.05, poll=0.02))
        snapshot = engine.start(approved_request(store, local)).wait(30)
        engine.shutdown(5)
        assert snapshot.state is State.SUCCEEDED
        assert (workspace / "built.txt").read_text() == "1.4.2 staging-hello\n"
        assert snapshot.steps[1].output_tail == "testing payment-staging for 1.4.2"


class TestRun:
    def test_argv_is_never_a_shell_command(self, tmp_path: Path) -> None:
        """A value with shell syntax reaches the program as one literal argument."""
        ctx = _context(tmp_path)
        KINDS["run"].execute({"argv": ["printf", "%s|", "$(id)", "a b;c"]}, ctx)
        assert ctx.output.text() == "$(id)|a b;c|"

    def test_child_gets_the_step_env_but_not_the_bots_secrets(self, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
        """SLACK_BOT_TOKEN in the bot's environment is not passed on; the step's env is."""
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
        ctx = _context(tmp_path)
        KINDS["run"].execute({"argv": ["env"], "env": {"DEPLOY_VERSION": "1.4.2"}}, ctx)
        assert "DEPLOY_VERSION=1.4.2" in ctx.output.text()
        assert "xoxb-secret" not in ctx.output.text()

    def test_timeout_kills_the_process_group(self, tmp_path: Path) -> None:
        """A step over its timeout is stopped and fails saying so."""
        ctx = _context(tmp_path)
        with pytest.raises(StepFailed, match=r"timeout of 0\.3s"):
            KINDS["run"].execute({"argv": ["sh", "-c", "sleep 30 & sleep 30"], "timeout": 0.3}, ctx)

    def test_missing_program_and_directory(self, tmp_path: Path) -> None:
        """A program that does not exist, or a cwd that does not, fails with words, not a traceback."""
        ctx = _context(tmp_path)
        with pytest.raises(StepFailed, match="cannot start 'no-such-program-xyz'"):
            KINDS["run"].execute({"argv": ["no-such-program-xyz"]}, ctx)
        with pytest.raises(StepFailed, match="does not exist"):
            KINDS["run"].execute({"argv": ["true"], "cwd": "nope"}, ctx)


@pytest.fixture(name="ci_server")
def _ci_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local CI endpoint: /trigger answers 201, /broken answers 500 with a message."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.append({"path": self.path, "body": json.loads(self.rfile.read(length) or b"null"),
                             "auth": self.headers.get("Authorization")})
            status, body = (201, b'{"build": 77}') if self.path == "/trigger" else (500, b"pipeline exploded")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


class TestHttp:
    def test_expected_status_met(self, tmp_path: Path, ci_server: tuple[str, list[dict[str, Any]]]) -> None:
        """A POST answered with the expected status succeeds, sending the body and headers."""
        url, received = ci_server
        ctx = _context(tmp_path)
        summary = KINDS["http"].execute({"url": f"{url}/trigger", "method": "POST", "expect_status": 201,
                                         "headers": {"Authorization": "Bearer ci-token"},
                                         "body": {"version": "1.4.2"}, "timeout": 5}, ctx)
        assert summary.endswith("answered 201")
        assert received == [{"path": "/trigger", "body": {"version": "1.4.2"}, "auth": "Bearer ci-token"}]

    def test_expected_status_not_met(self, tmp_path: Path, ci_server: tuple[str, list[dict[str, Any]]]) -> None:
        """Another status fails the step with the status and the start of the answer, never the headers."""
        url, _ = ci_server
        ctx = _context(tmp_path)
        with pytest.raises(StepFailed, match="answered 500, expected 200: pipeline exploded") as failed:
            KINDS["http"].execute({"url": f"{url}/broken", "headers": {"Authorization": "Bearer ci-token"}}, ctx)
        assert "ci-token" not in failed.value.message

    def test_unreachable_endpoint(self, tmp_path: Path) -> None:
        """Nobody listening: the step fails naming the URL."""
        ctx = _context(tmp_path)
        with pytest.raises(StepFailed, match=re.escape("POST http://127.0.0.1:9/x")):
            KINDS["http"].execute({"url": "http://127.0.0.1:9/x", "timeout": 2}, ctx)
