"""The deployment/replicaset/kubelet simulation: rollouts, revisions, failures driven by the registry data."""

from __future__ import annotations

import threading
import time
from typing import Any

from kube_helpers import deployment, unique, wait_for
from kubernetes import client, watch

NS = "dev"


def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def pods_of(api: client.ApiClient, app: str) -> list[Any]:
    return core(api).list_namespaced_pod(NS, label_selector=f"app={app}").items


def condition(d: Any, ctype: str) -> Any:
    return next((c for c in d.status.conditions or [] if c.type == ctype), None)


def rollout_done(api: client.ApiClient, name: str) -> Any:
    """kubectl's rollout-status rules (reference/kubernetes.md section 1)."""
    d = apps(api).read_namespaced_deployment(name, NS)
    st = d.status
    if d.metadata.generation > (st.observed_generation or 0):
        return None
    if (st.updated_replicas or 0) < d.spec.replicas or (st.replicas or 0) > (st.updated_replicas or 0):
        return None
    return d if (st.available_replicas or 0) >= (st.updated_replicas or 0) else None


def test_rollout_creates_a_replicaset_with_kubectl_bookkeeping(nonprod: client.ApiClient) -> None:
    """New template -> ReplicaSet <deploy>-<hash> with revision annotations, owner reference, pods <rs>-<5>."""
    a = apps(nonprod)
    name = unique("rs")
    a.create_namespaced_deployment(NS, deployment(name, "registry.example.com/payment:1.4.1", replicas=2))
    d = wait_for(lambda: rollout_done(nonprod, name), what="first rollout")
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    progressing, available = condition(d, "Progressing"), condition(d, "Available")
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    assert (available.status, available.reason) == ("True", "MinimumReplicasAvailable")
    (rs,) = a.list_namespaced_replica_set(NS, label_selector=f"app={name}").items
    h = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"{name}-{h}"
    assert rs.spec.selector.match_labels["pod-template-hash"] == h
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert rs.metadata.annotations["deployment.kubernetes.io/desired-replicas"] == "2"
    assert rs.metadata.annotations["deployment.kubernetes.io/max-replicas"] == "3"
    owner = rs.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Deployment", name, d.metadata.uid, True)
    pods = pods_of(nonprod, name)
    assert len(pods) == 2
    for p in pods:
        assert p.metadata.name.startswith(rs.metadata.name + "-")
        assert len(p.metadata.name) == len(rs.metadata.name) + 6
        assert p.metadata.owner_references[0].uid == rs.metadata.uid
        assert p.status.phase == "Running"
        assert p.spec.node_name
        assert p.status.pod_ip
        assert p.status.container_statuses[0].ready
    events = core(nonprod).list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    assert any(e.reason == "ScalingReplicaSet" and e.message == f"Scaled up replica set {rs.metadata.name} to 2"
               for e in events)
    rs_events = core(nonprod).list_namespaced_event(NS, field_selector=f"involvedObject.name={rs.metadata.name}")
    assert {e.reason for e in rs_events.items} == {"SuccessfulCreate"}
    pod_events = core(nonprod).list_namespaced_event(NS, field_selector=f"involvedObject.name={pods[0].metadata.name}")
    assert {"Scheduled", "Pulled", "Created", "Started"} <= {e.reason for e in pod_events.items}

    # roll to 1.4.2 and back: the old ReplicaSet is reused, renumbered, with its old revision in the history
    a.patch_namespaced_deployment(name, NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.example.com/payment:1.4.2"}]}}}})
    wait_for(lambda: rollout_done(nonprod, name), what="second rollout")
    a.patch_namespaced_deployment(name, NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.example.com/payment:1.4.1"}]}}}})
    d = wait_for(lambda: rollout_done(nonprod, name), what="rollback")
    rss = {r.metadata.name: r for r in a.list_namespaced_replica_set(NS, label_selector=f"app={name}").items}
    assert len(rss) == 2
    first = rss[rs.metadata.name]
    assert first.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert first.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert first.spec.replicas == 2
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    a.delete_namespaced_deployment(name, NS)
    wait_for(lambda: not pods_of(nonprod, name), what="garbage collection of pods")
    assert not a.list_namespaced_replica_set(NS, label_selector=f"app={name}").items


def test_rolling_update_respects_max_surge_and_max_unavailable(nonprod: client.ApiClient) -> None:
    """maxSurge 1 / maxUnavailable 0 on 4 replicas: never more than 5 pods, never fewer than 4 available."""
    a = apps(nonprod)
    name = unique("surge")
    body = deployment(name, "registry.example.com/payment:1.4.1", replicas=4, extra={
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}})
    a.create_namespaced_deployment(NS, body)
    start = wait_for(lambda: rollout_done(nonprod, name), what="first rollout")
    observed: list[tuple[int, int, int]] = []

    def record() -> None:
        for event in watch.Watch().stream(a.list_namespaced_deployment, NS, field_selector=f"metadata.name={name}",
                                          resource_version=start.metadata.resource_version, timeout_seconds=8):
            st = event["object"].status
            observed.append((st.replicas or 0, st.available_replicas or 0, st.updated_replicas or 0))
            if (st.updated_replicas or 0) == 4 and (st.replicas or 0) == 4 and (st.available_replicas or 0) == 4 \
                    and len(observed) > 2:
                return

    thread = threading.Thread(target=record)
    thread.start()
    time.sleep(0.1)
    a.patch_namespaced_deployment(name, NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.example.com/payment:1.4.2"}]}}}})
    thread.join()
    assert observed
    assert max(r for r, _, _ in observed) <= 5
    assert min(av for _, av, _ in observed) >= 4
    assert observed[-1] == (4, 4, 4)
    a.delete_namespaced_deployment(name, NS)


def test_progress_deadline_exceeded(nonprod: client.ApiClient, kubectl: Any) -> None:
    """No progress for progressDeadlineSeconds (scaled) -> Progressing False ProgressDeadlineExceeded."""
    a = apps(nonprod)
    name = unique("stuck")
    a.create_namespaced_deployment(NS, deployment(name, "registry.example.com/payment:1.4.1", replicas=1,
                                                  extra={"progressDeadlineSeconds": 10}))
    wait_for(lambda: rollout_done(nonprod, name), what="first rollout")
    a.patch_namespaced_deployment(name, NS, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.example.com/payment:4.0.4"}]}}}})
    d = wait_for(lambda: (x := a.read_namespaced_deployment(name, NS)) and
                 condition(x, "Progressing").reason == "ProgressDeadlineExceeded" and x, timeout=15,
                 what="ProgressDeadlineExceeded")
    new_rs = next(r for r in a.list_namespaced_replica_set(NS, label_selector=f"app={name}").items
              if r.metadata.annotations["deployment.kubernetes.io/revision"] == "2")
    cond = condition(d, "Progressing")
    assert cond.status == "False"
    assert cond.message == f'ReplicaSet "{new_rs.metadata.name}" has timed out progressing.'
    result = kubectl("rollout", "status", f"deployment/{name}", "-n", NS, context="sandbox-nonprod-admin")
    assert result.returncode == 1
    assert f'deployment "{name}" exceeded its progress deadline' in result.stderr
    a.delete_namespaced_deployment(name, NS)


def _single_pod_status(api: client.ApiClient, name: str, check: Any, timeout: float = 10) -> Any:
    def probe() -> Any:
        for p in pods_of(api, name):
            if p.status.container_statuses and check(p.status.container_statuses[0]):
                return p
        return None

    return wait_for(probe, timeout=timeout, what=f"pod of {name}")


def test_crashing_tag_crash_loops(nonprod: client.ApiClient) -> None:
    """A tag marked crashing: CrashLoopBackOff, restartCount rising, lastState.terminated Error exit 1."""
    name = unique("crash")
    apps(nonprod).create_namespaced_deployment(NS, deployment(name, "registry.example.com/payment:1.5.0", replicas=1))
    pod = _single_pod_status(nonprod, name, lambda cs: cs.restart_count >= 1 and cs.state.waiting is not None
                             and cs.state.waiting.reason == "CrashLoopBackOff")
    cs = pod.status.container_statuses[0]
    last = cs.last_state.terminated
    assert (last.reason, last.exit_code) == ("Error", 1)
    assert last.finished_at is not None
    assert cs.state.waiting.message.startswith("back-off ")
    assert not cs.ready
    assert pod.status.phase == "Running"
    events = core(nonprod).list_namespaced_event(NS, field_selector=f"involvedObject.name={pod.metadata.name},"
                                                                    "reason=BackOff").items
    assert events[0].message.startswith(f"Back-off restarting failed container app in pod {pod.metadata.name}_{NS}(")
    apps(nonprod).delete_namespaced_deployment(name, NS)


def test_leaking_tag_is_oom_killed(nonprod: client.ApiClient) -> None:
    """A tag marked leaking: the container is OOMKilled with exit code 137, then restarted."""
    name = unique("leak")
    apps(nonprod).create_namespaced_deployment(NS, deployment(name, "registry.example.com/payment:1.5.1", replicas=1))
    pod = _single_pod_status(nonprod, name, lambda cs: cs.last_state.terminated is not None)
    last = pod.status.container_statuses[0].last_state.terminated
    assert (last.reason, last.exit_code) == ("OOMKilled", 137)
    apps(nonprod).delete_namespaced_deployment(name, NS)


def test_failing_readiness_makes_pods_unready_with_unhealthy_events(nonprod: client.ApiClient, kube: Any) -> None:
    """An unready tag (or set_health 503) keeps pods unready, with the kubelet's exact Unhealthy message."""
    name = unique("unready")
    apps(nonprod).create_namespaced_deployment(NS, deployment(name, "registry.example.com/payment:1.5.2", replicas=1,
                                                              readiness="/readyz"))
    pod = _single_pod_status(nonprod, name, lambda cs: cs.state.running is not None)
    msg = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    events = wait_for(lambda: [e for e in core(nonprod).list_namespaced_event(
        NS, field_selector=f"involvedObject.name={pod.metadata.name},reason=Unhealthy").items if (e.count or 0) >= 2],
        what="repeated Unhealthy events")
    assert events[0].message == msg
    assert events[0].type == "Warning"
    assert events[0].source.component == "kubelet"
    pod = core(nonprod).read_namespaced_pod(pod.metadata.name, NS)
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    assert ready.status == "False"
    assert ready.reason == "ContainersNotReady"
    # a healthy tag whose endpoint is made to fail at runtime goes unready too, and back
    healthy = unique("flaky")
    apps(nonprod).create_namespaced_deployment(NS, deployment(healthy, "registry.example.com/payment:1.4.1",
                                                              replicas=1, readiness="/readyz"))
    _single_pod_status(nonprod, healthy, lambda cs: cs.ready)
    kube.set_health("nonprod", NS, healthy, "/readyz", status=503, body={"status": "fail"})
    try:
        _single_pod_status(nonprod, healthy, lambda cs: not cs.ready)
    finally:
        kube.clear_health("nonprod", NS, healthy)
    _single_pod_status(nonprod, healthy, lambda cs: cs.ready)
    apps(nonprod).delete_namespaced_deployment(name, NS)
    apps(nonprod).delete_namespaced_deployment(healthy, NS)


def test_failing_liveness_restarts_the_container(nonprod: client.ApiClient, kube: Any) -> None:
    """A failing liveness endpoint: Unhealthy (Liveness) events, Killing, restartCount up."""
    name = unique("live")
    body = deployment(name, "registry.example.com/payment:1.4.1", replicas=1)
    body["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = {
        "httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10, "failureThreshold": 2}
    apps(nonprod).create_namespaced_deployment(NS, body)
    _single_pod_status(nonprod, name, lambda cs: cs.state.running is not None)
    kube.set_health("nonprod", NS, name, "/healthz", status=500)
    try:
        pod = _single_pod_status(nonprod, name, lambda cs: cs.restart_count >= 1)
    finally:
        kube.clear_health("nonprod", NS, name)
    reasons = {(e.reason, e.message) for e in core(nonprod).list_namespaced_event(
        NS, field_selector=f"involvedObject.name={pod.metadata.name}").items}
    assert ("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500") in reasons
    assert ("Killing", "Container app failed liveness probe, will be restarted") in reasons
    apps(nonprod).delete_namespaced_deployment(name, NS)


def test_missing_configmap_blocks_the_container(nonprod: client.ApiClient) -> None:
    """A configMapKeyRef to a missing ConfigMap: CreateContainerConfigError until it appears."""
    name = unique("cfg")
    body = deployment(name, "registry.example.com/payment:1.4.1", replicas=1)
    body["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": f"{name}-config", "key": "level"}}})
    apps(nonprod).create_namespaced_deployment(NS, body)
    pod = _single_pod_status(nonprod, name, lambda cs: cs.state.waiting is not None
                             and cs.state.waiting.reason == "CreateContainerConfigError")
    assert pod.status.container_statuses[0].state.waiting.message == f'configmap "{name}-config" not found'
    core(nonprod).create_namespaced_config_map(NS, {"metadata": {"name": f"{name}-config"}, "data": {"level": "x"}})
    _single_pod_status(nonprod, name, lambda cs: cs.ready)
    apps(nonprod).delete_namespaced_deployment(name, NS)
    core(nonprod).delete_namespaced_config_map(f"{name}-config", NS)
