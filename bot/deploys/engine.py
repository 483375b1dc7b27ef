"""The run engine: runs a stored plan on its own executor, not in the command's worker.

A run claims its request in the store (APPROVED -> RUNNING, once), holds the deploy lock, heartbeats,
executes the steps with their own timeouts, stops between steps when cancelled, applies
`on_failure: rollback`, and reports through a `ProgressSink` (bot/deploys/progress.py).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from bot.core.crashpoints import crash_point
from bot.core.errors import BackendError, BotError, Conflict, UsageError
from bot.deploys.plan import ROLLBACK_TARGET, ROLLBACK_TIMEOUT, Plan, PlannedStep, superseded
from bot.deploys.progress import LogSink, NoteSink, ProgressSink
from bot.deploys.steps import KINDS
from bot.deploys.steps.base import RunFacts, StepCancelled, StepContext, StepFailed, StepKind, Workload
from bot.deploys.store import BAD_ENDINGS, Snapshot, State, StepSpec, StepState, Store
from bot.insight.kube_facts import template_image

if TYPE_CHECKING:
    from bot.clients.kube import DeployKube
    from bot.insight.metrics import Source

log = structlog.get_logger("svcbot.pipeline")

READ_ONLY_KINDS = frozenset({"wait_rollout", "probe", "verify"})  # kinds that only look (the rest may change things)
SUPERSEDED_CHECK_TIMEOUT = 15.0  # seconds for reading what runs now before the first step that changes anything

# --- locks (bot/deploys/locks.py implements these with Leases) -------------------------------------------------

class HeldLock(Protocol):
    def renew(self) -> None:
        """Extend the lock; Conflict when someone else holds it now."""

    def release(self) -> None: ...


class Locker(Protocol):
    def acquire(self, plan: Plan, run_id: str, user: str) -> HeldLock:
        """Take the deploy lock of the plan's service and environment; Conflict naming the holder if held."""


# --- the engine -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSettings:
    heartbeat: float = 5.0  # seconds between store heartbeats (and checks for a cancel from elsewhere)
    lock_renew: float = 15.0  # seconds between Lease renewals (well inside lease_duration)
    poll: float = 1.0  # seconds between status reads while a step waits
    max_runs: int = 4  # runs at once in this process
    lease_duration: int = 60  # seconds a deploy lock outlives its holder's last renewal
    stale_after: float = 30.0  # seconds without a heartbeat before another process marks a run INTERRUPTED
    rollback_timeout: float = ROLLBACK_TIMEOUT
    stranded_after: float = 60.0  # seconds an APPROVED request may wait for its run before it counts as stranded

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RunSettings:
        """The defaults, with any of SVCBOT_RUN_HEARTBEAT, SVCBOT_RUN_LOCK_RENEW, SVCBOT_RUN_POLL,
        SVCBOT_RUN_LEASE_DURATION, SVCBOT_RUN_STALE_AFTER, SVCBOT_RUN_STRANDED_AFTER (seconds) set; `svcbot
        serve` reads them (the crash-point suite runs with short ones)."""
        defaults = cls()
        values: dict[str, float] = {}
        for name in ("heartbeat", "lock_renew", "poll", "lease_duration", "stale_after", "stranded_after"):
            text = environ.get(f"SVCBOT_RUN_{name.upper()}", "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                raise UsageError(f"SVCBOT_RUN_{name.upper()} must be a number of seconds, not {text!r}") from None
            if value <= 0:
                raise UsageError(f"SVCBOT_RUN_{name.upper()} must be more than 0 seconds")
            values[name] = value
        settings = dataclasses.replace(
            defaults, heartbeat=values.get("heartbeat", defaults.heartbeat),
            lock_renew=values.get("lock_renew", defaults.lock_renew), poll=values.get("poll", defaults.poll),
            lease_duration=max(1, int(values.get("lease_duration", defaults.lease_duration))),
            stale_after=values.get("stale_after", defaults.stale_after),
            stranded_after=values.get("stranded_after", defaults.stranded_after))
        if settings.lock_renew >= settings.lease_duration:
            raise UsageError(f"SVCBOT_RUN_LOCK_RENEW ({settings.lock_renew:g}s) must be shorter than the lease "
                             f"duration ({settings.lease_duration}s)")
        return settings


SinkFactory = Callable[[Snapshot], ProgressSink]


@dataclass
class _Active:
    request_id: str
    plan: Plan
    sink: ProgressSink
    lock: HeldLock | None
    cancel: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""  # why `cancel` is set: "" (a person cancelled) or a failure (lock lost)
    cancelled_by: str = ""
    finished: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None
    in_rollback: bool = False


class RunHandle:
    def __init__(self, engine: RunEngine, active: _Active) -> None:
        self._engine = engine
        self._active = active
        self.id = active.request_id

    def wait(self, timeout: float | None = None) -> Snapshot:
        """The run's final snapshot (or its current one when `timeout` passes first)."""
        self._active.finished.wait(timeout)
        return self._engine.store.snapshot(self.id)

    def done(self) -> bool:
        return self._active.finished.is_set()


class RunEngine:
    """Runs plans on its own executor; one per process (`Backends.runs()`)."""

    def __init__(self, store: Store, *, kube_for: Callable[[str], DeployKube] | None = None,
                 locker: Locker | None = None, settings: RunSettings | None = None,
                 kinds: Mapping[str, StepKind] | None = None, sink_factory: SinkFactory | None = None,
                 metrics_for: Callable[[Workload], Source] | None = None) -> None:
        self.store = store
        self.settings = settings or RunSettings()
        self._kube_for = kube_for
        self.metrics_for = metrics_for  # verify steps' Prometheus (bot/deploys/steps/verify.py)
        self.locker = locker
        self.kinds = dict(kinds or KINDS)
        self.sink_factory = sink_factory
        self._executor = ThreadPoolExecutor(max_workers=self.settings.max_runs, thread_name_prefix="svc-run")
        self._active: dict[str, _Active] = {}
        self._lock = threading.Lock()
        self._announced: set[str] = set()

    # --- wiring -------------------------------------------------------------------------------------

    def set_sink_factory(self, factory: SinkFactory) -> None:
        """How runs started from Slack report; also tells the requesters of runs found INTERRUPTED on open."""
        self.sink_factory = factory
        self.announce_interrupted()

    def sink_for(self, snapshot: Snapshot) -> ProgressSink:
        return self.sink_factory(snapshot) if self.sink_factory is not None else LogSink()

    def announce_interrupted(self) -> None:
        """Tell each requester whose run was marked INTERRUPTED when this process opened the store."""
        for snapshot in self.store.interrupted_on_open:
            if snapshot.id in self._announced:
                continue
            self._announced.add(snapshot.id)
            sink = self.sink_for(snapshot)
            _safely(functools.partial(sink.finished, snapshot), "finished", snapshot.id)

    def kube(self, cluster: str) -> DeployKube:
        if self._kube_for is None:
            raise BackendError("this engine has no Kubernetes client")
        return self._kube_for(cluster)

    # --- starting, cancelling, waiting --------------------------------------------------------------

    def acquire_lock(self, plan: Plan, run_id: str, user: str) -> HeldLock | None:
        """The deploy lock for a run about to start (None when this engine has no locker)."""
        return self.locker.acquire(plan, run_id, user) if self.locker is not None else None

    def start(self, request_id: str, sink: ProgressSink | None = None, *, lock: HeldLock | None = None,
              actor: str = "svcbot", from_image: str = "") -> RunHandle:
        """Run an APPROVED request's stored plan: take the lock (unless given), claim the run, submit it.

        Conflict when the lock is held (the request stays APPROVED) or the run was already claimed.
        `from_image` is what the deployment ran when the request was made (set_image records the exact one).
        """
        request = self.store.request(request_id)
        if request.state is not State.APPROVED:
            raise Conflict(f"request {request_id} is {request.state.value}, not APPROVED: it cannot start")
        plan = Plan.from_json(request.plan)
        if lock is None:
            lock = self.acquire_lock(plan, request_id, request.requester)
        crash_point("after:lock.acquired")
        specs = [StepSpec(target=step.target, kind=step.kind, description=step.describe(plan.workload, self.kinds))
                 for step in plan.steps]
        try:
            claimed = self.store.claim_run(request_id, specs, actor=actor, to_image=plan.image, from_image=from_image)
        except BaseException:
            _release(lock)
            raise
        if not claimed:
            _release(lock)
            raise Conflict(f"request {request_id} was already started elsewhere")
        snapshot = self.store.snapshot(request_id)
        active = _Active(request_id=request_id, plan=plan, sink=sink or self.sink_for(snapshot), lock=lock)
        with self._lock:
            self._active[request_id] = active
        try:
            active.future = self._executor.submit(self._run, active)
        except RuntimeError as exc:  # the engine is shutting down: do not leave a RUNNING run behind
            self.store.finish_run(request_id, State.FAILED, reason="not started: svcbot is shutting down")
            _release(lock)
            active.finished.set()
            with self._lock:
                self._active.pop(request_id, None)
            raise BackendError("svcbot is shutting down; try again in a minute") from exc
        return RunHandle(self, active)

    def cancel(self, request_id: str, actor: str) -> bool:
        """Ask a RUNNING run to stop between steps (here or in another process through the store)."""
        asked = self.store.request_cancel(request_id, actor)
        with self._lock:
            active = self._active.get(request_id)
        if active is not None and asked:
            active.cancelled_by = actor
            active.cancel.set()
        return asked

    def handle(self, request_id: str) -> RunHandle | None:
        with self._lock:
            active = self._active.get(request_id)
        return RunHandle(self, active) if active is not None else None

    def active(self) -> list[str]:
        with self._lock:
            return [key for key, value in self._active.items() if not value.finished.is_set()]

    def shutdown(self, grace: float = 10.0, *, interrupt: bool = False) -> bool:
        """Stop accepting runs and give the running ones `grace` seconds to end; True if none is left.

        With `interrupt` (the process is going away, e.g. on SIGTERM), runs still going after the grace are
        marked INTERRUPTED now and their requesters told, instead of waiting for another process to notice
        the stale heartbeat; their deploy locks are left to expire (the cluster may still be mid-rollout).
        """
        self._executor.shutdown(wait=False, cancel_futures=False)
        end = time.monotonic() + grace
        with self._lock:
            running = list(self._active.values())
        for active in running:
            if not active.finished.wait(max(0.0, end - time.monotonic())):
                log.warning("run.left_running", request_id=active.request_id)
                if interrupt:
                    self._interrupt(active)
        return not self.active()

    def _interrupt(self, active: _Active) -> None:
        # Not cancelled: a cancel would roll back, and a process on its way out must not start changing
        # the cluster. The run's thread finds its run taken when it tries to finish, and does nothing.
        reason = "svcbot stopped during the run; the deploy lock expires by itself"
        if self.store.finish_run(active.request_id, State.INTERRUPTED, reason=reason):
            self._notify(active, "finished")
        # The run's thread stops at its next wait, without rolling back (a stop reason is not a person's cancel):
        # left alone it would keep retrying a cluster that may be gone until its step's timeout, holding the
        # process that is on its way out.
        active.stop_reason = reason
        active.cancel.set()

    # --- running ------------------------------------------------------------------------------------

    def _run(self, active: _Active) -> None:
        request_id = active.request_id
        stop_heartbeat = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(active, stop_heartbeat), daemon=True,
                                name=f"svc-run-heartbeat-{request_id}")
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                beat.start()
                self._notify(active, "started")
                state, reason = self._execute(active)
                if not self.store.finish_run(request_id, state, reason=reason):
                    log.warning("run.finish_refused", state=state.value,
                                reason="the run is no longer this process's (marked INTERRUPTED meanwhile)")
            except Exception:
                log.exception("run.crashed")
                self.store.finish_run(request_id, State.FAILED, reason="internal error in the deploy engine")
            finally:
                try:
                    stop_heartbeat.set()
                    beat.join(5.0)
                    _release(active.lock)
                    self._notify(active, "finished")
                finally:
                    active.finished.set()
                    with self._lock:
                        self._active.pop(request_id, None)

    def _heartbeat(self, active: _Active, stop: threading.Event) -> None:
        last_renew = time.monotonic()
        while not stop.wait(self.settings.heartbeat):
            try:
                cancelled_by = self.store.heartbeat(active.request_id)
            except BotError as exc:
                log.warning("run.heartbeat_failed", reason=exc.message)
                continue
            if cancelled_by is None and not active.cancel.is_set():
                active.stop_reason = "this process no longer owns the run (it was marked INTERRUPTED)"
                active.cancel.set()
            elif cancelled_by and not active.cancel.is_set():
                active.cancelled_by = cancelled_by
                active.cancel.set()
            if active.lock is not None and time.monotonic() - last_renew >= self.settings.lock_renew:
                last_renew = time.monotonic()
                try:
                    active.lock.renew()
                except Conflict as exc:
                    active.stop_reason = f"lost the deploy lock: {exc.message}"
                    active.cancel.set()
                except BotError as exc:
                    log.warning("run.lock_renew_failed", reason=exc.message)

    def _execute(self, active: _Active) -> tuple[State, str]:
        """Run the steps; on failure or cancel apply on_failure. The end state and its one-line reason."""
        plan = active.plan
        facts = RunFacts()
        failure = ""
        failed_step: PlannedStep | None = None
        stopped = False
        last_seq = -1
        checked = False
        for seq, step in enumerate(plan.steps):
            if active.cancel.is_set():
                stopped = True
                break
            if not checked and step.kind not in READ_ONLY_KINDS:
                # Right before the first step that changes anything: does the deployment still run what the
                # request was made against? (An older migration Job against a newer schema is as bad as the image.)
                checked = True
                refusal = self._superseded(active)
                if refusal is not None:
                    self.store.skip_steps(active.request_id, range(seq, len(plan.steps)))
                    self.store.set_run_facts(active.request_id, failure=refusal[1])
                    return refusal
            last_seq = seq
            outcome, message = self._step(active, seq, step, facts)
            if outcome is StepState.SUCCEEDED:
                continue
            failed_step = step
            if outcome is StepState.CANCELLED:
                stopped = True
            else:
                failure = message
            break
        self.store.skip_steps(active.request_id, range(last_seq + 1, len(plan.steps)))
        if not stopped and failed_step is None:
            return State.SUCCEEDED, ""
        if stopped and active.stop_reason:
            # Not a person's cancel: the lock was lost or the run was taken over. Someone else may be
            # deploying now, so nothing is rolled back.
            self.store.set_run_facts(active.request_id, failure=active.stop_reason)
            return State.FAILED, active.stop_reason
        if stopped:
            failure = f"cancelled by {active.cancelled_by or 'someone'}"
        self.store.set_run_facts(active.request_id, failure=failure)
        current = failed_step or (plan.steps[last_seq] if last_seq >= 0 else None)
        end = State.CANCELLED if stopped else State.FAILED
        if current is None or not current.rollback_on_failure:
            return end, failure
        if not facts.changed:
            return end, f"{failure}; nothing to roll back (the deployment was not changed)"
        restored, detail = self._rollback(active, facts)
        if not restored:
            return end if stopped else State.FAILED, f"{failure}; rollback failed: {detail}"
        return (State.CANCELLED if stopped else State.ROLLED_BACK), f"{failure}; {detail}"

    def _superseded(self, active: _Active) -> tuple[State, str] | None:
        """CANCELLED (superseded) when the deployment runs another image than the plan was made against;
        FAILED when that cannot be read; None to go on."""
        plan = active.plan
        if not plan.from_image:
            return None
        workload = plan.workload
        try:
            deployment = self.kube(workload.cluster).read_deployment(
                workload.namespace, workload.deployment, deadline=time.monotonic() + SUPERSEDED_CHECK_TIMEOUT)
        except BotError as exc:
            return State.FAILED, f"could not check what {workload.env} runs before changing it: {exc.message}"
        stale = superseded(plan, template_image(deployment, workload.container))
        return (State.CANCELLED, stale) if stale else None

    def _rollback(self, active: _Active, facts: RunFacts) -> tuple[bool, str]:
        """on_failure: rollback: restore the revision this run replaced and wait for that rollout."""
        active.in_rollback = True
        revision = facts.from_revision or 0
        steps = (
            PlannedStep(target=ROLLBACK_TARGET, kind="undo", args={"revision": revision, "on_failure": True},
                        rollback_on_failure=False),
            PlannedStep(target=ROLLBACK_TARGET, kind="wait_rollout",
                        args={"timeout": self.settings.rollback_timeout}, rollback_on_failure=False),
        )
        specs = [StepSpec(target=step.target, kind=step.kind,
                          description=step.describe(active.plan.workload, self.kinds)) for step in steps]
        seqs = self.store.append_steps(active.request_id, specs)
        rollback_facts = RunFacts(from_image=facts.to_image, from_revision=None)
        for seq, step in zip(seqs, steps, strict=True):
            outcome, message = self._step(active, seq, step, rollback_facts)
            if outcome is not StepState.SUCCEEDED:
                self.store.skip_steps(active.request_id, seqs)
                self.store.set_run_facts(active.request_id, rollback=f"failed: {message}")
                return False, message
        restored = f"rolled back to revision {revision} ({facts.from_image})" if revision else \
            f"rolled back to {facts.from_image}"
        self.store.set_run_facts(active.request_id, rollback=restored)
        return True, restored

    def _step(self, active: _Active, seq: int, step: PlannedStep, facts: RunFacts) -> tuple[StepState, str]:
        """Execute one step, recording its start and end; (outcome, summary or error)."""
        kind = self.kinds.get(step.kind)
        request_id = active.request_id
        self.store.step_started(request_id, seq)
        self._notify_step(active, seq, StepState.RUNNING)

        def cancelled() -> bool:
            return active.cancel.is_set() and not active.in_rollback

        ctx = StepContext(run_id=request_id, seq=seq, workload=active.plan.workload,
                          workspace=Path(active.plan.workspace), kube_for=self.kube, cancelled=cancelled,
                          facts=facts, poll=self.settings.poll,
                          note=functools.partial(self._notify_note, active, seq), metrics_for=self.metrics_for)
        state, message = StepState.FAILED, ""
        try:
            if kind is None:
                raise StepFailed(f"unknown step kind '{step.kind}'")
            message = kind.execute(step.args, ctx)
            state = StepState.SUCCEEDED
        except StepFailed as exc:
            message = exc.message
        except StepCancelled:
            state, message = StepState.CANCELLED, "cancelled"
        except BotError as exc:
            message = exc.message
        except Exception:
            log.exception("run.step_crashed", seq=seq, kind=step.kind)
            message = f"internal error in the {step.kind} step"
        self.store.step_finished(request_id, seq, state, output=ctx.output.text(),
                                 error="" if state is StepState.SUCCEEDED else message)
        if not active.in_rollback:
            self.store.set_run_facts(request_id, from_image=facts.from_image or None,
                                     to_image=facts.to_image or None, from_revision=facts.from_revision,
                                     to_revision=facts.to_revision)
        else:
            self.store.set_run_facts(request_id, restored_revision=facts.to_revision)
        self._notify_step(active, seq, state)
        return state, message

    def _notify(self, active: _Active, event: str) -> None:
        def call() -> None:
            snapshot = self.store.snapshot(active.request_id)
            notify: Callable[[Snapshot], None] = getattr(active.sink, event)
            notify(snapshot)

        _safely(call, event, active.request_id)

    def _notify_note(self, active: _Active, seq: int, text: str) -> None:
        sink = active.sink
        if not isinstance(sink, NoteSink):
            return

        def call() -> None:
            snapshot = self.store.snapshot(active.request_id)
            step = next(item for item in snapshot.steps if item.seq == seq)
            sink.note(snapshot, step, text)

        _safely(call, "note", active.request_id)

    def _notify_step(self, active: _Active, seq: int, state: StepState) -> None:
        def call() -> None:
            snapshot = self.store.snapshot(active.request_id)
            step = next(item for item in snapshot.steps if item.seq == seq)
            active.sink.step(snapshot, step, state)

        _safely(call, "step", active.request_id)


def _safely(call: Callable[[], None], event: str, request_id: str) -> None:
    try:
        call()
    except Exception:
        log.exception("run.progress_failed", hook=event, request_id=request_id)


def _release(lock: HeldLock | None) -> None:
    if lock is None:
        return
    try:
        lock.release()
    except BotError as exc:
        log.warning("run.lock_release_failed", reason=exc.message)


def ended_badly(snapshot: Snapshot) -> bool:
    """`svcbot run` exits 3 for these."""
    return snapshot.state in BAD_ENDINGS

