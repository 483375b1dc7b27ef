"""Deploy locks: one Kubernetes Lease per service in the environment's namespace (`svcbot-deploy-<service>`).

A Lease, not a row in our store, so every bot replica and every `svcbot run` on any machine agrees, and
a lock whose holder died expires by itself. The protocol is client-go's leader election
(tools/leaderelection, resourcelock/leaselock.go) for a mutex: read; create when absent (a racing
create gets 409 AlreadyExists); take over only when the holder's renewTime + leaseDurationSeconds has
passed; every write is a PUT carrying the resourceVersion read, so two takers cannot both win (409).
The holder renews while the run lasts and releases by clearing holderIdentity.

Expiry is judged on this machine's clock against the Lease's renewTime (client-go uses the observer's
clock from when it last saw the record change); keep the clocks of bot replicas in sync (NTP).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from bot.core.errors import Conflict
from bot.insight import kube_facts as rollout

if TYPE_CHECKING:
    from bot.clients.kube import DeployKube
    from bot.deploys.plan import Plan

log = structlog.get_logger("svcbot.locks")

# The process holding a lock: two processes starting the same run (a retried approval) must not both
# believe they hold it, so the holder is the run *and* the process.
PROCESS = f"{socket.gethostname()}/{os.getpid()}"
LEASE_DURATION = 60  # seconds a lock outlives its holder's last renewal
ANNOTATION = "svcbot.io/"  # run, user, action, version, owner


def micro_time(epoch: float) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds, UTC."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock_text(epoch: float | None) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%H:%M:%S UTC") if epoch is not None else "?"


def _ours(lease: Mapping[str, Any], holder: str) -> bool:
    """Held by this run in this process (a renewal), not by the same run started elsewhere."""
    spec = lease.get("spec") or {}
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    return spec.get("holderIdentity") == holder and annotations.get(ANNOTATION + "owner") == PROCESS


def describe_holder(lease: Mapping[str, Any], now: float) -> str:
    """Who holds a lock, since when, for which run: the words of a refusal."""
    lock = rollout.deploy_lock(lease, now)
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    if lock is None:
        return "nobody"
    user = annotations.get(ANNOTATION + "user") or lock.holder
    run = annotations.get(ANNOTATION + "run")
    action = annotations.get(ANNOTATION + "action") or "deploy"
    version = annotations.get(ANNOTATION + "version")
    what = f"{action} {run}" if run else "a run"
    if version:
        what += f" ({version})"
    since = f" since {_clock_text(lock.acquired)}" if lock.acquired is not None else ""
    ago = f" ({rollout.human_age(now - lock.acquired)} ago)" if lock.acquired is not None else ""
    expires = f"; it expires at {_clock_text(lock.expires)} unless renewed" if lock.expires is not None else ""
    return f"{user} holds it for {what}{since}{ago}{expires}"


class LeaseLock:
    """A held deploy lock: renew it while the run lasts, release it at the end."""

    def __init__(self, locker: LeaseLocker, kube: DeployKube, *, namespace: str, name: str, holder: str,
                 lease: dict[str, Any]) -> None:
        self._locker = locker
        self._kube = kube
        self.namespace = namespace
        self.name = name
        self.holder = holder
        self._lease = lease

    def renew(self) -> None:
        """Move renewTime forward; Conflict when the Lease is no longer ours."""
        for _attempt in range(3):
            lease = dict(self._lease)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.holder:
                break
            spec["renewTime"] = micro_time(self._locker.clock())
            lease["spec"] = spec
            try:
                self._lease = self._kube.replace_lease(self.namespace, self.name, lease)
            except Conflict:
                current = self._kube.read_lease(self.namespace, self.name)
                if current is None:
                    break
                self._lease = current
                continue
            return
        now = self._locker.clock()
        raise Conflict(f"deploy lock {self.name} in namespace {self.namespace} is no longer held by "
                       f"{self.holder}: {describe_holder(self._lease, now)}")

    def release(self) -> None:
        """Clear the holder (client-go's ReleaseOnCancel), only if it is still us; best effort."""
        current = self._kube.read_lease(self.namespace, self.name)
        if current is None or (current.get("spec") or {}).get("holderIdentity") != self.holder:
            return
        spec = dict(current.get("spec") or {})
        spec.pop("holderIdentity", None)
        spec["renewTime"] = micro_time(self._locker.clock())
        current["spec"] = spec
        try:
            self._kube.replace_lease(self.namespace, self.name, current)
        except Conflict:
            log.info("lock.release_raced", lease=self.name, namespace=self.namespace)


class LeaseLocker:
    """Takes deploy locks as Leases; `kube_for` gives the client of an environment's cluster."""

    def __init__(self, kube_for: Callable[[str], DeployKube], *, duration: int = LEASE_DURATION,
                 clock: Callable[[], float] = time.time) -> None:
        self.kube_for = kube_for
        self.duration = duration
        self.clock = clock

    def acquire(self, plan: Plan, run_id: str, user: str) -> LeaseLock:
        """Take the lock of the plan's service in its environment; Conflict saying who holds it."""
        workload = plan.workload
        kube = self.kube_for(workload.cluster)
        name = rollout.lease_name(workload.service)
        holder = f"{user} (run {run_id})"
        annotations = {ANNOTATION + "run": run_id, ANNOTATION + "user": user, ANNOTATION + "action": plan.action,
                       ANNOTATION + "version": plan.version, ANNOTATION + "owner": PROCESS}
        for _attempt in range(3):
            now = self.clock()
            current = kube.read_lease(workload.namespace, name)
            held = current is not None and rollout.deploy_lock(current, now) is not None
            if held and current is not None and not _ours(current, holder):
                raise Conflict(f"{workload.service} is already being deployed in {workload.env}: "
                                   f"{describe_holder(current, now)}")
            spec = {"holderIdentity": holder, "leaseDurationSeconds": self.duration,
                    "acquireTime": micro_time(now), "renewTime": micro_time(now)}
            try:
                if current is None:
                    lease = kube.create_lease(workload.namespace, {
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": name, "annotations": annotations,
                                     "labels": {"app.kubernetes.io/managed-by": "svcbot"}},
                        "spec": spec | {"leaseTransitions": 0}})
                else:
                    previous = (current.get("spec") or {}).get("holderIdentity")
                    if previous and previous != holder:
                        log.warning("lock.taken_over", lease=name, namespace=workload.namespace,
                                    previous_holder=previous, reason="its holder stopped renewing it")
                    metadata = dict(current.get("metadata") or {})
                    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
                    transitions = int((current.get("spec") or {}).get("leaseTransitions") or 0) + 1
                    lease = kube.replace_lease(workload.namespace, name, {
                        **current, "metadata": metadata, "spec": spec | {"leaseTransitions": transitions}})
            except Conflict:
                continue  # someone wrote it between our read and write: look again
            log.info("lock.acquired", lease=name, namespace=workload.namespace, holder=holder)
            return LeaseLock(self, kube, namespace=workload.namespace, name=name, holder=holder, lease=lease)
        raise Conflict(f"could not take the deploy lock {name} in {workload.env}: it kept changing; try again")
