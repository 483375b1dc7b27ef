"""Pure rules: kubectl's rollout status, pod diagnosis, event dedup, autoscaler and deploy-lock facts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from status_objects import NOW, deployment, event, hpa, lease, pod, replicaset, stamp

from bot.insight.kube_facts import (
    deploy_lock,
    diagnose_pod,
    hpa_for,
    human_age,
    image_tag,
    new_replicaset,
    owned_replicasets,
    pod_alerts,
    pods_of,
    recent_warnings,
    rollout_state,
    selector_string,
)


class TestRolloutState:
    def test_complete(self) -> None:
        """A deployment whose every replica is updated and available has rolled out, in kubectl's words."""
        state = rollout_state(deployment())
        assert state.phase == "complete"
        assert state.message == 'deployment "payment-api" successfully rolled out'

    def test_spec_not_observed(self) -> None:
        """generation ahead of observedGeneration means the controller has not seen the change yet."""
        state = rollout_state(deployment(generation=5, observed=4))
        assert state.phase == "pending"
        assert state.message == "Waiting for deployment spec update to be observed..."

    def test_updating(self) -> None:
        """Fewer updated replicas than desired is a rollout in progress, with n out of m."""
        state = rollout_state(deployment(replicas=5, updated=3, total=6, available=5))
        assert state.phase == "progressing"
        assert "3 out of 5 new replicas have been updated" in state.message

    def test_old_replicas_pending_termination(self) -> None:
        """All updated but more replicas than updated ones: old replicas still terminating."""
        state = rollout_state(deployment(replicas=3, updated=3, total=4))
        assert state.phase == "progressing"
        assert "1 old replicas are pending termination" in state.message

    def test_not_yet_available(self) -> None:
        """Updated but not yet available replicas keep the rollout waiting."""
        state = rollout_state(deployment(replicas=3, updated=3, total=3, available=2))
        assert "2 of 3 updated replicas are available" in state.message

    def test_progress_deadline_exceeded(self) -> None:
        """ProgressDeadlineExceeded on the Progressing condition fails the rollout, whatever the counts."""
        state = rollout_state(deployment(replicas=3, updated=1, progressing_reason="ProgressDeadlineExceeded"))
        assert state.failed
        assert state.message == 'deployment "payment-api" exceeded its progress deadline'

    def test_paused(self) -> None:
        """A paused deployment in the middle of a rollout says paused, not progressing."""
        assert rollout_state(deployment(replicas=4, updated=2, paused=True)).phase == "paused"

    @given(desired=st.integers(0, 20), updated=st.integers(0, 20), total=st.integers(0, 25),
           available=st.integers(0, 20))
    def test_complete_only_when_kubectl_says_so(self, desired: int, updated: int, total: int, available: int) -> None:
        """Complete exactly when updated >= desired, total <= updated and available >= updated."""
        state = rollout_state(deployment(replicas=desired, updated=updated, total=total, available=available))
        assert state.done == (updated >= desired and total <= updated and available >= updated)


class TestOwnership:
    def test_groups_namespace_lists_by_owner(self) -> None:
        """From namespace-wide lists, only the deployment's ReplicaSets and their pods are picked."""
        payment, orders = deployment(), deployment("orders")
        rs_new = replicaset(payment, "7d9f8", revision=4, replicas=3)
        rs_old = replicaset(payment, "5c6b7", revision=3, replicas=0, image="registry.example.com/payment:v1.4.1")
        rs_orders = replicaset(orders, "aaaaa", revision=1, replicas=1)
        pods = [pod(rs_new, "x1"), pod(rs_orders, "y1"), pod(rs_new, "x2")]
        owned = owned_replicasets(payment, [rs_old, rs_orders, rs_new])
        assert [rs["metadata"]["name"] for rs in owned] == ["payment-api-7d9f8", "payment-api-5c6b7"]
        assert [p["metadata"]["name"] for p in pods_of(owned, pods)] == ["payment-api-7d9f8-x1",
                                                                         "payment-api-7d9f8-x2"]
        assert new_replicaset(payment, owned) is rs_new

    def test_selector_string(self) -> None:
        """matchLabels become a sorted label selector."""
        assert selector_string(deployment()) == "app=payment-api"

    def test_image_tag(self) -> None:
        """Tags come from the last path element, digests are shortened, no tag means latest."""
        assert image_tag("registry.example.com:5000/payment:v1.4.2") == "v1.4.2"
        assert image_tag("nginx") == "latest"
        assert image_tag("reg/x@sha256:0123456789abcdef") == "0123456789ab"


class TestPodDiagnosis:
    def test_running_and_ready(self) -> None:
        """A running ready pod is Running with 1/1 ready."""
        rs = replicaset(deployment(), "7d9f8", revision=4, replicas=1)
        diagnosis = diagnose_pod(pod(rs, "a"), "app")
        assert (diagnosis.status, diagnosis.ready, diagnosis.ready_containers, diagnosis.containers) == (
            "Running", True, 1, 1)
        assert diagnosis.node == "node-1"

    def test_crash_loop_shows_last_termination(self) -> None:
        """During a crash loop the last terminated reason and exit code are shown, with restarts."""
        rs = replicaset(deployment("inventory"), "abcde", revision=2, replicas=1)
        crashing = pod(rs, "c", ready=False, restarts=17,
                       waiting={"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed"},
                       last_terminated={"reason": "Error", "exitCode": 2, "startedAt": stamp(90),
                                        "finishedAt": stamp(80)})
        diagnosis = diagnose_pod(crashing, "app")
        assert diagnosis.crash_looping
        assert diagnosis.stuck
        assert diagnosis.describe_status() == "CrashLoopBackOff (last: Error, exit 2)"
        assert diagnosis.restarts == 17
        alerts = pod_alerts([diagnosis], NOW)
        assert "1 of 1 pods not ready" in alerts
        assert "CrashLoopBackOff on inventory-abcde-c (last: Error, exit 2, 17 restarts)" in alerts

    def test_oom_killed(self) -> None:
        """An OOMKilled last state is called out, with a recent restart line."""
        rs = replicaset(deployment(), "7d9f8", revision=4, replicas=1)
        diagnosis = diagnose_pod(pod(rs, "o", restarts=1, last_terminated={
            "reason": "OOMKilled", "exitCode": 137, "finishedAt": stamp(300)}), "app")
        alerts = pod_alerts([diagnosis], NOW)
        assert diagnosis.oom_killed
        assert "OOMKilled: payment-api-7d9f8-o, last 5m ago" in alerts
        assert not any(alert.startswith("restarted") for alert in alerts)

    def test_old_restart_is_not_an_alert(self) -> None:
        """A restart from yesterday is history, not an alert."""
        rs = replicaset(deployment(), "7d9f8", revision=4, replicas=1)
        diagnosis = diagnose_pod(pod(rs, "o", restarts=1, last_terminated={
            "reason": "Error", "exitCode": 1, "finishedAt": stamp(86400)}), "app")
        assert pod_alerts([diagnosis], NOW) == []

    def test_image_pull_backoff(self) -> None:
        """ImagePullBackOff is the pod's status and an alert."""
        rs = replicaset(deployment(), "7d9f8", revision=4, replicas=1)
        diagnosis = diagnose_pod(pod(rs, "i", ready=False, phase="Pending", waiting={
            "reason": "ImagePullBackOff", "message": 'Back-off pulling image "x:v9"'}), "app")
        assert diagnosis.status == "ImagePullBackOff"
        assert "ImagePullBackOff on payment-api-7d9f8-i" in pod_alerts([diagnosis], NOW)

    def test_terminating(self) -> None:
        """A pod with a deletionTimestamp is Terminating and not counted as missing readiness."""
        rs = replicaset(deployment(), "7d9f8", revision=4, replicas=1)
        diagnosis = diagnose_pod(pod(rs, "t", ready=False, deleting=True), "app")
        assert diagnosis.status == "Terminating"
        assert pod_alerts([diagnosis], NOW) == []

    def test_init_container_failure(self) -> None:
        """A failing init container shows as Init:<reason>."""
        rs = replicaset(deployment(), "7d9f8", revision=4, replicas=1)
        item = pod(rs, "n", ready=False, phase="Pending")
        item["spec"]["initContainers"] = [{"name": "migrate", "image": "m"}]
        item["status"]["initContainerStatuses"] = [{"name": "migrate", "ready": False, "restartCount": 3,
                                                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
        assert diagnose_pod(item, "app").status == "Init:CrashLoopBackOff"


class TestEvents:
    def test_dedup_newest_first_limit(self) -> None:
        """The same warning on several pods is one line with summed counts; newest first; at most five."""
        events = [
            event("Pod", "inv-a", "BackOff", "Back-off restarting failed container app in pod inv-a",
                  seconds_ago=30, count=4),
            event("Pod", "inv-b", "BackOff", "Back-off restarting failed container app in pod inv-b",
                  seconds_ago=10, count=6),
            event("ReplicaSet", "inv-rs", "FailedCreate", "exceeded quota: compute", seconds_ago=400),
            event("Pod", "other", "BackOff", "Back-off restarting failed container app in pod other"),
            event("Pod", "inv-a", "Pulled", "Container image already present", type_="Normal"),
            *(event("Pod", "inv-a", f"Reason{n}", f"message {n}", seconds_ago=1000 + n) for n in range(6)),
        ]
        objects = {("Pod", "inv-a"), ("Pod", "inv-b"), ("ReplicaSet", "inv-rs")}
        lines = recent_warnings(events, objects)
        assert len(lines) == 5
        first = lines[0]
        assert (first.reason, first.count, first.objects) == ("BackOff", 10, ("pod/inv-b", "pod/inv-a"))
        assert lines[1].reason == "FailedCreate"
        assert all(line.reason != "Pulled" for line in lines)


class TestHpaAndLock:
    def test_hpa_for_deployment(self) -> None:
        """The autoscaler targeting the deployment gives min, max, current and its metric."""
        summary = hpa_for("payment-api", [hpa("orders"), hpa("payment-api", current=4)])
        assert summary is not None
        assert (summary.min_replicas, summary.max_replicas, summary.current) == (3, 10, 4)
        assert summary.metrics == ("cpu 45% / 70%",)

    def test_held_lock(self) -> None:
        """A Lease with a holder renewed within its duration is a held deploy lock."""
        lock = deploy_lock(lease("payment"), NOW)
        assert lock is not None
        assert lock.holder == "U0ALICE@svcbot-7f9c"
        assert lock.expires is not None
        assert round(lock.expires - NOW) == 55

    def test_expired_or_released_lock(self) -> None:
        """An expired Lease or one without a holder is no lock."""
        assert deploy_lock(lease("payment", renewed_ago=120, duration=60), NOW) is None
        assert deploy_lock(lease("payment", holder=""), NOW) is None
        assert deploy_lock(None, NOW) is None


@given(st.integers(0, 10**9))
def test_human_age_is_short(seconds: int) -> None:
    """Ages never take more than six characters."""
    assert len(human_age(seconds)) <= 6
