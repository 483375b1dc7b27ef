"""/svc metrics, status with numbers and the verify step through the real dispatcher, against the sandbox's
Kubernetes and its Prometheus stand-in over HTTP; a Prometheus that is down, slow or answers an error."""

from __future__ import annotations

import copy
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from metrics_helpers import FixedPrometheus, run

from bot.render import slack as slack_render
from bot.render.views import to_document
from bot.replies.approvals import ApprovalMessageReply
from bot.replies.base import Message, Outcome
from bot.replies.deploy import DeployPendingReply, DeployRunReply
from bot.replies.metrics import MetricsReply
from bot.replies.status import StatusAllReply, StatusReply
from bot.slack.approval_message import ApprovalMessages
from bot.terminal.shell import render_reply
from sandbox.stack import SandboxStack

PNG = b"\x89PNG\r\n\x1a\n"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_prometheus(catalog: dict[str, Any], url: str, **extra: Any) -> dict[str, Any]:
    changed = copy.deepcopy(catalog)
    changed["prometheus"] = {**changed["prometheus"], "url": url, **extra}
    return changed


class TestMetrics:
    def test_payment_prod_numbers_sparklines_and_chart(self, runtime: Any, tmp_path: Path) -> None:
        """Every panel has data; the terminal prints sparklines and writes the PNG to a file it names."""
        reply = run(runtime, "metrics payment prod --since 15m")
        assert isinstance(reply, MetricsReply), getattr(reply, "title", reply)
        panels = {panel.key: panel for panel in reply.panels}
        assert all(panel.series for panel in panels.values()), [(p.key, p.missing) for p in reply.panels]
        assert 0 <= panels["errors"].series[0].points[-1][1] < 5  # percent; a normal version
        assert [series.name for series in panels["latency"].series] == ["p50", "p99"]
        assert panels["cpu"].limits
        assert panels["memory"].limits
        assert reply.restarts == 0
        text = render_reply(reply)
        assert "p99" in text
        assert any(char in text for char in "▁▂▃▄▅▆▇█")
        chart = Path(text.split("(chart: ", 1)[1].split(")", 1)[0])
        assert chart.parent == tmp_path
        assert chart.read_bytes().startswith(PNG)

    def test_unknown_metric_names_say_which(self, sandbox_catalog: dict[str, Any],
                                            runtime_for: Callable[[dict[str, Any]], Any]) -> None:
        """A service that exposes no such metric: the panel says which metric, the others still answer."""
        catalog = copy.deepcopy(sandbox_catalog)
        catalog["services"]["payment"]["metrics"] = {"goroutines": "no_such_goroutines"}
        reply = run(runtime_for(catalog), "metrics payment prod --since 10m")
        assert isinstance(reply, MetricsReply)
        panels = {panel.key: panel for panel in reply.panels}
        assert "no_such_goroutines" in panels["goroutines"].missing
        assert panels["requests"].series

    @pytest.mark.parametrize(("text", "words"), [
        ("metrics payment prod --since 30s", "shorter than 2m"),
        ("metrics payment prod --since 30d", "longer than 7d"),
        ("metrics nosuch prod", "unknown service"),
    ])
    def test_bad_input(self, runtime: Any, text: str, words: str) -> None:
        reply = run(runtime, text)
        assert isinstance(reply, Message)
        assert reply.outcome is Outcome.USER_ERROR
        assert words in reply.title + " ".join(reply.lines)

    def test_prometheus_down(self, sandbox_catalog: dict[str, Any],
                             runtime_for: Callable[[dict[str, Any]], Any]) -> None:
        catalog = with_prometheus(sandbox_catalog, f"http://127.0.0.1:{closed_port()}")
        reply = run(runtime_for(catalog), "metrics payment prod")
        assert isinstance(reply, Message)
        assert reply.outcome is not Outcome.INTERNAL_ERROR or "internal error" not in reply.title
        assert "cannot reach Prometheus" in reply.title + " ".join(reply.lines)

    def test_prometheus_slow(self, sandbox_catalog: dict[str, Any], runtime_for: Callable[[dict[str, Any]], Any],
                             fixed_prometheus: Callable[..., FixedPrometheus]) -> None:
        server = fixed_prometheus(200, {"status": "success", "data": {"resultType": "matrix", "result": []}},
                                  delay=30)
        catalog = with_prometheus(sandbox_catalog, server.url, timeout="1s")
        reply = run(runtime_for(catalog), "metrics payment prod")
        assert isinstance(reply, Message)
        assert "did not answer within" in reply.title + " ".join(reply.lines)

    def test_prometheus_error_answer(self, sandbox_catalog: dict[str, Any],
                                     runtime_for: Callable[[dict[str, Any]], Any],
                                     fixed_prometheus: Callable[..., FixedPrometheus]) -> None:
        server = fixed_prometheus(422, {"status": "error", "errorType": "execution",
                                        "error": "query processing would load too many samples"})
        reply = run(runtime_for(with_prometheus(sandbox_catalog, server.url)), "metrics payment prod")
        assert isinstance(reply, Message)
        said = reply.title + " ".join(reply.lines)
        assert "execution: query processing would load too many samples" in said

    def test_ephemeral_answer_says_where_the_chart_goes(self, runtime: Any) -> None:
        reply = run(runtime, "metrics payment prod --since 10m")
        assert isinstance(reply, MetricsReply)
        private = copy.copy(reply)
        object.__setattr__(private, "public", False)
        message = slack_render.render(to_document(private))
        assert "ephemeral answer cannot carry an upload" in str(message.blocks)
        assert isinstance(message.attachment.content if message.attachment else None, bytes)


class TestStatusNumbers:
    def test_status_all_prod_one_query(self, runtime: Any, stack: SandboxStack) -> None:
        before = len(stack.prometheus.requests)
        reply = run(runtime, "status all prod")
        assert isinstance(reply, StatusAllReply)
        assert reply.prometheus_queries == 1
        assert len(stack.prometheus.requests) - before == 1
        payment = next(row for row in reply.rows if row.service == "payment").cells[0]
        assert payment.traffic is not None
        assert payment.traffic.rate > 0
        assert "% errors" in render_reply(reply)

    def test_status_service_one_query_per_environment(self, runtime: Any, stack: SandboxStack) -> None:
        before = len(stack.prometheus.requests)
        reply = run(runtime, "status payment")
        assert isinstance(reply, StatusReply)
        assert len(stack.prometheus.requests) - before == len(reply.envs)
        assert all(env.traffic is not None for env in reply.envs), [env.traffic_problem for env in reply.envs]

    def test_status_says_why_without_numbers(self, sandbox_catalog: dict[str, Any],
                                             runtime_for: Callable[[dict[str, Any]], Any]) -> None:
        """Prometheus down: status still answers from Kubernetes, and says why the numbers are missing."""
        catalog = with_prometheus(sandbox_catalog, f"http://127.0.0.1:{closed_port()}")
        reply = run(runtime_for(catalog), "status all prod")
        assert isinstance(reply, StatusAllReply)
        assert reply.rows
        assert reply.outcome is Outcome.OK
        assert "no traffic numbers (cannot reach Prometheus" in render_reply(reply)


@pytest.fixture(name="fast_verify")
def _fast_verify(sandbox_catalog: dict[str, Any], runtime_for: Callable[[dict[str, Any]], Any]) -> Any:
    """The sandbox catalog with a quicker verify step (the test stand-in scrapes every second)."""
    catalog = copy.deepcopy(sandbox_catalog)
    for target in catalog["pipelines"]["standard"]["targets"].values():
        for step in target.get("steps", []):
            if "verify" in step:
                step["verify"].update(window="8s", interval="1s", duration="3s", failures=2)
    return runtime_for(catalog)


class TestVerify:
    def test_erroring_version_fails_verify_and_rolls_back(self, fast_verify: Any) -> None:
        """payment 1.5.4 answers ~5 % errors: verify fails naming the check, and the deploy rolls back."""
        reply = run(fast_verify, "deploy payment staging 1.5.4")
        assert isinstance(reply, DeployRunReply), reply
        assert reply.state == "ROLLED_BACK", (reply.failure, [(s.kind, s.state, s.error) for s in reply.steps])
        verify = reply.failed_step
        assert verify is not None
        assert verify.kind == "verify"
        # Text from the store is defused for Slack (a zero-width space after `<`): compare without it.
        assert "error_rate <= 1%" in verify.error.replace("\u200b", "")
        assert "baseline" in verify.output_tail
        assert "verify 1/" in verify.output_tail
        assert "error_rate <= 1%" in render_reply(reply).replace("\u200b", "")

    def test_normal_version_passes_verify(self, fast_verify: Any) -> None:
        """payment 1.4.3 answers like 1.4.2: every check passes and the deploy succeeds."""
        reply = run(fast_verify, "deploy payment staging 1.4.3")
        assert isinstance(reply, DeployRunReply), reply
        assert reply.state == "SUCCEEDED", (reply.failure, [(s.kind, s.state, s.error) for s in reply.steps])
        verify = next(step for step in reply.steps if step.kind == "verify")
        assert "FAIL" not in verify.output_tail
        assert "verify 3/3" in verify.output_tail


class TestApprovalMessage:
    def test_shows_the_current_versions_numbers(self, runtime: Any) -> None:
        """The approver sees the current version's error rate and p99 (the baseline) in the approval message."""
        pending = run(runtime, "deploy payment prod 1.4.2")
        assert isinstance(pending, DeployPendingReply), pending
        message = ApprovalMessages(runtime.deploys, poster=None).first(pending)  # type: ignore[arg-type]
        assert isinstance(message, ApprovalMessageReply)
        assert message.current_traffic.startswith("Current version in prod (last 5m): ")
        assert "% errors · p99 " in message.current_traffic
        assert message.current_traffic in str(slack_render.render(to_document(message)).blocks)
        run(runtime, f"cancel {pending.request_id}")


def test_a_slow_prometheus_does_not_hold_status(sandbox_catalog: dict[str, Any],
                                                runtime_for: Callable[[dict[str, Any]], Any],
                                                fixed_prometheus: Callable[..., FixedPrometheus]) -> None:
    """Status waits a few seconds at most for its numbers, then answers from Kubernetes and says why."""
    server = fixed_prometheus(200, {"status": "success", "data": {"resultType": "vector", "result": []}}, delay=30)
    runtime = runtime_for(with_prometheus(sandbox_catalog, server.url, timeout="10s"))
    started = time.monotonic()
    reply = run(runtime, "status all prod")
    elapsed = time.monotonic() - started
    assert isinstance(reply, StatusAllReply)
    assert reply.outcome is Outcome.OK
    assert "no traffic numbers" in render_reply(reply)
    assert elapsed < 10  # not the Prometheus timeout, nor the command deadline (20 s)
