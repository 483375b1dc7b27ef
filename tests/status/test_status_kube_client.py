"""bot/clients/kube/ over HTTP: plain JSON back, errors in the project's words, retries, timeouts, no leaks."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_objects import deployment
from status_scripted import ScriptedApi

from bot.clients.kube import KubeClient
from bot.core.catalog import Cluster
from bot.core.errors import BackendUnavailable, BotError, Conflict, DeadlineExceeded, Forbidden, NotFound, UserError


def prod_client() -> KubeClient:
    return KubeClient("prod", Cluster(context="prod-ctx"), {"prod": "prod"})


@pytest.mark.usefixtures("kubeconfig")
class TestReads:
    def test_json_as_the_api_sent_it(self, scripted_api: ScriptedApi) -> None:
        """read_deployment returns the API's JSON unchanged: camelCase keys, unknown fields kept."""
        sent = deployment()
        sent["status"]["futureField"] = {"x": 1}
        scripted_api.answer_json(sent)
        got = prod_client().read_deployment("prod", "payment-api")
        assert got == sent
        assert scripted_api.requests == ["/apis/apps/v1/namespaces/prod/deployments/payment-api"]

    def test_lists_return_items_and_pass_selectors(self, scripted_api: ScriptedApi) -> None:
        """Lists return their items; label and field selectors go on the query string."""
        scripted_api.answer_json({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{"a": 1}]})
        scripted_api.answer_json({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []})
        client = prod_client()
        assert client.list_pods("prod", "app=payment") == [{"a": 1}]
        assert client.list_events("prod", "type=Warning") == []
        assert scripted_api.requests[0] == "/api/v1/namespaces/prod/pods?labelSelector=app%3Dpayment"
        assert scripted_api.requests[1] == "/api/v1/namespaces/prod/events?fieldSelector=type%3DWarning"

    def test_one_api_client_shared_by_threads(self, scripted_api: ScriptedApi) -> None:
        """Twenty threads share the client's one connection pool and all get their answer."""
        scripted_api.default = (200, {"Content-Type": "application/json"}, json.dumps(deployment()).encode())
        client = prod_client()
        results: list[object] = []
        threads = [threading.Thread(target=lambda: results.append(client.read_deployment("prod", "payment-api")))
                   for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(results) == 20
        assert client.request_count == 20


@pytest.mark.usefixtures("kubeconfig")
class TestErrors:
    def test_not_found_names_the_object_and_environment(self, scripted_api: ScriptedApi) -> None:
        """A 404 becomes NotFound in words: which deployment, which environment and namespace."""
        scripted_api.answer_status(404, "NotFound", 'deployments.apps "payment-api" not found')
        with pytest.raises(NotFound) as caught:
            prod_client().read_deployment("prod", "payment-api")
        assert caught.value.message == "no deployment payment-api in prod (namespace prod)"

    def test_forbidden_names_the_missing_permission(self, scripted_api: ScriptedApi) -> None:
        """A 403 becomes Forbidden naming the RBAC verb, resource, API group and namespace."""
        scripted_api.answer_status(403, "Forbidden", 'pods is forbidden: User "svcbot" cannot list resource "pods"')
        with pytest.raises(Forbidden) as caught:
            prod_client().list_pods("prod")
        message = caught.value.message
        assert "verb=list resource=pods" in message
        assert "namespace=prod" in message
        assert "cluster prod" in message

    def test_conflict_and_invalid(self, scripted_api: ScriptedApi) -> None:
        """409 is Conflict and 422 a user error, both with the server's message."""
        scripted_api.answer_status(409, "Conflict", "the object has been modified")
        with pytest.raises(Conflict, match="the object has been modified"):
            prod_client().read_lease("prod", "svcbot-deploy-payment")
        scripted_api.answer_status(422, "Invalid", "spec.replicas: Invalid value: -1")
        with pytest.raises(UserError, match="Invalid value"):
            prod_client().read_config_map("prod", "payment-config")

    def test_transient_errors_are_retried(self, scripted_api: ScriptedApi) -> None:
        """Two 503s then an answer: the idempotent read succeeds on the third attempt."""
        scripted_api.answer_status(503, "ServiceUnavailable", "etcd leader changed")
        scripted_api.answer_status(503, "ServiceUnavailable", "etcd leader changed")
        scripted_api.answer_json(deployment())
        client = prod_client()
        assert client.read_deployment("prod", "payment-api")["metadata"]["name"] == "payment-api"
        assert client.request_count == 3

    def test_server_error_after_retries(self, scripted_api: ScriptedApi) -> None:
        """A server error that persists is BackendUnavailable with the status and the server's words."""
        scripted_api.default = (500, {"Content-Type": "application/json"}, json.dumps(
            {"kind": "Status", "apiVersion": "v1", "message": "internal error: boom", "code": 500}).encode())
        client = prod_client()
        with pytest.raises(BackendUnavailable, match=r"answered 500 to list replicasets\.apps in prod"):
            client.list_replicasets("prod")
        assert client.request_count == 3

    def test_unreachable_cluster_names_cluster_and_since(self) -> None:
        """A closed port is BackendUnavailable naming the cluster, the reason and since when it fails."""
        client = KubeClient("prod", Cluster(context="dead-ctx"))
        with pytest.raises(BackendUnavailable) as caught:
            client.read_deployment("prod", "payment-api")
        assert caught.value.message.startswith("cluster prod unreachable: connection refused (failing since ")
        first_since = client.failing_since
        with pytest.raises(BackendUnavailable):
            client.list_pods("prod")
        assert client.failing_since == first_since

    def test_stalled_server_answers_by_the_deadline(self, scripted_api: ScriptedApi) -> None:
        """A server that does not answer cannot hold a call past the caller's deadline."""
        released = threading.Event()

        def stall(_path: str) -> tuple[int, dict[str, str], bytes]:
            released.wait(60)  # answers only once the test is over
            return 200, {}, b"{}"

        scripted_api.answers.extend([stall] * 3)
        started = time.monotonic()
        try:
            with pytest.raises((BackendUnavailable, DeadlineExceeded)):
                prod_client().read_deployment("prod", "payment-api", deadline=time.monotonic() + 0.4)
            # The call gave up on its own (the server never answered it): at the deadline, with room for a
            # busy machine, and far from the minute the server would have held it.
            assert time.monotonic() - started < 10.0
        finally:
            released.set()

    def test_unknown_context(self, tmp_path: Path) -> None:
        """A kubeconfig context that does not exist is BackendUnavailable naming the context."""
        with pytest.raises(BackendUnavailable, match="kubeconfig context 'nope'"):
            KubeClient("prod", Cluster(context="nope")).read_deployment("prod", "x")

    def test_dropped_connection(self, scripted_api: ScriptedApi) -> None:
        """A connection closed without an answer is BackendUnavailable, not a urllib3 error."""
        scripted_api.default = (0, {}, b"")
        with pytest.raises(BackendUnavailable, match="cluster prod unreachable"):
            prod_client().list_hpas("prod")


@pytest.mark.usefixtures("kubeconfig")
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.integers(min_value=200, max_value=599),
       body=st.one_of(st.binary(max_size=64), st.just(b"[]"), st.just(b'{"kind":"Status","apiVersion":"v1"}')))
def test_no_library_exception_escapes(scripted_api: ScriptedApi, status: int, body: bytes) -> None:
    """Whatever status and body the server sends, only a dict or a bot error comes out."""
    scripted_api.answers[:] = [(status, {"Content-Type": "application/json"}, body)] * 3
    try:
        result = prod_client().list_leases("prod")
    except BotError:
        return
    assert isinstance(result, list)


@pytest.mark.usefixtures("kubeconfig")
class TestPodProxy:
    def test_json_body_is_bytes_not_a_repr(self, scripted_api: ScriptedApi) -> None:
        """A JSON health body comes back byte for byte (not as a Python repr), with status and latency."""
        scripted_api.answer_json({"status": "ok", "db": True})
        answer = prod_client().pod_http_get("prod", "payment-api-7d9f8-x1", 8080, "/readyz")
        assert (answer.status, json.loads(answer.body), answer.ok) == (200, {"status": "ok", "db": True}, True)
        assert answer.latency > 0
        assert scripted_api.requests[0].startswith("/api/v1/namespaces/prod/pods/payment-api-7d9f8-x1")
        assert scripted_api.requests[0].endswith("/proxy/readyz")

    def test_pod_error_status_is_an_answer(self, scripted_api: ScriptedApi) -> None:
        """The pod's own 503 is returned as an answer with its body, not raised."""
        scripted_api.answer_json({"status": "fail", "checks": {"database": "connection refused"}}, status=503)
        answer = prod_client().pod_http_get("prod", "orders-1", 8080, "/readyz")
        assert answer.status == 503
        assert not answer.ok
        assert b"connection refused" in answer.body

    def test_unreachable_pod(self, scripted_api: ScriptedApi) -> None:
        """The API server's 'error trying to reach service' means the pod did not answer: status None."""
        scripted_api.answer_status(503, "ServiceUnavailable", "error trying to reach service: dial tcp: refused")
        answer = prod_client().pod_http_get("prod", "orders-1", 8080, "/healthz")
        assert answer.status is None
        assert "error trying to reach service" in answer.error

    def test_missing_pod_is_not_found(self, scripted_api: ScriptedApi) -> None:
        """A pod that does not exist is NotFound, not an answer."""
        scripted_api.answer_status(404, "NotFound", 'pods "orders-1" not found')
        with pytest.raises(NotFound, match="no pod orders-1 in prod"):
            prod_client().pod_http_get("prod", "orders-1", 8080, "/healthz")
