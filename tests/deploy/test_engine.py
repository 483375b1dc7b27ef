"""The run engine with fake step kinds (our own seam): order, failure and rollback, cancel, locks, progress."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from deploy_fakes import EXECUTED, GATES, MemoryLocker, RecordingSink, approved_request, fake_plan

from bot.core.errors import Conflict
from bot.deploys.engine import RunEngine
from bot.deploys.progress import TerminalSink
from bot.deploys.store import State, StepState, Store

Engine = tuple[RunEngine, MemoryLocker]


def _states(store: Store, request_id: str) -> list[str]:
    return [f"{step.target}:{step.kind}:{step.state.value}" for step in store.steps(request_id)]


class TestOutcomes:
    def test_steps_run_in_order_and_the_run_succeeds(self, store: Store, engine: Engine) -> None:
        """Every step runs once in plan order; the request ends SUCCEEDED and the lock is released."""
        runner, locker = engine
        plan = fake_plan(("build", {"say": "a"}, False), ("deploy", {"say": "b"}, True))
        request_id = approved_request(store, plan)
        sink = RecordingSink()
        snapshot = runner.start(request_id, sink).wait(10)
        assert snapshot.state is State.SUCCEEDED
        assert [args["say"] for kind, args in EXECUTED] == ["a", "b"]
        assert sink.events == [("started", "RUNNING"), ("step", "0:RUNNING"), ("step", "0:SUCCEEDED"),
                               ("step", "1:RUNNING"), ("step", "1:SUCCEEDED"), ("finished", "SUCCEEDED")]
        assert locker.released == [request_id]
        assert snapshot.steps[0].output_tail == "fake step 0 says a"

    def test_failure_after_a_change_rolls_back(self, store: Store, engine: Engine) -> None:
        """A failing step in an on_failure: rollback target restores the revision the run replaced."""
        runner, _ = engine
        plan = fake_plan(("deploy", {"changes": True}, True), ("deploy", {"fail": "new pods crash"}, True),
                         ("deploy", {"say": "never"}, True))
        snapshot = runner.start(approved_request(store, plan)).wait(10)
        assert snapshot.state is State.ROLLED_BACK
        assert _states(store, snapshot.id) == [
            "deploy:fake:SUCCEEDED", "deploy:fake:FAILED", "deploy:fake:SKIPPED",
            "rollback:undo:SUCCEEDED", "rollback:wait_rollout:SUCCEEDED"]
        assert ("undo", {"revision": 3, "on_failure": True}) in EXECUTED
        assert "new pods crash" in snapshot.request.reason
        assert "rolled back to revision 3" in snapshot.request.reason
        assert snapshot.run is not None
        assert snapshot.run.rollback == "rolled back to revision 3 (registry.example.com/payment:1.4.1)"

    def test_failure_without_on_failure_just_fails(self, store: Store, engine: Engine) -> None:
        """A failing step in a target without on_failure ends FAILED and rolls nothing back."""
        runner, _ = engine
        plan = fake_plan(("migrate", {"changes": True}, False), ("migrate", {"fail": "migration 42 broke"}, False))
        snapshot = runner.start(approved_request(store, plan)).wait(10)
        assert snapshot.state is State.FAILED
        assert not any(kind == "undo" for kind, _ in EXECUTED)
        assert snapshot.steps[1].error == "migration 42 broke"

    def test_nothing_changed_means_nothing_to_roll_back(self, store: Store, engine: Engine) -> None:
        """A failure before the deployment was touched ends FAILED and says there was nothing to restore."""
        runner, _ = engine
        snapshot = runner.start(approved_request(store, fake_plan(("deploy", {"fail": "bad"}, True)))).wait(10)
        assert snapshot.state is State.FAILED
        assert "nothing to roll back" in snapshot.request.reason


class TestCancel:
    def test_cancel_while_a_step_waits_applies_on_failure_and_ends_cancelled(self, store: Store,
                                                                             engine: Engine) -> None:
        """Cancelling a run inside a waiting step stops it, rolls back the change, and ends CANCELLED."""
        runner, _ = engine
        GATES["hold"] = threading.Event()
        plan = fake_plan(("deploy", {"changes": True}, True), ("deploy", {"gate": "hold"}, True),
                         ("deploy", {"say": "never"}, True))
        handle = runner.start(approved_request(store, plan))
        while store.steps(handle.id)[1].state is not StepState.RUNNING:
            threading.Event().wait(0.01)
        assert runner.cancel(handle.id, "U0BOB")
        snapshot = handle.wait(10)
        assert snapshot.state is State.CANCELLED
        assert _states(store, handle.id)[1:3] == ["deploy:fake:CANCELLED", "deploy:fake:SKIPPED"]
        assert "cancelled by U0BOB" in snapshot.request.reason
        assert "rolled back" in snapshot.request.reason

    def test_cancel_from_another_process_arrives_through_the_store(self, db_path: Path, store: Store,
                                                                   engine: Engine) -> None:
        """A cancel written by another process's store is picked up by the owner's heartbeat."""
        runner, _ = engine
        GATES["hold"] = threading.Event()
        handle = runner.start(approved_request(store, fake_plan(("build", {"gate": "hold"}, False),
                                                                ("build", {"say": "never"}, False))))
        while store.steps(handle.id)[0].state is not StepState.RUNNING:
            threading.Event().wait(0.01)
        other = Store.open(str(db_path))
        assert other.request_cancel(handle.id, "U0CAROL")
        other.close()
        assert handle.wait(10).state is State.CANCELLED
        assert [kind for kind, _ in EXECUTED] == ["fake"]


    def test_a_run_interrupted_at_shutdown_stops_its_thread_without_rolling_back(self, db_path: Path, store: Store,
                                                                                 engine: Engine) -> None:
        """Shutdown with `interrupt`, then the store closed (as the process does on its way out): the run is
        marked INTERRUPTED and its thread stops at its next wait, though its heartbeat can no longer reach the
        store; nothing is rolled back and the next step never runs."""
        runner, _ = engine
        GATES["never"] = threading.Event()  # never set: the step waits until it is stopped
        handle = runner.start(approved_request(store, fake_plan(("deploy", {"changes": True, "gate": "never"}, True),
                                                                ("deploy", {"say": "after"}, True))))
        while store.steps(handle.id)[0].state is not StepState.RUNNING:
            threading.Event().wait(0.01)
        assert not runner.shutdown(0.0, interrupt=True)  # the grace is over at once: the run is left running
        store.close()
        deadline = time.monotonic() + 30
        while not handle.done():
            assert time.monotonic() < deadline, "the interrupted run's thread kept going"
            threading.Event().wait(0.01)
        other = Store.open(str(db_path))
        try:
            assert other.request(handle.id).state is State.INTERRUPTED
        finally:
            other.close()
        assert [kind for kind, _ in EXECUTED] == ["fake"]  # no undo, no second step


class TestLocks:
    def test_held_lock_refuses_a_second_run(self, store: Store, engine: Engine) -> None:
        """While a run holds payment/staging, starting another is a Conflict naming the holder; it stays APPROVED."""
        runner, _ = engine
        GATES["hold"] = threading.Event()
        first = runner.start(approved_request(store, fake_plan(("deploy", {"gate": "hold"}, False))))
        second_id = approved_request(store, fake_plan(("deploy", {}, False)), user="U0BOB")
        with pytest.raises(Conflict, match=f"U0ALICE \\(run {first.id}\\)"):
            runner.start(second_id)
        assert store.request(second_id).state is State.APPROVED
        GATES["hold"].set()
        assert first.wait(10).state is State.SUCCEEDED
        assert runner.start(second_id).wait(10).state is State.SUCCEEDED

    def test_losing_the_lock_fails_the_run_without_rolling_back(self, store: Store, engine: Engine) -> None:
        """If the Lease is taken over mid-run, the run stops FAILED and leaves the deployment to the new holder."""
        runner, locker = engine
        GATES["hold"] = threading.Event()
        handle = runner.start(approved_request(store, fake_plan(("deploy", {"changes": True}, True),
                                                                ("deploy", {"gate": "hold"}, True))))
        while locker.renewals == 0:
            threading.Event().wait(0.01)
        locker.handed_out[handle.id].lost = True  # someone took the Lease over: the next renewal says so
        snapshot = handle.wait(10)
        assert snapshot.state is State.FAILED
        assert "lost the deploy lock" in snapshot.request.reason
        assert not any(kind == "undo" for kind, _ in EXECUTED)

    def test_a_request_starts_once(self, store: Store, engine: Engine) -> None:
        """Starting the same request twice: the second start is refused."""
        runner, _ = engine
        request_id = approved_request(store, fake_plan(("deploy", {}, False)))
        runner.start(request_id).wait(10)
        with pytest.raises(Conflict, match="SUCCEEDED"):
            runner.start(request_id)


class TestProgress:
    def test_terminal_sink_prints_a_line_per_step_and_leaves_the_outcome_to_the_answer(
            self, store: Store, engine: Engine) -> None:
        """The terminal sees the start and each step's start and end; what failed (the error, the step's output)
        and the outcome are said once, by the answer printed after the run, not here as well."""
        runner, _ = engine
        lines: list[str] = []
        plan = fake_plan(("build", {"say": "a"}, False), ("build", {"fail": "tests failed"}, False))
        runner.start(approved_request(store, plan), TerminalSink(lines.append)).wait(10)
        assert lines[0].startswith("deploy ")
        assert lines[1] == "▶ [1/2] build: fake a"
        assert lines[2].startswith("✓ [1/2] build: fake a (")
        assert lines[4].startswith("✗ [2/2] build: fake")
        assert lines[4].endswith("(see below)")
        assert len(lines) == 5
        assert not any("tests failed" in line or "says hi" in line for line in lines)

    def test_a_broken_sink_never_fails_a_run(self, store: Store, engine: Engine) -> None:
        """Slack being down (the sink raising) is logged; the deploy itself succeeds."""
        runner, _ = engine

        class Broken:
            def started(self, run: object) -> None:
                raise RuntimeError("slack down")

            step = finished = started

        snapshot = runner.start(approved_request(store, fake_plan(("deploy", {}, False))), Broken()).wait(10)
        assert snapshot.state is State.SUCCEEDED
