"""The official Python client (v37, strict models) against the sandbox: the REST semantics svcbot relies on."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.request
from typing import Any

import pytest
from kube_helpers import deployment, http, job, unique, wait_for
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

CONFLICT = "the object has been modified; please apply your changes to the latest version and try again"


def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def status_of(err: ApiException) -> dict[str, Any]:
    body = json.loads(err.body)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    return body


# ---------------------------------------------------------------------------------------------------
# reading


def test_every_kind_deserializes_into_the_strict_models(nonprod: client.ApiClient, prod: client.ApiClient) -> None:
    """Lists and gets of every served kind come back schema-complete (the v37 models raise otherwise)."""
    for api in (nonprod, prod):
        c, a = core(api), apps(api)
        batch, coord, hpa = client.BatchV1Api(api), client.CoordinationV1Api(api), client.AutoscalingV2Api(api)
        assert c.list_namespace().items
        pods = c.list_pod_for_all_namespaces().items
        assert pods
        assert all(p.status.container_statuses for p in pods if p.spec.node_name)
        assert c.list_event_for_all_namespaces().items is not None
        assert c.list_config_map_for_all_namespaces().items
        assert c.list_service_for_all_namespaces().items
        deploys = a.list_deployment_for_all_namespaces().items
        assert all(d.spec.template.spec.containers for d in deploys)
        assert a.list_replica_set_for_all_namespaces().items
        batch.list_job_for_all_namespaces()
        coord.list_lease_for_all_namespaces()
        hpa.list_horizontal_pod_autoscaler_for_all_namespaces()
        d = deploys[0]
        got = a.read_namespaced_deployment(d.metadata.name, d.metadata.namespace)
        assert got.metadata.uid == d.metadata.uid
        assert got.kind == "Deployment"
        assert got.api_version == "apps/v1"
        a.read_namespaced_deployment_status(d.metadata.name, d.metadata.namespace)
        scale = a.read_namespaced_deployment_scale(d.metadata.name, d.metadata.namespace)
        assert scale.spec.replicas == d.spec.replicas


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=orders", {"orders"}),
    ("app==orders", {"orders"}),
    ("app!=orders", {"payment", "gateway", "inventory"}),
    ("app in (orders,gateway)", {"orders", "gateway"}),
    ("app notin (orders, gateway)", {"payment", "inventory"}),
    ("app", {"payment", "orders", "gateway", "inventory"}),
    ("!app", set()),
    ("app,app.kubernetes.io/part-of=shop,app notin (payment)", {"orders", "gateway", "inventory"}),
])
def test_label_selectors(nonprod: client.ApiClient, selector: str, expected: set[str]) -> None:
    """=, ==, !=, in, notin, exists and !exists select like the real server."""
    pods = core(nonprod).list_namespaced_pod("staging", label_selector=selector).items
    assert {p.metadata.labels["app"] for p in pods} == expected


def test_field_selectors(nonprod: client.ApiClient) -> None:
    """metadata.name / metadata.namespace everywhere; involvedObject.*, reason and type on events."""
    c = core(nonprod)
    assert [d.metadata.name for d in apps(nonprod).list_namespaced_deployment(
        "staging", field_selector="metadata.name=orders").items] == ["orders"]
    assert {p.metadata.namespace for p in c.list_pod_for_all_namespaces(
        field_selector="metadata.namespace=dev").items} == {"dev"}
    pod = c.list_namespaced_pod("staging", label_selector="app=orders").items[0].metadata.name
    events = c.list_namespaced_event(
        "staging", field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod},reason=Unhealthy,type=Warning")
    assert events.items
    assert all(e.involved_object.name == pod for e in events.items)
    assert events.items[0].message == "Readiness probe failed: HTTP probe failed with statuscode: 503"
    assert events.items[0].count > 1
    assert events.items[0].involved_object.field_path == "spec.containers{app}"
    assert not c.list_namespaced_event("staging", field_selector=f"involvedObject.name!={pod},"
                                                                 f"involvedObject.name={pod}").items
    with pytest.raises(ApiException) as err:
        c.list_namespaced_pod("staging", field_selector="spec.nosuch=1")
    assert err.value.status == 400
    assert status_of(err.value)["reason"] == "BadRequest"
    with pytest.raises(ApiException) as err:
        c.list_namespaced_pod("staging", label_selector="app in (a")
    assert err.value.status == 400


def test_pagination_with_limit_and_continue(nonprod: client.ApiClient) -> None:
    """limit/continue pages through a list without losing or repeating items."""
    c = core(nonprod)
    everything = [p.metadata.name for p in c.list_pod_for_all_namespaces().items]
    seen: list[str] = []
    token = None
    while True:
        page = c.list_pod_for_all_namespaces(limit=3, _continue=token)
        seen += [p.metadata.name for p in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == everything


# ---------------------------------------------------------------------------------------------------
# writing


def test_bookkeeping_and_server_defaults(nonprod: client.ApiClient) -> None:
    """uid, creationTimestamp, resourceVersion bumped on every write, generation only on spec changes, defaults."""
    a = apps(nonprod)
    name = unique("books")
    body = deployment(name, "registry.example.com/payment:latest", replicas=1)
    created = a.create_namespaced_deployment("dev", body)
    assert created.metadata.uid
    assert created.metadata.creation_timestamp
    assert created.metadata.generation == 1
    spec = created.spec
    assert spec.strategy.type == "RollingUpdate"
    assert spec.strategy.rolling_update.max_surge == "25%"
    assert spec.strategy.rolling_update.max_unavailable == "25%"
    assert spec.progress_deadline_seconds == 600
    assert spec.revision_history_limit == 10
    container = spec.template.spec.containers[0]
    assert container.image_pull_policy == "Always"  # :latest
    assert container.termination_message_path == "/dev/termination-log"
    assert spec.template.spec.restart_policy == "Always"
    assert spec.template.spec.dns_policy == "ClusterFirst"
    rv1 = int(created.metadata.resource_version)
    labelled = a.patch_namespaced_deployment(name, "dev", {"metadata": {"labels": {"team": "x"}}})
    assert int(labelled.metadata.resource_version) > rv1
    assert labelled.metadata.generation == 1
    scaled = a.patch_namespaced_deployment(name, "dev", {"spec": {"replicas": 2}})
    assert scaled.metadata.generation == 2
    c = core(nonprod)
    cm = c.create_namespaced_config_map("dev", {"metadata": {"name": name}, "data": {"k": "v"}})
    same = c.patch_namespaced_config_map(name, "dev", {"data": {"k": "v"}})
    assert same.metadata.resource_version == cm.metadata.resource_version  # a no-op is not a write
    assert cm.metadata.generation is None  # configmaps have no generation
    c.delete_namespaced_config_map(name, "dev")
    pinned = deployment(unique("pinned"), "registry.example.com/payment:1.4.1", replicas=1)
    got = a.create_namespaced_deployment("dev", pinned)
    assert got.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    wait_for(lambda: (a.read_namespaced_deployment(name, "dev").status.observed_generation or 0) >= 2,
             what="observedGeneration to catch up")
    a.delete_namespaced_deployment(name, "dev")
    a.delete_namespaced_deployment(got.metadata.name, "dev")


def test_strategic_merge_patch_merges_lists_by_key(nonprod: client.ApiClient) -> None:
    """A dict body is a strategic-merge patch: containers and env merge by name, the sidecar stays."""
    a = apps(nonprod)
    name = unique("smp")
    a.create_namespaced_deployment("dev", deployment(name, "registry.example.com/payment:1.4.1", sidecar=True))
    patched = a.patch_namespaced_deployment(name, "dev", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.example.com/payment:1.4.2",
         "env": [{"name": "B", "value": "changed"}, {"name": "C", "value": "3"}]}]}}}})
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"app", "sidecar"}
    assert containers["app"].image == "registry.example.com/payment:1.4.2"
    assert [(e.name, e.value) for e in containers["app"].env] == [("A", "1"), ("B", "changed"), ("C", "3")]
    assert containers["app"].ports[0].container_port == 8080
    # $patch: delete removes one element; $setElementOrder orders them
    patched = a.patch_namespaced_deployment(name, "dev", {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
        "containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}}}})
    containers = patched.spec.template.spec.containers
    assert [c.name for c in containers] == ["sidecar", "app"]
    assert [e.name for e in containers[1].env] == ["B", "C"]
    a.delete_namespaced_deployment(name, "dev")


def test_json_patch_and_merge_patch(nonprod: client.ApiClient) -> None:
    """A list body is a JSON patch; merge patch replaces lists wholesale and null deletes keys."""
    a = apps(nonprod)
    name = unique("jp")
    a.create_namespaced_deployment("dev", deployment(name, "registry.example.com/payment:1.4.1", sidecar=True))
    patched = a.patch_namespaced_deployment(name, "dev", [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/annotations", "value": {"owner": "team-a"}}])
    assert patched.spec.replicas == 3
    assert patched.metadata.annotations["owner"] == "team-a"
    with pytest.raises(ApiException) as err:
        a.patch_namespaced_deployment(name, "dev", [{"op": "test", "path": "/spec/replicas", "value": 99}])
    assert err.value.status == 422
    merged = a.patch_namespaced_deployment(name, "dev", {
        "metadata": {"labels": {"tier": None, "new": "yes"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "only", "image": "registry.example.com/payment:1.4.1"}]}}}},
        _content_type="application/merge-patch+json")
    assert "tier" not in merged.metadata.labels
    assert merged.metadata.labels["new"] == "yes"
    assert [c.name for c in merged.spec.template.spec.containers] == ["only"]
    a.delete_namespaced_deployment(name, "dev")


def test_replace_with_a_stale_resource_version_is_a_conflict(nonprod: client.ApiClient) -> None:
    """PUT carrying an old resourceVersion gets 409 Conflict with apimachinery's exact message."""
    c = core(nonprod)
    name = unique("cm")
    c.create_namespaced_config_map("dev", {"metadata": {"name": name}, "data": {"k": "1"}})
    first = c.read_namespaced_config_map(name, "dev")
    first.data = {"k": "2"}
    second = c.replace_namespaced_config_map(name, "dev", first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"k": "3"}
    with pytest.raises(ApiException) as err:
        c.replace_namespaced_config_map(name, "dev", first)
    body = status_of(err.value)
    assert err.value.status == 409
    assert body["reason"] == "Conflict"
    assert body["code"] == 409
    assert body["message"] == f'Operation cannot be fulfilled on configmaps "{name}": {CONFLICT}'
    assert body["details"] == {"name": name, "group": "", "kind": "configmaps"}
    assert c.read_namespaced_config_map(name, "dev").data == {"k": "2"}
    c.delete_namespaced_config_map(name, "dev")


def test_lease_taken_by_one_holder_is_refused_to_another(nonprod: client.ApiClient) -> None:
    """The client-go leader-election pattern: B's PUT with the resourceVersion it read before A renewed -> 409."""
    coord = client.CoordinationV1Api(nonprod)
    name = unique("chatops-deploy-payment")
    now = dt.datetime.now(dt.UTC)
    lease = client.V1Lease(metadata=client.V1ObjectMeta(name=name), spec=client.V1LeaseSpec(
        holder_identity="holder-a", lease_duration_seconds=15, acquire_time=now, renew_time=now,
        lease_transitions=0))
    created = coord.create_namespaced_lease("staging", lease)
    assert created.spec.holder_identity == "holder-a"
    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease("staging", lease)
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"
    seen_by_b = coord.read_namespaced_lease(name, "staging")
    renewed = coord.read_namespaced_lease(name, "staging")
    renewed.spec.renew_time = dt.datetime.now(dt.UTC)
    coord.replace_namespaced_lease(name, "staging", renewed)  # A renews
    seen_by_b.spec.holder_identity = "holder-b"
    seen_by_b.spec.lease_transitions = 1
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease(name, "staging", seen_by_b)
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "Conflict"
    assert coord.read_namespaced_lease(name, "staging").spec.holder_identity == "holder-a"
    coord.delete_namespaced_lease(name, "staging")


def test_status_subresource(nonprod: client.ApiClient) -> None:
    """Writes to the main resource ignore .status; writes to /status change only .status."""
    a = apps(nonprod)
    name = unique("st")
    a.create_namespaced_deployment("dev", deployment(name, "registry.example.com/payment:1.4.1", replicas=1))
    wait_for(lambda: a.read_namespaced_deployment(name, "dev").status.ready_replicas == 1, what="ready")
    before = a.read_namespaced_deployment(name, "dev")
    out = a.patch_namespaced_deployment(name, "dev", {"spec": {"minReadySeconds": 1}, "status": {"readyReplicas": 42}},
                                        _content_type="application/merge-patch+json")
    assert out.spec.min_ready_seconds == 1
    assert out.status.ready_replicas == 1
    out = a.patch_namespaced_deployment_status(name, "dev", {"spec": {"replicas": 7}, "status": {"collisionCount": 5}},
                                               _content_type="application/merge-patch+json")
    assert out.status.collision_count == 5
    assert out.spec.replicas == 1
    assert out.metadata.generation == before.metadata.generation + 1  # the minReadySeconds change only
    a.delete_namespaced_deployment(name, "dev")


def test_errors_are_status_objects(nonprod: client.ApiClient, kube: Any) -> None:
    """NotFound 404, AlreadyExists 409, Invalid 422 with causes, BadRequest 400, MethodNotAllowed 405."""
    a, c = apps(nonprod), core(nonprod)
    with pytest.raises(ApiException) as err:
        a.read_namespaced_deployment("nosuch", "dev")
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'deployments.apps "nosuch" not found'
    bad = deployment(unique("bad"), "", replicas=1)
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as err:
        a.create_namespaced_deployment("dev", bad)
    body = status_of(err.value)
    assert err.value.status == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "Deployment"
    fields = {cause["field"] for cause in body["details"]["causes"]}
    assert {"spec.template.metadata.labels", "spec.template.spec.containers[0].image"} <= fields
    assert body["message"].startswith(f'Deployment.apps "{bad["metadata"]["name"]}" is invalid: [')
    with pytest.raises(ApiException) as err:
        c.create_namespaced_config_map("nosuch-ns", {"metadata": {"name": "x"}})
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'namespaces "nosuch-ns" not found'
    url = kube.cluster("nonprod").url
    status, body = http("POST", f"{url}/apis/apps/v1/namespaces/dev/deployments", b"{not json")
    assert status == 400
    assert body["reason"] == "BadRequest"
    status, body = http("POST", f"{url}/apis/apps/v1/namespaces/dev/deployments",
                        {"metadata": {"name": "typed"}, "spec": {"replicas": "three"}})
    assert status == 400
    assert "cannot unmarshal string into Go struct field Deployment.spec.replicas" in body["message"]
    status, body = http("POST", f"{url}/apis/apps/v1/namespaces/dev/deployments/payment-api", {})
    assert status == 405
    assert body["reason"] == "MethodNotAllowed"
    status, body = http("GET", f"{url}/apis/apps/v1/namespaces/dev/nosuchthings")
    assert status == 404
    assert body["reason"] == "NotFound"
    status, body = http("PATCH", f"{url}/apis/apps/v1/namespaces/dev/deployments/payment-api", {"a": 1},
                        content_type="text/plain")
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"


# ---------------------------------------------------------------------------------------------------
# watch


def test_watch_with_timeout_sees_added_modified_deleted(nonprod: client.ApiClient) -> None:
    """A watch from a resourceVersion streams ADDED/MODIFIED/DELETED and ends at timeoutSeconds."""
    c = core(nonprod)
    name = unique("w")
    rv = c.list_namespaced_config_map("dev").metadata.resource_version

    def writer() -> None:
        time.sleep(0.1)
        c.create_namespaced_config_map("dev", {"metadata": {"name": name}, "data": {"a": "1"}})
        c.patch_namespaced_config_map(name, "dev", {"data": {"a": "2"}})
        c.create_namespaced_config_map("dev", {"metadata": {"name": name + "-other", "labels": {"x": "y"}}})
        c.delete_namespaced_config_map(name, "dev")

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.monotonic()
    seen = []
    for event in watch.Watch().stream(c.list_namespaced_config_map, "dev", resource_version=rv, timeout_seconds=1,
                                      field_selector=f"metadata.name={name}"):
        seen.append((event["type"], event["object"].data))
    thread.join()
    assert 0.9 <= time.monotonic() - started < 5
    assert seen == [("ADDED", {"a": "1"}), ("MODIFIED", {"a": "2"}), ("DELETED", {"a": "2"})]
    c.delete_namespaced_config_map(name + "-other", "dev")


def test_watch_list_sends_initial_events_then_the_end_bookmark(kube: Any) -> None:
    """sendInitialEvents=true: current objects as ADDED, then a BOOKMARK annotated k8s.io/initial-events-end."""
    url = (f"{kube.cluster('nonprod').url}/apis/apps/v1/namespaces/staging/deployments?watch=true"
           "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
    request = urllib.request.Request(url, headers=kube.admin_headers())
    with urllib.request.urlopen(request, timeout=10, context=kube.auth.client_context()) as resp:
        events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    kinds = [e["type"] for e in events]
    added = kinds.index("BOOKMARK")
    assert kinds[:added] == ["ADDED"] * added
    assert added == 4
    bookmark = events[added]["object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["kind"] == "Deployment"
    assert int(bookmark["metadata"]["resourceVersion"]) > 0


def test_watch_selector_transitions(nonprod: client.ApiClient) -> None:
    """An object leaving a watch's label selector arrives as DELETED, entering it as ADDED."""
    c = core(nonprod)
    name = unique("sel")
    rv = c.list_namespaced_config_map("dev").metadata.resource_version

    def writer() -> None:
        time.sleep(0.1)
        c.create_namespaced_config_map("dev", {"metadata": {"name": name, "labels": {"watched": "no"}}})
        c.patch_namespaced_config_map(name, "dev", {"metadata": {"labels": {"watched": "yes"}}})
        c.patch_namespaced_config_map(name, "dev", {"metadata": {"labels": {"watched": "no"}}})

    thread = threading.Thread(target=writer)
    thread.start()
    seen = [e["type"] for e in watch.Watch().stream(c.list_namespaced_config_map, "dev", resource_version=rv,
                                                    timeout_seconds=1, label_selector="watched=yes")]
    thread.join()
    assert seen == ["ADDED", "DELETED"]
    c.delete_namespaced_config_map(name, "dev")


# ---------------------------------------------------------------------------------------------------
# proxy, logs, jobs


def test_pod_proxy_reaches_the_simulated_endpoints(nonprod: client.ApiClient, kube: Any) -> None:
    """orders in staging answers /readyz with 503 and the database error; /healthz is fine."""
    c = core(nonprod)
    pod = c.list_namespaced_pod("staging", label_selector="app=orders").items[0].metadata.name
    ok = c.connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", "staging", "healthz", _preload_content=False)
    assert ok.status == 200
    assert json.loads(ok.data) == {"status": "ok"}
    with pytest.raises(ApiException) as err:
        c.connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", "staging", "readyz", _preload_content=False)
    assert err.value.status == 503
    assert json.loads(err.value.body) == {"status": "fail", "checks": {
        "database": {"status": "down", "error": "dial tcp 10.0.3.7:5432: connect: connection refused"},
        "cache": {"status": "up"}}}
    # a path with a slash is sent percent-encoded (ready%2Fdb); per-pod settings win over the service's
    kube.set_health("nonprod", "staging", "orders", "/ready/db", status=200, body={"db": "ok"}, pod=pod)
    try:
        r = c.connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", "staging", "ready/db", _preload_content=False)
        assert r.status == 200
        assert json.loads(r.data) == {"db": "ok"}
    finally:
        kube.clear_health("nonprod", "staging", pod=pod)
    with pytest.raises(ApiException) as err:
        c.connect_get_namespaced_pod_proxy_with_path(f"{pod}:9999", "staging", "healthz", _preload_content=False)
    assert err.value.status == 503
    assert "connection refused" in status_of(err.value)["message"]
    svc = c.connect_get_namespaced_service_proxy_with_path("payment-api:http", "staging", "readyz",
                                                           _preload_content=False)
    assert svc.status == 200
    assert json.loads(svc.data)["checks"]["database"] == {"status": "up"}
    with pytest.raises(ApiException) as err:
        c.connect_get_namespaced_service_proxy_with_path("orders:http", "staging", "readyz", _preload_content=False)
    assert err.value.status == 503
    assert "no endpoints available" in status_of(err.value)["message"]


def test_set_health_latency_and_status(nonprod: client.ApiClient, kube: Any) -> None:
    """Runtime health settings apply to the proxy at once (status, body, latency)."""
    c = core(nonprod)
    pod = c.list_namespaced_pod("dev", label_selector="app=gateway").items[0].metadata.name
    kube.set_health("nonprod", "dev", "gateway", "/healthz", status=500, body={"status": "degraded"}, latency=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(ApiException) as err:
            c.connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", "dev", "healthz", _preload_content=False)
        assert time.monotonic() - started >= 0.3
        assert err.value.status == 500
        assert json.loads(err.value.body) == {"status": "degraded"}
    finally:
        kube.clear_health("nonprod", "dev", "gateway")
    r = c.connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", "dev", "healthz", _preload_content=False)
    assert r.status == 200


def test_job_completes_with_logs(nonprod: client.ApiClient) -> None:
    """A Job's pod runs to completion: Complete condition, succeeded 1, logs through pods/log."""
    b, c = client.BatchV1Api(nonprod), core(nonprod)
    name = unique("test")
    b.create_namespaced_job("staging", job(name, "registry.example.com/ci-runner:2",
                                           ["make", "test", "VERSION=1.4.2"]))
    done = wait_for(lambda: (j := b.read_namespaced_job(name, "staging")).status.succeeded == 1 and j,
                    what="job success")
    conditions = {cond.type: cond for cond in done.status.conditions}
    assert conditions["Complete"].status == "True"
    assert conditions["Complete"].reason == "CompletionsReached"
    assert done.status.completion_time is not None
    assert done.status.start_time is not None
    pods = c.list_namespaced_pod("staging", label_selector=f"batch.kubernetes.io/job-name={name}").items
    assert len(pods) == 1
    assert pods[0].status.phase == "Succeeded"
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert terminated.reason == "Completed"
    logs = c.read_namespaced_pod_log(pods[0].metadata.name, "staging")
    assert logs.startswith("+ make test VERSION=1.4.2\n")
    assert logs.rstrip().endswith("PASS")
    b.delete_namespaced_job(name, "staging", propagation_policy="Background")
    wait_for(lambda: not c.list_namespaced_pod("staging", label_selector=f"job-name={name}").items,
             what="pods garbage-collected")


@pytest.mark.parametrize(("image", "command", "code", "tail"), [
    ("registry.example.com/payment:1.5.3", ["/app/migrate", "up"], 1, "rolled back, schema still at 41"),
    ("registry.example.com/ci-runner:2", ["sh", "-c", "exit 3 # plain"], 3, "+ sh -c 'exit 3 # plain'"),
    ("registry.example.com/ci-runner:2", ["false"], 1, "+ false"),
])
def test_job_fails(nonprod: client.ApiClient, image: str, command: list[str], code: int, tail: str) -> None:
    """A failing image tag, or a command that plainly fails: the pod exits with its code, the Job ends Failed
    (backoff limit), and the log says what ran."""
    b, c = client.BatchV1Api(nonprod), core(nonprod)
    name = unique("fail")
    b.create_namespaced_job("staging", job(name, image, command, backoff_limit=0))
    failed = wait_for(lambda: (j := b.read_namespaced_job(name, "staging")).status.conditions and j,
                      what="job to finish")
    conditions = {cond.type: cond for cond in failed.status.conditions}
    assert conditions["Failed"].reason == "BackoffLimitExceeded"
    assert failed.status.failed == 1
    pod = c.list_namespaced_pod("staging", label_selector=f"job-name={name}").items[0]
    assert pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == code
    assert c.read_namespaced_pod_log(pod.metadata.name, "staging").rstrip().endswith(tail)
    events = c.list_namespaced_event("staging", field_selector=f"involvedObject.name={name}").items
    assert {e.reason for e in events} >= {"SuccessfulCreate", "BackoffLimitExceeded"}
    b.delete_namespaced_job(name, "staging", propagation_policy="Background")


def test_log_errors_and_options(nonprod: client.ApiClient) -> None:
    """tailLines, timestamps, and the kubelet's errors for pods whose container has not started."""
    a, c = apps(nonprod), core(nonprod)
    pod = c.list_namespaced_pod("dev", label_selector="app=payment").items[0].metadata.name
    assert len(c.read_namespaced_pod_log(pod, "dev", tail_lines=1).splitlines()) == 1
    stamped = c.read_namespaced_pod_log(pod, "dev", timestamps=True).splitlines()[0]
    assert stamped[:4].isdigit()
    assert stamped.split(" ", 1)[0].endswith("Z")
    with pytest.raises(ApiException) as err:
        c.read_namespaced_pod_log(pod, "dev", previous=True)
    assert err.value.status == 400
    assert "previous terminated container" in status_of(err.value)["message"]
    name = unique("nopull")
    a.create_namespaced_deployment("dev", deployment(name, "registry.example.com/payment:0.0.0", replicas=1))
    waiting = wait_for(lambda: [p for p in c.list_namespaced_pod("dev", label_selector=f"app={name}").items
                                if p.status.container_statuses], what="pod status")[0]
    with pytest.raises(ApiException) as err:
        c.read_namespaced_pod_log(waiting.metadata.name, "dev")
    assert err.value.status == 400
    assert "is waiting to start" in status_of(err.value)["message"]
    a.delete_namespaced_deployment(name, "dev")
