"""Lock housekeeping against the sandbox Kubernetes API: a deploy Lease still held for a run the store says
is over (its replica died) is released once its holder has been silent; live, recent and foreign locks stay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from replica_world import pending_request

from bot.clients.kube import DeployKube
from bot.core.errors import Conflict
from bot.deploys.background import for_deploys, lock_housekeeping_job
from bot.deploys.locks import LeaseLocker
from bot.deploys.plan import Plan
from bot.deploys.steps.base import Workload
from bot.deploys.store import Owner, State, StepSpec, Store
from bot.insight import kube_facts as rollout
from bot.runtime import Runtime, build_runtime
from sandbox.stack import SandboxStack


@dataclass
class World:
    runtime: Runtime
    store: Store

    def kube_for(self, cluster: str) -> DeployKube:
        return DeployKube(self.runtime.backends.kube(cluster))

    def plan(self, service: str, env: str) -> Plan:
        spec = self.runtime.catalog.environment(env)
        workload = Workload(service=service, env=env, cluster=spec.cluster, namespace=spec.namespace,
                            deployment=self.runtime.catalog.deployment_name(service), container="app")
        return Plan(action="deploy", service=service, env=env, version="9.9.9", workload=workload, image="x:9.9.9",
                    pipeline="p", targets=(), steps=(), variables={}, workspace=".")

    def lock(self, service: str, env: str, run_id: str, *, silent_for: float) -> None:
        """Take the deploy lock as a run would, its last renewal `silent_for` seconds ago."""
        locker = LeaseLocker(self.kube_for, duration=60, clock=lambda: time.time() - silent_for)
        locker.acquire(self.plan(service, env), run_id, "U0ALICE")

    def holder(self, service: str, env: str) -> str | None:
        spec = self.runtime.catalog.environment(env)
        lease = self.kube_for(spec.cluster).read_lease(spec.namespace, rollout.lease_name(service))
        held = rollout.deploy_lock(lease, time.time())
        return held.holder if held is not None else None

    def run_in_state(self, state: State, *, heartbeat_age: float = 0.0) -> str:
        """A request in `state`; from RUNNING on, its run belongs to another process (a dead pod's)."""
        request_id = pending_request(self.store)
        self.store.transition(request_id, State.APPROVED, actor="U0CAROL")
        if state is not State.APPROVED:
            dead = Store(self.store.database, owner=Owner("old-pod", 7, "old-pod-7"), recover=False)
            dead.claim_run(request_id, [StepSpec("deploy", "hold", "hold")], actor="U0CAROL",
                           now=time.time() - heartbeat_age)
            if state is not State.RUNNING:
                assert dead.finish_run(request_id, state)
        return request_id


@pytest.fixture(name="world")
def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    stack = SandboxStack()
    stack.start(tmp_path / "sandbox", time_scale=0.02)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "sandbox" / "kubeconfig"))
    runtime = build_runtime(tmp_path / "sandbox" / "catalog.yaml")
    store = Store.open(str(tmp_path / "svcbot.db"))
    try:
        yield World(runtime=runtime, store=store)
    finally:
        store.close()
        runtime.close()
        stack.stop()


def test_only_the_lock_of_a_run_that_is_over_and_silent_is_released(world: World) -> None:
    """Interrupted and silent: released. Running, recently renewed, or a run this store does not know: kept."""
    services = list(world.runtime.catalog.services)[:4]
    assert len(services) == 4, services
    env = next(name for name, spec in world.runtime.catalog.environments.items() if not spec.protected)
    dead_run = world.run_in_state(State.INTERRUPTED)
    live_run = world.run_in_state(State.RUNNING)
    just_finished = world.run_in_state(State.FAILED)
    world.lock(services[0], env, dead_run, silent_for=45)
    world.lock(services[1], env, live_run, silent_for=45)
    world.lock(services[2], env, just_finished, silent_for=2)
    world.lock(services[3], env, "feedbeef", silent_for=45)  # another store's run (a laptop's `svcbot run`)
    job = lock_housekeeping_job(world.runtime.catalog, world.kube_for, quiet=30)
    assert job.run(world.store) == 1
    assert world.holder(services[0], env) is None
    assert world.holder(services[1], env) == f"U0ALICE (run {live_run})"
    assert world.holder(services[2], env) == f"U0ALICE (run {just_finished})"
    assert world.holder(services[3], env) == "U0ALICE (run feedbeef)"
    assert job.run(world.store) == 0  # nothing left to do


def test_a_released_lock_can_be_taken_by_the_next_deploy(world: World) -> None:
    """After housekeeping released a dead run's lock, the next run takes it at once instead of waiting for expiry."""
    service = next(iter(world.runtime.catalog.services))
    env = next(name for name, spec in world.runtime.catalog.environments.items() if not spec.protected)
    dead_run = world.run_in_state(State.INTERRUPTED)
    world.lock(service, env, dead_run, silent_for=45)
    locker = LeaseLocker(world.kube_for, duration=60)
    with pytest.raises(Conflict, match="already being deployed"):
        locker.acquire(world.plan(service, env), "nextrun1", "U0BOB")
    lock_housekeeping_job(world.runtime.catalog, world.kube_for).run(world.store)
    locker.acquire(world.plan(service, env), "nextrun1", "U0BOB")
    assert world.holder(service, env) == "U0BOB (run nextrun1)"


def test_the_bots_background_work_runs_all_three_jobs_on_its_own_clients(world: World) -> None:
    """for_deploys: one tick on the runtime's own store and clusters expires, recovers and frees locks."""
    service = next(iter(world.runtime.catalog.services))
    env = next(name for name, spec in world.runtime.catalog.environments.items() if not spec.protected)
    bot_store = world.runtime.deploys.store()  # opened first: the stale run below is the sweep's to find
    dead_run = world.run_in_state(State.RUNNING, heartbeat_age=600)
    overdue = pending_request(world.store, expires_at=time.time() - 1)
    expired: list[str] = []
    work = for_deploys(world.runtime.deploys, on_expired=lambda request: expired.append(request.id))
    assert work.tick()
    assert expired == [overdue]
    assert bot_store.request(dead_run).state is State.INTERRUPTED
    assert bot_store.interrupted_on_open == []
    world.lock(service, env, dead_run, silent_for=45)
    work.tick()  # housekeeping runs every 30 s: not yet
    assert world.holder(service, env) is not None
    work.stop()
    assert work.runs == {"approval-expiry": 1, "run-recovery": 1, "stranded-approvals": 1,
                         "lock-housekeeping": 1}
