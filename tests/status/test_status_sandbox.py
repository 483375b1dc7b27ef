"""/svc status and /svc probe through the real dispatcher and kubernetes client, against the sandbox world."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bot.core.tone import Tone
from bot.render import slack
from bot.render.views import to_document
from bot.replies.base import Message, Outcome
from bot.replies.deploy import HistoryReply
from bot.replies.probe import ProbeReply
from bot.replies.status import StatusAllReply, StatusReply
from bot.runtime import build_runtime
from bot.terminal.shell import render_reply, run_once
from sandbox.stack import SandboxStack

Runtime = Any
ROOT = Path(__file__).resolve().parents[2]


def status(runtime: Runtime, text: str) -> Any:
    return runtime.dispatcher.execute(text, "U0DAVE", source="terminal", follow_runs=True)


class TestStatus:
    def test_payment_healthy_in_every_environment(self, runtime: Runtime) -> None:
        """`status payment` answers for dev, staging and prod, all healthy, 3/3 in prod."""
        reply = status(runtime, "status payment")
        assert isinstance(reply, StatusReply)
        assert [env.env for env in reply.envs] == ["dev", "staging", "prod"]
        assert all(env.tone is Tone.OK for env in reply.envs), [env.alerts for env in reply.envs]
        prod = reply.envs[2]
        assert (prod.ready, prod.desired, prod.image, prod.rollout and prod.rollout.phase) == (3, 3, "1.4.1",
                                                                                                "complete")
        text = render_reply(reply)
        assert "3/3" in text
        assert "1.4.1" in text
        message = slack.render(to_document(reply))
        assert message.public
        assert message.blocks[0]["type"] == "header"

    def test_payment_prod_detail_with_autoscaler(self, runtime: Runtime) -> None:
        """`status payment prod` lists the pods and the HPA's min, max and current replicas."""
        reply = status(runtime, "status payment prod")
        assert isinstance(reply, StatusReply)
        prod = reply.envs[0]
        assert len(prod.pods) == 3
        assert all(pod.ready for pod in prod.pods)
        assert prod.hpa is not None
        assert (prod.hpa.min_replicas, prod.hpa.max_replicas, prod.hpa.current) == (3, 10, 3)
        assert "3 running (min 3, max 10) · cpu 42% / 70%" in render_reply(reply)

    def test_inventory_crash_loop(self, runtime: Runtime) -> None:
        """inventory in prod shows the crash-looping pod with its restart count and last exit code."""
        reply = status(runtime, "status inventory prod")
        assert isinstance(reply, StatusReply)
        prod = reply.envs[0]
        crashing = [pod for pod in prod.pods if pod.crash_looping]
        assert len(crashing) == 1
        assert crashing[0].restarts >= 7
        assert (crashing[0].last_reason, crashing[0].last_exit_code) == ("Error", 1)
        assert prod.tone is Tone.BAD
        text = render_reply(reply)
        assert "CrashLoopBackOff (last: Error, exit 1)" in text
        assert f"{crashing[0].restarts} restarts" in text

    def test_orders_staging_not_ready_with_probe_events(self, runtime: Runtime) -> None:
        """orders in staging has no ready pod and its readiness-probe warnings are listed."""
        reply = status(runtime, "status orders staging")
        assert isinstance(reply, StatusReply)
        staging = reply.envs[0]
        assert (staging.ready, staging.desired) == (0, 2)
        assert "2 of 2 pods not ready" in staging.alerts
        assert any(event.message == "Readiness probe failed: HTTP probe failed with statuscode: 503"
                   for event in staging.events)

    def test_status_all_prod_problems_first_with_constant_requests(self, runtime: Runtime, stack: Any) -> None:
        """`status all prod` lists inventory before payment and lists each kind once (4 API requests)."""
        served = stack.kube.cluster("prod").requests
        before = len(served)
        reply = status(runtime, "status all prod")
        assert isinstance(reply, StatusAllReply)
        order = [row.service for row in reply.rows]
        assert order.index("inventory") < order.index("payment")
        assert reply.rows[0].service == "inventory"
        assert reply.api_requests == 4
        assert len(served) - before == 4
        assert "4 API requests" in render_reply(reply)

    def test_status_all_requests_do_not_grow_with_services(self, sandbox_catalog: dict[str, Any],
                                                           runtime_for: Callable[[dict[str, Any]], Runtime]) -> None:
        """One service or four, `status all` over three environments takes the same 12 requests."""
        everything = status(runtime_for(sandbox_catalog), "status all")
        just_payment = dict(sandbox_catalog, services={"payment": sandbox_catalog["services"]["payment"]})
        one = status(runtime_for(just_payment), "status all")
        assert isinstance(everything, StatusAllReply)
        assert isinstance(one, StatusAllReply)
        assert (len(everything.rows), len(one.rows)) == (4, 1)
        assert everything.api_requests == one.api_requests == 12

    def test_unknown_service_lists_known_ones(self, runtime: Runtime) -> None:
        """An unknown service is a user error (exit 1) naming the services the catalog knows."""
        out = io.StringIO()
        code = run_once(runtime.dispatcher, "status nope", "U0DAVE", out)
        assert code == 1
        assert "unknown service 'nope' (known: gateway, inventory, orders, payment)" in out.getvalue()

    def test_missing_deployment_in_one_environment(self, stack: Any, sandbox_catalog: dict[str, Any],
                                                   runtime_for: Callable[[dict[str, Any]], Runtime]) -> None:
        """A service not deployed in an environment says so in the project's words."""
        catalog = dict(sandbox_catalog)
        catalog["services"] = dict(catalog["services"], ghost={**catalog["services"]["payment"],
                                                               "deployment": "ghost-api"})
        runtime = runtime_for(catalog)
        reply = status(runtime, "status ghost prod")
        assert isinstance(reply, Message)
        assert reply.outcome is Outcome.USER_ERROR
        assert reply.title == "no deployment ghost-api in prod (namespace prod)"
        compact = status(runtime, "status ghost")
        assert isinstance(compact, StatusReply)
        assert compact.envs[0].problem == "no deployment ghost-api in dev (namespace dev)"


@pytest.fixture(name="prod_api")
def _prod_api(stack: Any) -> Any:
    api = k8s_config.new_client_from_config(config_file=str(stack.directory / "kubeconfig"),
                                            context="sandbox-prod-admin")
    yield k8s.CoordinationV1Api(api)
    api.close()


class TestDeployLock:
    def test_held_lock_is_shown_and_expired_is_not(self, runtime: Runtime, prod_api: Any) -> None:
        """A held, unexpired svcbot-deploy-<service> Lease shows in status; once expired it does not."""
        now = time.time()

        def micro(seconds: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(seconds))

        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "svcbot-deploy-payment", "namespace": "prod"},
                "spec": {"holderIdentity": "U0ALICE run r-42", "leaseDurationSeconds": 60,
                         "acquireTime": micro(now - 30), "renewTime": micro(now - 2)}}
        prod_api.create_namespaced_lease("prod", body)
        try:
            reply = status(runtime, "status payment")
            assert isinstance(reply, StatusReply)
            lock = reply.envs[2].lock
            assert lock is not None
            assert lock.holder == "U0ALICE run r-42"
            assert re.search(r"prod: deploy lock held by U0ALICE run r-42 for 3\ds, expires in \d\ds",
                             render_reply(reply))
            detail = render_reply(status(runtime, "status payment prod"))
            assert "held by U0ALICE run r-42" in detail
            prod_api.patch_namespaced_lease("svcbot-deploy-payment", "prod", {"spec": {"renewTime": micro(now - 600)}})
            expired = status(runtime, "status payment")
            assert isinstance(expired, StatusReply)
            assert expired.envs[2].lock is None
        finally:
            prod_api.delete_namespaced_lease("svcbot-deploy-payment", "prod")


class TestUnreachableCluster:
    def test_stopped_cluster_is_named_within_the_deadline(self, stack: Any, sandbox_catalog: dict[str, Any],
                                                           runtime_for: Callable[[dict[str, Any]], Runtime]) -> None:
        """With prod down, `status payment` answers in time: dev and staging healthy, prod unreachable."""
        catalog = dict(sandbox_catalog, settings={**sandbox_catalog["settings"], "command_deadline": "4s"})
        runtime = runtime_for(catalog)
        faults = stack.kube.cluster("prod").faults
        faults.set(mode="down")
        try:
            started = time.monotonic()
            reply = status(runtime, "status payment")
            all_reply = status(runtime, "status all")
            elapsed = time.monotonic() - started
        finally:
            faults.clear()
        assert elapsed < 8
        assert isinstance(reply, StatusReply)
        by_env = {env.env: env for env in reply.envs}
        assert by_env["dev"].tone is Tone.OK
        assert by_env["prod"].unreachable
        assert by_env["prod"].problem.startswith("cluster prod unreachable: connection refused")
        text = render_reply(reply)
        assert "prod" in text
        assert "cluster prod unreachable" in text
        assert isinstance(all_reply, StatusAllReply)
        assert [env for env, _ in all_reply.unreachable] == ["prod"]
        assert "prod: cluster prod unreachable" in render_reply(all_reply)

    def test_stalled_cluster_answers_before_the_deadline(self, stack: Any, sandbox_catalog: dict[str, Any],
                                                          runtime_for: Callable[[dict[str, Any]], Runtime]) -> None:
        """A cluster that accepts but never answers is shown as unreachable before the command deadline."""
        catalog = dict(sandbox_catalog, settings={**sandbox_catalog["settings"], "command_deadline": "2s"})
        runtime = runtime_for(catalog)
        faults = stack.kube.cluster("prod").faults
        faults.set(mode="stall", seconds=30)
        try:
            started = time.monotonic()
            reply = status(runtime, "status all")
            elapsed = time.monotonic() - started
        finally:
            faults.clear()
        # The verb's own answer, not the dispatcher's "no answer within the command deadline": the verb
        # answered before the deadline. (And so well before the 30 s stall, with room for a busy machine.)
        assert isinstance(reply, StatusAllReply)
        assert elapsed < 2.0 + 3.0
        assert [env for env, _ in reply.unreachable] == ["prod"]
        assert all(cell.tone is not Tone.UNKNOWN for row in reply.rows for cell in row.cells if cell.env == "dev")

    def test_forbidden_names_the_permission(self, stack: Any, runtime: Runtime) -> None:
        """RBAC refusing a list shows which permission is missing, for that environment only."""
        faults = stack.kube.cluster("prod").faults
        faults.set(mode="403", resource="replicasets")
        try:
            reply = status(runtime, "status payment")
        finally:
            faults.clear()
        assert isinstance(reply, StatusReply)
        prod = reply.envs[2]
        assert "verb=list resource=replicasets apiGroup=apps namespace=prod" in prod.problem
        assert reply.envs[0].tone is Tone.OK


class TestProbe:
    def test_orders_staging_degraded_by_the_database(self, runtime: Runtime) -> None:
        """`probe orders staging` is degraded with the 503 and the database's message."""
        reply = status(runtime, "probe orders staging")
        assert isinstance(reply, ProbeReply)
        assert reply.verdict.word == "degraded"
        assert "readiness 503" in reply.verdict.detail
        assert "database: dial tcp 10.0.3.7:5432: connect: connection refused" in reply.verdict.detail
        readiness = [check for pod in reply.pods for check in pod.checks if check.kind == "readiness"]
        assert {check.status for check in readiness} == {503}
        text = render_reply(reply)
        assert "degraded" in text
        assert "✗ database: dial tcp 10.0.3.7:5432: connect: connection refused" in text
        assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in text

    def test_gateway_misconfigurations(self, runtime: Runtime) -> None:
        """gateway is flagged for liveness on readiness, GOMAXPROCS=8 over 2 CPUs and no GOMEMLIMIT."""
        reply = status(runtime, "probe gateway prod")
        assert isinstance(reply, ProbeReply)
        titles = [finding.title for finding in reply.findings]
        assert "liveness probe on the readiness path /readyz" in titles
        assert "GOMAXPROCS=8 over CPU limit 2" in titles
        assert "GOMEMLIMIT unset with a memory limit of 1Gi" in titles
        assert reply.verdict.word == "healthy"

    def test_payment_healthy_with_dependency_checks(self, runtime: Runtime) -> None:
        """`probe payment` (prod by default) is healthy; the /readyz checks are read; no Go findings."""
        reply = status(runtime, "probe payment")
        assert isinstance(reply, ProbeReply)
        assert (reply.env, reply.verdict.word, len(reply.pods)) == ("prod", "healthy", 3)
        names = {dep.name for pod in reply.pods for check in pod.checks for dep in check.dependencies}
        assert names == {"database", "ledger"}
        assert all(check.latency > 0 for pod in reply.pods for check in pod.checks)
        assert not any("GOM" in finding.title for finding in reply.findings)

    def test_inventory_crash_looping_pod_does_not_answer(self, runtime: Runtime) -> None:
        """The crash-looping inventory pod does not answer; the others do: degraded, naming the pod."""
        reply = status(runtime, "probe inventory prod")
        assert isinstance(reply, ProbeReply)
        assert reply.verdict.word == "degraded"
        assert "CrashLoopBackOff (last: Error, exit 1): no answer" in reply.verdict.detail


class TestRolloutInFlight:
    def test_a_stuck_rollout_says_how_many_of_the_new_version_are_ready(self, runtime: Runtime, stack: Any) -> None:
        """payment 1.5.2 never becomes ready: the old pod keeps the deployment "ready", and status says that
        none of the new version is."""
        api = k8s_config.new_client_from_config(config_file=str(stack.directory / "kubeconfig"),
                                                context="sandbox-nonprod-admin")
        apps = k8s.AppsV1Api(api)
        before = apps.read_namespaced_deployment("payment-api", "dev")
        original = before.spec.template.spec.containers[0].image

        def set_image(image: str) -> None:
            apps.patch_namespaced_deployment("payment-api", "dev", {"spec": {"template": {"spec": {
                "containers": [{"name": before.spec.template.spec.containers[0].name, "image": image}]}}}})

        set_image("registry.example.com/payment:1.5.2")
        try:
            deadline = time.monotonic() + 30
            while True:
                reply = status(runtime, "status payment dev")
                assert isinstance(reply, StatusReply)
                env = reply.envs[0]
                if env.new_ready is not None and env.ready >= 1:
                    break
                assert time.monotonic() < deadline, "the rollout never showed old and new pods together"
                time.sleep(0.1)
            assert (env.image, env.new_ready) == ("1.5.2", 0)
            text = render_reply(reply)
            assert f"{env.ready}/{env.desired} ready (0 of the new version 1.5.2)" in text
            overview = status(runtime, "status payment")
            assert isinstance(overview, StatusReply)
            assert "(0 of 1.5.2)" in render_reply(overview)
        finally:
            set_image(original)
            deadline = time.monotonic() + 30
            while status(runtime, "status payment dev").envs[0].new_ready is not None:
                assert time.monotonic() < deadline, "the rollback to the original image did not finish"
                time.sleep(0.1)
            api.close()


class TestSeedWorldAgrees:
    def test_status_and_history_tell_the_same_rollout_time(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
        """In a fresh seed world, for every service and environment, status's last rollout is when history's
        current revision came (the seed world once said "179m ago" in one and "12d ago" in the other)."""
        with SandboxStack() as fresh:
            fresh.start(tmp_path / "world")
            assert fresh.directory is not None
            monkeypatch.setenv("KUBECONFIG", str(fresh.directory / "kubeconfig"))
            runtime = build_runtime(fresh.directory / "catalog.yaml")
            try:
                for service in ("payment", "orders", "gateway", "inventory"):
                    overview = status(runtime, f"status {service}")
                    assert isinstance(overview, StatusReply)
                    for env in overview.envs:
                        history = status(runtime, f"history {service} {env.env}")
                        assert isinstance(history, HistoryReply), render_reply(history)
                        [current] = [entry for entry in history.entries if entry.current]
                        assert env.last_rollout is not None
                        assert current.when is not None
                        assert abs(env.last_rollout - current.when) < 120, (service, env.env)
            finally:
                runtime.close()

    def test_the_orders_database_is_the_same_address_in_probe_and_logs(self) -> None:
        """The staging orders database that probe shows down is the address the seed logs fail to reach."""
        world = (ROOT / "sandbox" / "seed" / "world.yaml").read_text()
        logs = (ROOT / "sandbox" / "seed" / "logs.py").read_text()
        probed = set(re.findall(r"dial tcp (\d+\.\d+\.\d+\.\d+):5432", world))
        logged = set(re.findall(r"dial tcp (\d+\.\d+\.\d+\.\d+):5432", logs))
        assert probed
        assert logged
        assert logged <= probed
