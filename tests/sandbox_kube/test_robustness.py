"""Malformed input never yields a 500 or a traceback: random bodies, patches, selectors and paths over HTTP."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kube_helpers import http, trust

from sandbox.kube import KubeSandbox


@pytest.fixture(name="kube", scope="module")
def fixture_private_kube() -> Any:
    """A sandbox of its own: random DELETEs must not disturb the shared world of the other tests."""
    with KubeSandbox(time_scale=0.05) as kube:
        trust(kube)
        yield kube

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=16) | \
    st.text("ab-:/$.", max_size=4)
keys = st.sampled_from(["metadata", "spec", "status", "name", "labels", "replicas", "template", "containers",
                        "image", "env", "selector", "matchLabels", "data", "holderIdentity", "resourceVersion",
                        "$patch", "$setElementOrder/containers", "$retainKeys", "strategy", "rollingUpdate",
                        "maxSurge", "ports", "containerPort", "kind", "apiVersion", "x"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)


def objects(kind: str, api_version: str) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly-plausible objects: a valid name, and anything at all in the rest."""
    return st.fixed_dictionaries(
        {"metadata": st.fixed_dictionaries({"name": st.just("fuzzed")},
                                           optional={"labels": values, "namespace": scalars})},
        optional={"spec": values, "data": values, "status": values, "kind": st.sampled_from([kind, "Other"]),
                  "apiVersion": st.sampled_from([api_version, "v2"])})


COLLECTIONS = [
    ("/apis/apps/v1/namespaces/dev/deployments", "Deployment", "apps/v1"),
    ("/api/v1/namespaces/dev/configmaps", "ConfigMap", "v1"),
    ("/apis/coordination.k8s.io/v1/namespaces/dev/leases", "Lease", "coordination.k8s.io/v1"),
    ("/apis/batch/v1/namespaces/dev/jobs", "Job", "batch/v1"),
    ("/api/v1/namespaces/dev/services", "Service", "v1"),
    ("/api/v1/namespaces/dev/pods", "Pod", "v1"),
]


def _cleanup(url: str) -> None:
    for path, _kind, _v in COLLECTIONS:
        http("DELETE", f"{url}{path}/fuzzed")


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_creates_and_updates_are_answered_with_a_status(kube: Any, data: st.DataObject) -> None:
    url = kube.cluster("nonprod").url
    path, kind, api_version = data.draw(st.sampled_from(COLLECTIONS))
    body = data.draw(objects(kind, api_version) | values)
    status, answer = http("POST", url + path, body)
    assert status < 500, answer
    if status >= 400:
        assert answer["kind"] == "Status"
        assert answer["code"] == status
    status, answer = http("PUT", f"{url}{path}/fuzzed", body)
    assert status < 500, answer
    _cleanup(url)


PATCH_TYPES = ["application/strategic-merge-patch+json", "application/merge-patch+json",
               "application/json-patch+json", "application/apply-patch+yaml"]
json_patch_ops = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]),
     "path": st.sampled_from(["/spec/replicas", "/spec/template/spec/containers/0/image", "/metadata/labels/x",
                              "/status", "/spec/template/spec/containers/-", "", "/nope/deeper", "/metadata/name"])},
    optional={"value": values, "from": st.sampled_from(["/spec", "/metadata/labels"])}), max_size=3)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ctype=st.sampled_from(PATCH_TYPES), patch=values | json_patch_ops,
       sub=st.sampled_from(["", "/status", "/scale"]))
def test_random_patches_never_break_the_server(kube: Any, ctype: str, patch: Any, sub: str) -> None:
    url = kube.cluster("nonprod").url
    name = "fuzz-target"
    base = f"{url}/apis/apps/v1/namespaces/dev/deployments"
    status, _ = http("GET", f"{base}/{name}")
    if status == 404:
        http("POST", base, {"metadata": {"name": name}, "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "registry.example.com/payment:1.4.1"}]}}}})
    raw = json.dumps(patch).encode()
    status, answer = http("PATCH", f"{base}/{name}{sub}", raw, content_type=ctype)
    assert status < 500, answer
    if status >= 400:
        assert isinstance(answer, dict), answer
        assert answer.get("kind") == "Status", answer


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=st.text(" !=(),abcin.-/x", max_size=12), fields=st.text(" !=,\\abcmetadata.nm", max_size=14),
       extra=st.sampled_from(["", "&limit=x", "&watch=true&timeoutSeconds=0", "&continue=zzz",
                              "&watch=1&resourceVersion=abc&timeoutSeconds=0", "&limit=-1",
                              "&watch=true&sendInitialEvents=true&timeoutSeconds=0"]))
def test_random_selectors_and_query_parameters(kube: Any, label: str, fields: str, extra: str) -> None:
    url = kube.cluster("nonprod").url
    q = urllib.parse.urlencode({"labelSelector": label, "fieldSelector": fields})
    status, answer = http("GET", f"{url}/api/v1/namespaces/staging/pods?{q}{extra}")
    assert status < 500, answer


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(st.sampled_from(["api", "apis", "v1", "apps", "namespaces", "dev", "pods", "deployments",
                                          "proxy", "log", "status", "scale", "watch", "x", "%2F", "..", "a%3A1",
                                          "payment-api", "services", "openapi", "v3"]), max_size=8),
       method=st.sampled_from(["GET", "DELETE", "POST", "PUT", "PATCH", "OPTIONS"]))
def test_random_paths(kube: Any, segments: list[str], method: str) -> None:
    url = kube.cluster("prod").url
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    status, answer = http(method, f"{url}/{'/'.join(segments)}", body,
                          content_type="application/merge-patch+json" if method == "PATCH" else "application/json")
    assert status < 500 or status == 503, answer  # 503: a proxied pod that is not listening


def test_the_simulation_survived_the_fuzzing(kube: Any) -> None:
    """Whatever was stored, the controllers kept running without errors."""
    for cluster in kube.clusters.values():
        cluster.controller.run_pass()
        assert not cluster.controller.errors
