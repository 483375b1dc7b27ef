"""The deploy lock belongs to a run in one process: the same run started in another process is refused."""

from __future__ import annotations

import pytest
from deploy_world import DeployWorld

from bot.clients.kube import DeployKube
from bot.core.errors import Conflict
from bot.deploys.locks import ANNOTATION, LeaseLocker
from bot.deploys.plan import plan_deploy


def test_same_run_other_process_is_refused(world: DeployWorld) -> None:
    """A Lease held for run X by another process is not 'ours' just because the run id matches."""
    backends = world.runtime.backends
    locker = LeaseLocker(kube_for=lambda cluster: DeployKube(backends.kube(cluster)))
    plan = plan_deploy(backends.catalog, "payment", "staging", "1.4.2")
    lock = locker.acquire(plan, "run12345", "U0ALICE")
    kube = DeployKube(backends.kube(plan.workload.cluster))
    lease = kube.read_lease(plan.workload.namespace, "svcbot-deploy-payment")
    assert lease is not None
    lease["metadata"]["annotations"][ANNOTATION + "owner"] = "another-pod/1"
    kube.replace_lease(plan.workload.namespace, "svcbot-deploy-payment", lease)
    with pytest.raises(Conflict, match="already being deployed in staging"):
        locker.acquire(plan, "run12345", "U0ALICE")
    lock.release()
