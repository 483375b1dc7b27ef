"""Logs follow the cluster, checked with kubectl and Loki's documented HTTP API: every pod kubectl lists has
its lines in Loki under its own name (the seed's history too), a rollout's new pods log their start, versions
built to crash or leak log their panic or out-of-memory lines, the orders staging database failure keeps
logging, with wall-clock timestamps and gaps that follow the sandbox's time scale."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import requests
from standins_helpers import Kubectl, deployment_yaml

from sandbox.stack import SandboxStack

T = TypeVar("T")
NS = 1_000_000_000
TENANT = {"X-Scope-OrgID": "ops"}
ADMIN = "sandbox-prod-admin"


def loki_lines(stack: SandboxStack, logql: str, since: float) -> list[tuple[dict[str, str], int, str]]:
    answer = requests.get(stack.loki_url() + "/loki/api/v1/query_range", headers=TENANT, timeout=10, params={
        "query": logql, "start": str(int(since * NS)), "end": str(time.time_ns() + NS), "limit": "5000",
        "direction": "forward"})
    assert answer.status_code == 200, answer.text
    return [(item["stream"], int(ts), line) for item in answer.json()["data"]["result"]
            for ts, line in item["values"]]


def pods_of(stack: SandboxStack, namespace: str, app: str, since: float) -> set[str]:
    answer = requests.get(stack.loki_url() + "/loki/api/v1/label/pod/values", headers=TENANT, timeout=10,
                          params={"query": f'{{namespace="{namespace}", app="{app}"}}',
                                  "start": str(int(since * NS)), "end": str(time.time_ns() + NS)})
    assert answer.status_code == 200, answer.text
    return set(answer.json().get("data") or [])


def eventually(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll a state (Loki has no watch) until it holds; fail after `timeout` seconds, saying what."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def kubectl_pods(kubectl: Kubectl, namespace: str, selector: str) -> set[str]:
    context = ADMIN if namespace == "prod" else "sandbox-nonprod-admin"
    result = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json", context=context)
    assert result.returncode == 0, result.stderr
    return {p["metadata"]["name"] for p in json.loads(result.stdout)["items"]
            if not p["metadata"].get("deletionTimestamp")}


def test_every_pod_kubectl_lists_has_its_lines(stack: SandboxStack, kubectl: Kubectl) -> None:
    """The seeded services: each pod's name has lines in Loki (the seed history spread over the real pods)."""
    for namespace, app in (("prod", "payment"), ("staging", "orders"), ("prod", "inventory"), ("dev", "gateway")):
        listed = kubectl_pods(kubectl, namespace, f"app={app}")
        assert listed
        assert listed <= pods_of(stack, namespace, app, time.time() - 3 * 3600), (namespace, app)


def test_the_readme_history_is_still_there(stack: SandboxStack) -> None:
    """The seeded story: payment's errors in prod in the last 30 minutes, and the declined checkout's trace."""
    from sandbox.seed.logs import PROD_DECLINED_TRACE_ID  # noqa: PLC0415

    since = time.time() - 30 * 60
    assert loki_lines(stack, '{namespace="prod", app="orders"} |= "order failed: payment declined"', since)
    traced = loki_lines(stack, f'{{namespace="prod"}} |= "{PROD_DECLINED_TRACE_ID}"', since)
    assert {labels["app"] for labels, _ts, _line in traced} >= {"gateway", "orders", "payment"}


def test_a_rollout_new_pods_log_their_start(stack: SandboxStack, kubectl: Kubectl) -> None:
    name = f"logs-{uuid.uuid4().hex[:6]}"
    since = time.time() - 1
    assert kubectl("create", "-f", "-", "-n", "prod", context=ADMIN, stdin=deployment_yaml(name)).returncode == 0
    try:
        assert kubectl("rollout", "status", f"deployment/{name}", "-n", "prod", "--timeout=90s", context=ADMIN,
                       timeout=120).returncode == 0
        first = kubectl_pods(kubectl, "prod", f"app={name}")
        eventually(lambda: pods_of(stack, "prod", name, since) >= first, "the first pods' lines")
        result = kubectl("set", "image", f"deployment/{name}", "app=registry.example.com/payment:1.4.3",
                         "-n", "prod", context=ADMIN)
        assert result.returncode == 0, result.stderr
        assert kubectl("rollout", "status", f"deployment/{name}", "-n", "prod", "--timeout=90s", context=ADMIN,
                       timeout=120).returncode == 0
        now_listed = eventually(lambda: (p := kubectl_pods(kubectl, "prod", f"app={name}")) and not p & first and p,
                                "the old pods to go")

        def started() -> list[tuple[dict[str, str], int, str]] | None:
            found = loki_lines(stack, f'{{namespace="prod", app="{name}"}} | json | message="starting"', since)
            new = [f for f in found if json.loads(f[2]).get("version") == "1.4.3"]
            return new if {labels["pod"] for labels, _ts, _line in new} >= now_listed else None

        lines = eventually(started, "each new pod's start line")
        for labels, ts, line in lines:
            record = json.loads(line)
            assert record["pod"] == labels["pod"]
            assert (record["level"], record["service"]) == ("info", name)
            assert since * NS <= ts <= time.time_ns() + NS  # wall-clock time
        # the new pods' lines are under the names kubectl lists, and the logs kubectl reads say the same
        pod = sorted(now_listed)[0]
        kubectl_log = kubectl("logs", pod, "-n", "prod", context=ADMIN).stdout
        assert '"message":"starting"' in kubectl_log
        assert '"version":"1.4.3"' in kubectl_log
    finally:
        kubectl("delete", "deployment", name, "-n", "prod", "--ignore-not-found", context=ADMIN)


def test_crashing_and_leaking_versions_log_why(stack: SandboxStack, kubectl: Kubectl) -> None:
    since = time.time() - 1
    names = {"1.5.0": f"crash-{uuid.uuid4().hex[:6]}", "1.5.1": f"leak-{uuid.uuid4().hex[:6]}"}
    for version, name in names.items():
        manifest = deployment_yaml(name).replace("payment:1.4.2", f"payment:{version}")
        assert kubectl("create", "-f", "-", "-n", "prod", context=ADMIN, stdin=manifest).returncode == 0
    try:
        crash = eventually(lambda: loki_lines(
            stack, f'{{namespace="prod", app="{names["1.5.0"]}"}} |= "panic: runtime error"', since), "a panic")
        oom = eventually(lambda: loki_lines(
            stack, f'{{namespace="prod", app="{names["1.5.1"]}"}} |= "fatal error: runtime: out of memory"', since),
            "the out-of-memory line")
        assert crash[0][0]["pod"] in kubectl_pods(kubectl, "prod", f"app={names['1.5.0']}")
        assert oom[0][0]["pod"] in kubectl_pods(kubectl, "prod", f"app={names['1.5.1']}")
    finally:
        for name in names.values():
            kubectl("delete", "deployment", name, "-n", "prod", "--ignore-not-found", context=ADMIN)


def test_the_orders_staging_database_keeps_failing(stack: SandboxStack) -> None:
    """New error lines keep coming, ~20 simulated seconds apart per pod (time scale 0.05: about a second)."""
    since = time.time()
    query = '{namespace="staging", app="orders"} |= "database unreachable"'

    def two_per_pod() -> dict[str, list[int]] | None:
        by_pod: dict[str, list[int]] = {}
        for labels, ts, _line in loki_lines(stack, query, since):
            by_pod.setdefault(labels["pod"], []).append(ts)
        return by_pod if by_pod and all(len(v) >= 2 for v in by_pod.values()) else None

    by_pod = eventually(two_per_pod, "two database errors from each orders pod")
    scale = stack.kube.time_scale if stack.kube else 1.0
    for stamps in by_pod.values():
        gaps = [(b - a) / NS for a, b in itertools.pairwise(stamps)]
        assert all(20 * 0.75 * scale * 0.9 <= gap <= 20 * 1.25 * scale + 5 for gap in gaps), gaps
