"""Our own seams for engine tests: an in-memory deploy lock, fake step kinds, a recording progress sink."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from bot.core.errors import Conflict
from bot.deploys.engine import RunSettings
from bot.deploys.plan import Plan, PlannedStep
from bot.deploys.steps.base import StepContext, StepFailed, StepKind, Workload
from bot.deploys.store import NewRequest, State, Store

FAST = RunSettings(heartbeat=0.05, lock_renew=0.1, poll=0.02, lease_duration=2, stale_after=1.0,
                   rollback_timeout=10.0)


class MemoryLocker:
    """One lock per (service, env) in a dict; Conflict names the holder like the Lease locker does."""

    def __init__(self) -> None:
        self.holders: dict[tuple[str, str], str] = {}
        self.released: list[str] = []
        self.renewals = 0
        self.handed_out: dict[str, MemoryLock] = {}  # run id -> the lock its run got (to take it away)
        self._lock = threading.Lock()

    def acquire(self, plan: Plan, run_id: str, user: str) -> MemoryLock:
        key = (plan.service, plan.env)
        with self._lock:
            holder = self.holders.get(key)
            if holder is not None:
                raise Conflict(f"{plan.service} is already being deployed in {plan.env}: {holder} holds it")
            self.holders[key] = f"{user} (run {run_id})"
            lock = self.handed_out[run_id] = MemoryLock(self, key, run_id)
        return lock

    def release(self, key: tuple[str, str], run_id: str) -> None:
        with self._lock:
            self.holders.pop(key, None)
            self.released.append(run_id)


class MemoryLock:
    def __init__(self, locker: MemoryLocker, key: tuple[str, str], run_id: str) -> None:
        self.locker = locker
        self.key = key
        self.run_id = run_id
        self.lost = False

    def renew(self) -> None:
        self.locker.renewals += 1
        if self.lost:
            raise Conflict("someone else holds it now")

    def release(self) -> None:
        self.locker.release(self.key, self.run_id)


GATES: dict[str, threading.Event] = {}  # fake steps with {"gate": name} wait until the test sets it
EXECUTED: list[tuple[str, Mapping[str, Any]]] = []


def fake_execute(args: Mapping[str, Any], ctx: StepContext) -> str:
    EXECUTED.append(("fake", args))
    ctx.output.add(f"fake step {ctx.seq} says {args.get('say', 'hi')}")
    if args.get("changes"):
        ctx.facts.from_image, ctx.facts.from_revision = "registry.example.com/payment:1.4.1", 3
        ctx.facts.to_image, ctx.facts.changed = "registry.example.com/payment:9.9.9", True
    gate = args.get("gate")
    if gate:
        while not GATES[gate].is_set():
            ctx.sleep(0.01)
    if args.get("fail"):
        raise StepFailed(str(args["fail"]))
    return f"fake step {ctx.seq} done"


def fake_undo(args: Mapping[str, Any], ctx: StepContext) -> str:
    EXECUTED.append(("undo", args))
    ctx.facts.to_image = "registry.example.com/payment:1.4.1"
    return f"restored revision {args.get('revision')}"


def fake_wait(args: Mapping[str, Any], ctx: StepContext) -> str:
    EXECUTED.append(("wait_rollout", args))
    return "rolled out"


def describe_fake(args: Mapping[str, Any], _workload: Workload) -> str:
    return f"fake {args.get('say', '')}".strip()


FAKE_KINDS = {
    "fake": StepKind("fake", fake_execute, describe_fake),
    "undo": StepKind("undo", fake_undo, lambda args, _w: f"undo to {args.get('revision')}"),
    "wait_rollout": StepKind("wait_rollout", fake_wait, lambda _args, _w: "wait"),
}

WORKLOAD = Workload(service="payment", env="staging", cluster="local", namespace="staging",
                    deployment="payment-api", container="app")


def fake_plan(*steps: tuple[str, dict[str, Any], bool], service: str = "payment") -> Plan:
    """A plan of fake steps: (target, args, rollback_on_failure) each."""
    return Plan(action="deploy", service=service, env="staging", version="9.9.9",
                workload=WORKLOAD, image="registry.example.com/payment:9.9.9", pipeline="fake",
                targets=tuple(dict.fromkeys(target for target, _args, _rb in steps)),
                steps=tuple(PlannedStep(target=target, kind="fake", args=args, rollback_on_failure=rollback)
                            for target, args, rollback in steps),
                variables={}, workspace=".")


def approved_request(store: Store, plan: Plan, user: str = "U0ALICE") -> str:
    request = store.create_request(NewRequest(kind="deploy", service=plan.service, env=plan.env,
                                              version=plan.version, requester=user, plan=plan.to_json(),
                                              state=State.APPROVED))
    return request.id


class RecordingSink:
    """Keeps every progress event: what the Slack wiring would post."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def started(self, run: Any) -> None:
        self.events.append(("started", run.state.value))

    def step(self, run: Any, step: Any, state: Any) -> None:
        self.events.append(("step", f"{step.seq}:{state.value}"))

    def finished(self, run: Any) -> None:
        self.events.append(("finished", run.state.value))


