"""Fault switches per cluster: down (connection refused), stall, 500 and 403, set and cleared at runtime."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException


@pytest.fixture(name="faults")
def fixture_faults(kube: Any) -> Iterator[Any]:
    """The prod cluster's fault switches, always cleared afterwards."""
    faults = kube.cluster("prod").faults
    yield faults
    faults.clear()


def deployments(api: client.ApiClient, **kw: Any) -> Any:
    return client.AppsV1Api(api).list_namespaced_deployment("prod", **kw)


def test_down_refuses_connections_until_cleared(faults: Any, prod: client.ApiClient, nonprod: client.ApiClient,
                                                kube: Any, kubectl: Any) -> None:
    """down closes the port (connection refused) on that cluster only; clear() reopens the same port."""
    port = kube.cluster("prod").port
    assert deployments(prod).items
    faults.set(mode="down")
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        client.AppsV1Api(prod).list_namespaced_deployment("prod", _request_timeout=2)
    assert "Connection refused" in str(err.value) or "ConnectionRefused" in repr(err.value)
    result = kubectl("get", "deploy", "-n", "prod", "--request-timeout=2s")
    assert result.returncode != 0
    assert "connection refused" in result.stderr
    assert client.AppsV1Api(nonprod).list_namespaced_deployment("staging").items  # nonprod is unaffected
    faults.clear()
    assert kube.cluster("prod").port == port
    assert deployments(prod).items


def test_stall_holds_requests(faults: Any, prod: client.ApiClient) -> None:
    """stall: requests wait `seconds` before an answer, so a client timeout fires first."""
    faults.set(mode="stall", seconds=5)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:  # the client retries, each try times out
        deployments(prod, _request_timeout=0.3)
    assert isinstance(err.value.reason, urllib3.exceptions.ReadTimeoutError)
    assert 0.3 <= time.monotonic() - started < 4
    faults.set(mode="stall", seconds=0.2)
    started = time.monotonic()
    assert deployments(prod, _request_timeout=5).items
    assert time.monotonic() - started >= 0.2


def test_error_answers(faults: Any, prod: client.ApiClient) -> None:
    """500 is an InternalError Status; 403 is the Forbidden Status RBAC would give."""
    faults.set(mode="500")
    with pytest.raises(ApiException) as err:
        deployments(prod)
    assert err.value.status == 500
    assert json.loads(err.value.body)["reason"] == "InternalError"
    faults.set(mode="403")
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(prod).read_namespaced_deployment("payment-api", "prod")
    assert err.value.status == 403
    assert json.loads(err.value.body)["message"] == (
        'deployments.apps "payment-api" is forbidden: User "kubernetes-admin" cannot get '
        'resource "deployments" in API group "apps" in the namespace "prod"')


def test_scoped_and_counted_faults(faults: Any, prod: client.ApiClient) -> None:
    """A fault can be limited to one resource/verb and to a number of requests."""
    faults.set(mode="500", resource="pods", verb="list", count=2)
    assert deployments(prod).items
    for _ in range(2):
        with pytest.raises(ApiException):
            client.CoreV1Api(prod).list_namespaced_pod("prod")
    assert client.CoreV1Api(prod).list_namespaced_pod("prod").items
    faults.set(mode="403", resource="pods/proxy")
    pod = client.CoreV1Api(prod).list_namespaced_pod("prod", label_selector="app=payment").items[0].metadata.name
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(prod).connect_get_namespaced_pod_proxy_with_path(f"{pod}:8080", "prod", "healthz")
    assert err.value.status == 403
    assert 'resource "pods/proxy"' in json.loads(err.value.body)["message"]
