"""Status and probe replies render as Slack blocks (header, fields, context, markers) and aligned text."""

from __future__ import annotations

from status_objects import NOW, deployment, event, hpa, lease, pod, replicaset, stamp

from bot.core.tone import Tone
from bot.insight.probes import DependencyCheck, Finding, ProbeSpec, Verdict
from bot.render import slack
from bot.render.status_view import progress_bar
from bot.render.views import to_document
from bot.replies.probe import HttpCheck, PodProbe, ProbeReply
from bot.replies.status import EnvStatus, ServiceRow, StatusAllReply, StatusReply
from bot.terminal.shell import render_reply
from commands.status import env_status


def rollout_in_flight() -> EnvStatus:
    d = deployment(replicas=5, updated=3, total=6, ready=4, available=4, revision=5,
                   image="registry.example.com/payment:v1.5.0")
    new = replicaset(d, "9f8e7", revision=5, replicas=3)
    old = replicaset(d, "7d9f8", revision=4, replicas=3, image="registry.example.com/payment:v1.4.2")
    pods = [pod(new, "a"), pod(new, "b", ready=False, created_ago=20), pod(old, "c")]
    events = [event("Pod", pods[1]["metadata"]["name"], "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503", count=3)]
    return env_status(env="prod", namespace="prod", cluster="prod", service="payment", deployment=d,
                      replicasets=[new, old], pods=pods, container="app", now=NOW, lease=lease("payment"),
                      events=events, hpas=[hpa("payment-api")], detailed=True)


def healthy(env: str) -> EnvStatus:
    d = deployment(namespace=env)
    rs = replicaset(d, "7d9f8", revision=4, replicas=3)
    return env_status(env=env, namespace=env, cluster="nonprod", service="payment", deployment=d,
                      replicasets=[rs], pods=[pod(rs, str(n)) for n in range(3)], container="app", now=NOW)


def test_progress_bar() -> None:
    """The bar fills in proportion, and an empty total is an empty bar."""
    assert progress_bar(3, 5, 5) == "▓▓▓░░"
    assert progress_bar(0, 0, 4) == "░░░░"


def test_detail_in_slack_and_terminal() -> None:
    """The detail view has a header, fields, a progress bar, a pod table and a context line."""
    reply = StatusReply(service="payment", envs=(rollout_in_flight(),), detailed=True, now=NOW, public=True)
    message = slack.render(to_document(reply))
    kinds = [block["type"] for block in message.blocks]
    assert kinds[0] == "header"
    assert "context" in kinds
    assert any("fields" in block for block in message.blocks)
    text = render_reply(reply)
    assert "v1.4.2 → v1.5.0" in text
    assert "▓▓▓▓▓▓░░░░ 3/5 updated" in text
    assert "held by U0ALICE@svcbot-7f9c for 2m, expires in 55s" in text
    assert "3 running (min 3, max 10) · cpu 45% / 70%" in text
    assert "Unhealthy ×3 on pod/payment-api-9f8e7-b" in text
    header = next(line for line in text.splitlines() if line.startswith("pod "))
    rows = [line for line in text.splitlines() if line.startswith("payment-api-")]
    assert all(row.index("Running") == header.index("status") for row in rows)  # aligned columns
    assert message.public


def test_compact_marks_each_environment() -> None:
    """The compact view shows one row per environment with a marker, and alerts prefixed by environment."""
    reply = StatusReply(service="payment", envs=(healthy("staging"), rollout_in_flight()), detailed=False,
                        now=NOW, public=True)
    text = render_reply(reply)
    lines = text.splitlines()
    assert any(line.startswith("✓") and "staging" in line and "3/3" in line for line in lines)
    assert any(line.startswith("!") and " prod " in line and "progressing: 3 of 5 updated" in line for line in lines)
    assert "! prod: 1 of 3 pods not ready" in lines
    assert slack.render(to_document(reply)).text.startswith("payment: staging 3/3 ready, prod 4/5 ready")


def test_unreachable_environment_is_named() -> None:
    """An environment whose cluster did not answer is shown as such beside the others."""
    down = EnvStatus(env="prod", namespace="prod", cluster="prod", deployment="payment-api", tone=Tone.UNKNOWN,
                     problem="cluster prod unreachable: connection refused (failing since 10:00:00 UTC)",
                     unreachable=True)
    reply = StatusReply(service="payment", envs=(healthy("dev"), down), detailed=False, now=NOW, public=True)
    text = render_reply(reply)
    assert "? prod" in " ".join(text.split()) or "?  prod" in text
    assert "cluster prod unreachable: connection refused" in text
    assert "prod unreachable" in slack.render(to_document(reply)).text


def test_status_all_table() -> None:
    """`status all` is a table with problems first, then the problems' details and the request count."""
    reply = StatusAllReply(envs=("prod",), rows=(ServiceRow("payment", (rollout_in_flight(),)),
                                                 ServiceRow("orders", (healthy("prod"),))),
                           unreachable=(), now=NOW, api_requests=4, public=True)
    text = render_reply(reply)
    assert text.index("payment") < text.index("orders")
    assert "4 API requests" in text
    blocks = slack.render(to_document(reply)).blocks
    assert blocks[0]["type"] == "header"
    assert blocks[-1]["type"] == "context"


def test_probe_view() -> None:
    """The probe view leads with the verdict, shows per-pod answers, dependency checks and findings."""
    failing = HttpCheck(kind="readiness", path="/readyz", port=8080, status=503, latency=0.012,
                        excerpt='{"status":"fail"}',
                        dependencies=(DependencyCheck("database", False, "connection refused"),))
    live = HttpCheck(kind="liveness", path="/healthz", port=8080, status=200, latency=0.004, excerpt='{"status":"ok"}')
    reply = ProbeReply(
        service="orders", env="staging", namespace="staging", deployment="orders", container="app",
        verdict=Verdict("degraded", "1 of 1 pods failing: readiness 503 (database: connection refused)", Tone.WARN),
        pods=(PodProbe(pod="orders-1", status="Running", ready=False, restarts=0, checks=(live, failing)),),
        probes=(ProbeSpec(kind="liveness", handler="http", path="/healthz", port=8080),),
        findings=(Finding(Tone.WARN, "no readiness probe", "pods get traffic too early"),),
        events=(), now=NOW, pods_total=1, public=True)
    text = render_reply(reply)
    assert text.splitlines()[2].startswith("! degraded: 1 of 1 pods failing: readiness 503 (database: connection")
    assert "503 12ms ✗" in text
    assert "200 4ms" in text
    assert "✗ database: connection refused" in text
    assert "! no readiness probe: pods get traffic too early" in text
    message = slack.render(to_document(reply))
    assert message.blocks[0]["type"] == "header"
    assert ":large_yellow_circle:" in message.blocks[1]["text"]["text"]


def test_recent_restart_uses_finished_at() -> None:
    """The restart column shows how long ago the last termination finished."""
    d = deployment()
    rs = replicaset(d, "7d9f8", revision=4, replicas=1)
    restarted = pod(rs, "r", restarts=2, last_terminated={"reason": "Error", "exitCode": 1, "finishedAt": stamp(240)})
    status = env_status(env="prod", namespace="prod", cluster="prod", service="payment", deployment=d,
                        replicasets=[rs], pods=[restarted], container="app", now=NOW, detailed=True, events=[],
                        hpas=[])
    text = render_reply(StatusReply(service="payment", envs=(status,), detailed=True, now=NOW, public=True))
    assert "2 (4m ago)" in text
    assert "restarted 4m ago: payment-api-7d9f8-r (Error)" in text
