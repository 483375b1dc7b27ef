"""Crash points: the approve-and-deploy path driven through `svcbot serve` (signed requests from the sandbox
Slack) and SIGKILLed at each point where the store changes (bot/core/crashpoints.py: SVCBOT_CRASH_AT makes the
process kill itself right there), then a fresh `svcbot serve` on the same store. For every point:

- no deploy applied twice (one set-image PATCH at most, and no rollback PATCH nobody asked for);
- the request in an end state, or still actionable (PENDING: approve, reject, cancel or expiry move it);
- the deploy lock free within its Lease duration after the dead holder's last renewal;
- the audit trail complete: every state the request went through is an audit event, in order;
- the Slack message eventually true: it shows the state the store has.

Run on SQLite, and on PostgreSQL when SVCBOT_TEST_DATABASE_URL is set (a failure under CI without it).
Points run three at a time, each on its own service and store, against one sandbox.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from approval_world import (
    ALICE,
    CAROL,
    ROOT,
    ApprovalWorld,
    approvals_catalog,
    free_port,
    wait_until,
    write_catalog,
)
from postgres_support import postgres_schema

from bot.deploys.store import FINAL, RequestRecord, State, Store
from bot.insight import kube_facts
from sandbox.kube.registry import Repository
from sandbox.slack import SlackSandbox
from sandbox.stack import SandboxStack

# Every boundary on the path, in the order the path reaches them.
POINTS = (
    "after:request.created",  # the request stored PENDING; its approval message not yet posted
    "after:thread.set",  # the message posted and its ts stored; not yet audited as posted
    "after:approval.posted",  # the message audited; nobody clicked yet
    "after:vote.approve",  # the click's vote stored; the request not yet APPROVED
    "after:request.approved",  # PENDING -> APPROVED; no lock, no run
    "after:lock.acquired",  # the Lease taken; the run not claimed
    "after:request.running",  # APPROVED -> RUNNING with its steps; nothing executed
    "after:step.started:0",  # set image about to be sent
    "after:step.finished:0",  # the image set
    "after:step.started:1",  # waiting for the rollout
    "after:step.finished:1",  # rolled out
    "after:step.started:2",  # probing
    "after:step.finished:2",  # probed
    "after:request.succeeded",  # RUNNING -> SUCCEEDED: the outcome owed to Slack, the lock not yet released
    "after:outbox.sent",  # the first lines sent to the thread and marked
    "after:slack.thread_posted",  # lines (with the final one) in the thread, not marked, the message not updated
    "after:slack.outcome_updated",  # the message updated, the outcome not yet marked sent
)
SERVICES = ("gateway", "orders", "inventory")
# How a message shows a state that is not a run's outcome (bot/render/approvals_view.py's words).
SHOWN_AS = {State.CANCELLED: ("withdrawn", "not started", "superseded", "CANCELLED"), State.REJECTED: ("rejected",),
            State.EXPIRED: ("expired",)}
FAST = {"SVCBOT_RUN_HEARTBEAT": "0.2", "SVCBOT_RUN_LOCK_RENEW": "0.5", "SVCBOT_RUN_LEASE_DURATION": "3",
        "SVCBOT_RUN_POLL": "0.05", "SVCBOT_RUN_STALE_AFTER": "2", "SVCBOT_RUN_STRANDED_AFTER": "2",
        "SVCBOT_BACKGROUND_INTERVAL": "0.3", "SVCBOT_SHUTDOWN_GRACE": "5"}
LEASE_DURATION = 3.0
REPORT = Path(os.environ.get("SVCBOT_CRASH_REPORT", "")) if os.environ.get("SVCBOT_CRASH_REPORT") else None


@dataclass
class Outcome:
    point: str
    service: str
    request_id: str
    at_kill: str
    after_restart: str


@pytest.fixture(name="sandbox", scope="module")
def _sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxStack, SlackSandbox, Path]]:
    directory = tmp_path_factory.mktemp("crash")
    stack = SandboxStack()
    stack.start(directory / "sandbox", time_scale=0.02)
    slack = SlackSandbox().start()
    try:
        yield stack, slack, directory
    finally:
        slack.stop()
        stack.stop()


def world_for(stack: SandboxStack, slack: SlackSandbox, directory: Path, kubeconfig: Path) -> ApprovalWorld:
    directory.mkdir(parents=True, exist_ok=True)
    catalog_path = write_catalog(directory / "catalog.yaml", approvals_catalog(stack))
    return ApprovalWorld(stack=stack, slack=slack, directory=directory, catalog_path=catalog_path,
                         db_path=directory / "unused.db", kubeconfig=kubeconfig)


@dataclass
class Served:
    """`svcbot serve` (HTTP mode) as its own OS process; its log in a file (a pipe nobody reads fills up)."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.log.read_text(errors="replace")


class Lane:
    """Kill points one after the other on one service and one store: `svcbot serve` is armed for a point
    (through its crash file), asked to deploy, killed there, and a fresh one started on the same store checks
    what was left and is armed for the next point."""

    def __init__(self, world: ApprovalWorld, store_url: str, service: str) -> None:
        self.world = world
        self.store_url = store_url
        self.service = service
        self.point = ""
        self.crash_log = world.directory / "crashed.txt"
        self.crash_file = world.directory / "crash-at.txt"
        self.starts = 0
        self.store = Store.open(store_url, recover=False)
        self.served: Served | None = None

    def arm(self, point: str) -> None:
        self.crash_file.write_text(point)
        if point:
            self.point = point

    def serve(self) -> Served:
        world = self.world
        port, health_port = free_port(), free_port()
        env = {**os.environ, **world.environ(), **FAST, "SVCBOT_CATALOG": str(world.catalog_path),
               "SVCBOT_DB": self.store_url, "KUBECONFIG": str(world.kubeconfig), "PYTHONPATH": str(ROOT),
               "SVCBOT_CRASH_LOG": str(self.crash_log), "SVCBOT_CRASH_FILE": str(self.crash_file)}
        self.starts += 1
        log = world.directory / f"serve-{self.starts}.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--health-port", str(health_port)], env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
        served = Served(process, port, log)

        def ready() -> bool:
            assert process.poll() is None, f"svcbot serve exited early: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_until(ready, 60, "svcbot serve ready")
        return served

    def requests(self) -> list[RequestRecord]:
        return self.store.requests(service=self.service, env="prod", limit=50)

    def run(self, point: str, version: str) -> Outcome:
        world, store = self.world, self.store
        self.arm(point)
        first = self.served or self.serve()
        before = len(world.patches("prod", self.service))
        body, headers = world.slack.slash_command_request(f"deploy {self.service} prod {version}", user_id=ALICE,
                                                          channel_id="C0SANDBOX")
        with contextlib.suppress(OSError):  # it may die before answering
            world.slack.post(first.events_url, body, headers)

        known = {request.id for request in self.requests()}

        def asked() -> RequestRecord | None:
            found = [request for request in self.requests() if request.id not in known]
            if first.process.poll() is not None:
                return found[0] if found else None
            return found[0] if found and found[0].thread_ts else None

        request = wait_until(asked, 60, f"{self.point}: the request of {self.service}")
        if first.process.poll() is None:
            with contextlib.suppress(OSError):
                world.click(first.events_url, "svc_approve", request, CAROL)
        try:
            code = first.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.point} never reached: {first.stop()[-3000:]}") from None
        assert code == -signal.SIGKILL, f"{self.point}: svcbot serve ended {code}, not by SIGKILL"
        assert self.point in self.crash_log.read_text().splitlines()
        first.stop()
        self.arm("")
        at_kill = self.describe(store.request(request.id))
        second = self.served = self.serve()
        try:
            settled = wait_until(lambda: self.settled(request.id), 60, f"{self.point}: everything true again")
            self.check_patches(request.id, before)
            self.check_audit(request.id)
            after = self.describe(settled)
            if settled.state is State.PENDING:  # still actionable: its requester withdraws it
                world.slash(second.events_url, f"cancel {request.id}", ALICE)
                world_state = wait_until(lambda: self.message_true(store.request(request.id)) and
                                         store.request(request.id).state is State.CANCELLED, 30, "withdrawn")
                assert world_state
                after += "; withdrawn by its requester"
        except BaseException:
            self.stop()
            raise
        after += f"; the thread has {self.repeated(request)} line(s) twice"
        return Outcome(point, self.service, request.id, at_kill, after)

    def stop(self) -> None:
        served, self.served = self.served, None
        if served is not None:
            stderr = served.stop()
            assert "Traceback" not in stderr, stderr[-3000:]

    def repeated(self, request: RequestRecord) -> int:
        if not request.thread_ts:
            return 0
        lines = [line for message in self.world.slack.messages(request.channel, thread_ts=request.thread_ts)
                 for line in str(message.get("text", "")).splitlines()]
        return len(lines) - len(set(lines))

    # --- what must hold ---------------------------------------------------------------------------------

    def settled(self, request_id: str) -> RequestRecord | None:
        request = self.store.request(request_id)
        if request.state not in FINAL and request.state is not State.PENDING:
            return None
        if request.thread_ts and not self.message_true(request):
            return None
        if self.lock_held():
            return None
        if any(item.request_id == request_id for item in self.store.outbox_unsent()):
            return None  # Slack is still owed something
        return request

    def message_true(self, request: RequestRecord) -> bool:
        if not request.thread_ts:
            return True  # never posted: nothing in Slack can say anything wrong
        message = self.world.slack.message(request.channel, request.thread_ts)
        if message is None:
            return False
        text = json.dumps(message)
        if request.state is State.PENDING:
            return "svc_approve" in text
        return any(word in text for word in SHOWN_AS.get(request.state, (request.state.value,))) \
            and "svc_approve" not in text

    def lock_held(self) -> bool:
        assert self.world.stack.kube is not None
        cluster, namespace = self.world.stack.kube.env("prod")
        now = time.time()
        for lease in cluster.objects("coordination.k8s.io/leases", namespace):
            if lease["metadata"]["name"] != kube_facts.lease_name(self.service):
                continue
            lock = kube_facts.deploy_lock(lease, now)
            if lock is not None:
                assert lock.renewed is not None, lease
                assert now - lock.renewed < LEASE_DURATION + 1, \
                    f"{self.point}: the lock outlived its Lease duration: {lease['spec']}"
                return True
        return False

    def check_patches(self, request_id: str, before: int) -> None:
        patches = self.world.patches("prod", self.service)[before:]
        assert len(patches) <= 1, f"{self.point}: the deployment was changed {len(patches)} times: {patches}"

    def check_audit(self, request_id: str) -> None:
        events = self.store.audit(request_id)
        path = [event.to_state for event in events if event.to_state]
        assert path[0] == State.PENDING.value, path
        request = self.store.request(request_id)
        assert path[-1] == request.state.value, f"{self.point}: audit {path}, request {request.state}"
        for earlier, later in itertools.pairwise(path):
            assert State(later) in NEXT_OF[State(earlier)], f"{self.point}: audit jumps {earlier} -> {later}"
        moved = [event for event in events if event.from_state]
        for event in moved:
            assert event.from_state in path, event

    def describe(self, request: RequestRecord) -> str:
        run = self.store.run(request.id)
        steps = ",".join(step.state.value.lower() for step in self.store.steps(request.id))
        message = "no message"
        if request.thread_ts:
            found = self.world.slack.message(request.channel, request.thread_ts)
            message = "message up to date" if found and self.message_true(request) else "message stale"
        lock = "lock held" if self.lock_held() else "lock free"
        owed = sum(1 for item in self.store.outbox_unsent() if item.request_id == request.id)
        return (f"{request.state.value}{' run' if run else ''}{' [' + steps + ']' if steps else ''}, {message}, "
                f"{lock}, {owed} owed to Slack")


NEXT_OF = {state: frozenset(targets) for state, targets in
           {State.PENDING: {State.APPROVED, State.REJECTED, State.EXPIRED, State.CANCELLED},
            State.APPROVED: {State.RUNNING, State.CANCELLED},
            State.RUNNING: {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK, State.INTERRUPTED,
                            State.CANCELLED}}.items()}
for _state in FINAL:
    NEXT_OF[_state] = frozenset()


def publish(stack: SandboxStack, service: str, version: str) -> None:
    """The sandbox registry gets the tag (an unknown tag is ErrImagePull, like a real registry's)."""
    assert stack.kube is not None
    repos = stack.kube.world.registry.repos
    repos.setdefault(f"registry.example.com/{service}", Repository()).tags.add(version)


def run_points(sandbox: tuple[SandboxStack, SlackSandbox, Path], store_url: Any, label: str) -> list[Outcome]:
    stack, slack, directory = sandbox
    outcomes: list[Outcome] = []

    def lane(index: int) -> list[Outcome]:
        service = SERVICES[index]
        place = directory / label / service
        url = store_url(place)
        world = world_for(stack, slack, place, directory / "sandbox" / "kubeconfig")
        runner = Lane(world, url, service)
        done = []
        try:
            for number, point in enumerate(POINTS):
                if number % len(SERVICES) != index:
                    continue
                version = f"7.{number}.{len(label)}"
                publish(stack, service, version)
                done.append(runner.run(point, version))
            runner.stop()
        finally:
            runner.store.close()
            world.close()
        return done

    with ThreadPoolExecutor(len(SERVICES)) as pool:
        for result in pool.map(lane, range(len(SERVICES))):
            outcomes.extend(result)
    outcomes.sort(key=lambda outcome: POINTS.index(outcome.point))
    if REPORT is not None:
        with REPORT.open("a", encoding="utf-8") as file:
            for outcome in outcomes:
                file.write(f"{label}\t{outcome.point}\t{outcome.at_kill}\t{outcome.after_restart}\n")
    return outcomes


def test_crash_points_sqlite(sandbox: tuple[SandboxStack, SlackSandbox, Path]) -> None:
    outcomes = run_points(sandbox, lambda place: str(place / "svcbot.db"), "sqlite")
    assert [outcome.point for outcome in outcomes] == list(POINTS)


def test_crash_points_postgres(sandbox: tuple[SandboxStack, SlackSandbox, Path]) -> None:
    schemas: list[Any] = []

    def url(place: Path) -> str:
        manager = postgres_schema()
        schemas.append(manager)
        return str(manager.__enter__())

    try:
        outcomes = run_points(sandbox, url, "postgres")
    finally:
        for manager in schemas:
            manager.__exit__(None, None, None)
    assert [outcome.point for outcome in outcomes] == list(POINTS)
