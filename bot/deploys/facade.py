"""The deploys facade: what verbs and frontends ask of deploys, answered with typed outcomes.

`Deploys` holds one process's store and run engine (opened on first use: verbs that never deploy never touch
the database) and offers five things: `current_image` (what runs now), `request` (a deploy or a rollback:
PENDING when it needs approval, else started), `approve` / `reject` (a vote, and the start its quorum
triggers), `cancel` (withdraw a request or stop a run) and `view` (a request as the store has it now).

Verbs turn the outcomes into replies; the frontend decides whether to follow a run (the terminal waits
and prints its progress: `Follow`) or not (Slack answers at once; progress goes to the request's thread).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.catalog import Approval, Catalog
from bot.core.errors import BackendError, Conflict, Forbidden, UsageError, UserError
from bot.core.policy import Policy
from bot.deploys import approvals
from bot.deploys.approvals import Decision, VoteResult
from bot.deploys.engine import RunEngine, RunSettings
from bot.deploys.plan import Plan, superseded
from bot.deploys.progress import TerminalSink
from bot.deploys.store import FINAL, NewRequest, RequestRecord, Snapshot, State, Store, new_id
from bot.deploys.store.store import AlreadyPending
from bot.insight import kube_facts
from bot.insight.kube_facts import template_image

if TYPE_CHECKING:
    from bot.clients.backends import Backends
    from bot.deploys.steps.base import Workload
    from bot.insight.metrics import Source

CURRENT_IMAGE_READ = 5.0  # seconds at most for reading what a deployment runs (a dry run answers without it)


@dataclass(frozen=True)
class Follow:
    """A caller that follows the runs it starts: progress lines go to `progress`, and it waits for the end
    until `until` (a time.monotonic() value)."""

    progress: Callable[[str], None]
    until: float

    def left(self) -> float:
        return max(0.0, self.until - time.monotonic())


@dataclass(frozen=True)
class CurrentImage:
    """What the deployment runs now; `image` is "" with the reason in `note` when it could not be read."""

    image: str
    note: str = ""


@dataclass(frozen=True)
class Pending:
    """A request stored PENDING: it waits for its approvers."""

    request: RequestRecord
    approval: Approval
    current_image: str


@dataclass(frozen=True)
class Started:
    """A run that started: its snapshot at the end when the caller followed it (`waited`), else at the start."""

    snapshot: Snapshot
    waited: bool


@dataclass(frozen=True)
class Voted:
    """A vote counted. `started` when it reached the quorum (or started an approved request again) and the
    run began; `not_started` (why) when the run could not begin: the request stays APPROVED."""

    result: VoteResult
    started: Started | None = None
    not_started: str = ""
    not_started_by_conflict: bool = False
    superseded: str = ""  # the deployment runs something else than when the request was made: it was CANCELLED




@dataclass(frozen=True)
class Withdrawn:
    """A PENDING or approved-but-not-started request withdrawn (CANCELLED) before it ran."""

    request: RequestRecord


@dataclass(frozen=True)
class CancelAsked:
    """A running deploy asked to stop; `ended` is its final snapshot when the caller followed it to the end."""

    request: RequestRecord
    ended: Snapshot | None = None


class Deploys:
    """One process's deploys: the store, the run engine and the decisions on requests."""

    def __init__(self, catalog: Catalog, backends: Backends, run_settings: RunSettings | None = None) -> None:
        self.catalog = catalog
        self.backends = backends
        # May be replaced before the first deploy (tests use short intervals; the engine reads it once).
        self.run_settings = run_settings
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._engine: RunEngine | None = None

    # --- the store and the engine, opened on first use -------------------------------------------------

    def store(self) -> Store:
        """The store at SVCBOT_DB (default under the user's data directory), migrated and recovered."""
        with self._lock:
            if self._store is None:
                self._store = Store.open(stale_after=self._settings().stale_after)
            return self._store

    def engine(self) -> RunEngine:
        """The run engine: runs plans on its own executor, holds Lease locks on the clusters."""
        from bot.clients.kube import DeployKube  # noqa: PLC0415 - kubernetes is imported when a run needs it
        from bot.deploys.locks import LeaseLocker  # noqa: PLC0415 - so is the Lease locker

        store = self.store()
        with self._lock:
            if self._engine is None:
                settings = self._settings()

                def kube_for(cluster: str) -> DeployKube:
                    return DeployKube(self.backends.kube(cluster))

                locker = LeaseLocker(kube_for, duration=settings.lease_duration)
                self._engine = RunEngine(store, kube_for=kube_for, locker=locker, settings=settings,
                                         metrics_for=self._metrics_for)
            return self._engine

    def _metrics_for(self, workload: Workload) -> Source:
        """A workload's Prometheus source (verify steps); UserError when none holds its cluster."""
        from bot.insight.metrics import source_for  # noqa: PLC0415 - Prometheus only when a verify step runs

        return source_for(self.catalog, self.backends.prometheus, workload.service, workload.env)

    def _settings(self) -> RunSettings:
        if self.run_settings is None:
            self.run_settings = RunSettings()
        return self.run_settings

    def close_store(self, grace: float = 10.0, *, interrupt: bool = False) -> None:
        """Let running deploys finish for up to `grace` seconds, then close the store. Runs still going are
        marked INTERRUPTED with `interrupt` (the process is stopping), else left to the process's end, and
        the next process marks them INTERRUPTED."""
        with self._lock:
            engine, store = self._engine, self._store
        if engine is not None and not engine.shutdown(grace, interrupt=interrupt):
            return
        with self._lock:
            self._store = self._engine = None
        if store is not None:
            store.close()

    def close(self) -> None:
        """Release the store; nobody waits for runs here (close_store(grace) before this, to wait)."""
        self.close_store(0.0)

    # --- the runs this process executes (a terminal that is about to leave) -----------------------------

    def running_here(self) -> list[Snapshot]:
        """The runs this process is executing now, as the store has them."""
        with self._lock:
            engine = self._engine
        if engine is None:
            return []
        return [self.store().snapshot(request_id) for request_id in engine.active()]

    def stop_here(self, actor: str, *, wait: float) -> list[Snapshot]:
        """Cancel every run this process executes (each stops where it is and rolls back as its target's
        on_failure says) and wait up to `wait` seconds for them to end; their snapshots then."""
        with self._lock:
            engine = self._engine
        if engine is None:
            return []
        ids = engine.active()
        for request_id in ids:
            engine.cancel(request_id, actor)
        end = time.monotonic() + wait
        ended = []
        for request_id in ids:
            handle = engine.handle(request_id)
            ended.append(handle.wait(max(0.0, end - time.monotonic())) if handle is not None
                         else self.store().snapshot(request_id))
        return ended

    def cancel_here(self, request_id: str, actor: str) -> bool:
        """Cancel a run this process executes (the terminal that started it stops it); False if it is not
        running here or a cancel was already asked for."""
        with self._lock:
            engine = self._engine
        return engine is not None and engine.cancel(request_id, actor)

    def interrupt_here(self) -> list[str]:
        """Leave the runs this process executes: each is marked INTERRUPTED now (not rolled back, its deploy
        lock left to expire), as a process on its way out does. The ids of those it marked."""
        with self._lock:
            engine = self._engine
        if engine is None:
            return []
        ids = engine.active()
        engine.shutdown(0.0, interrupt=True)
        return ids

    # --- reading --------------------------------------------------------------------------------------

    def current_image(self, plan: Plan, *, deadline: float) -> CurrentImage:
        """The image the deployment runs now, or "" and why not: a dry run still answers with the cluster down."""
        workload = plan.workload
        try:
            kube = self.backends.kube_for_env(plan.env)
            deployment = kube.read_deployment(workload.namespace, workload.deployment,
                                              deadline=min(deadline, time.monotonic() + CURRENT_IMAGE_READ))
        except (BackendError, UserError) as exc:
            return CurrentImage("", exc.message)
        return CurrentImage(template_image(deployment, workload.container))

    def rollback_target(self, plan: Plan, *, deadline: float) -> tuple[Plan, CurrentImage]:
        """A rollback plan with its target resolved (revision and image, stored with the request), and what runs
        now. Without `--to`: the newest revision whose pod template differs from what runs now and that did not
        fail under svcbot (a run to it ended FAILED or ROLLED_BACK). UsageError when there is nothing to go back
        to; the cluster's errors when it cannot be read (a request must name its target)."""
        workload = plan.workload
        kube = self.backends.kube_for_env(plan.env)
        read_by = min(deadline, time.monotonic() + CURRENT_IMAGE_READ)
        deployment = kube.read_deployment(workload.namespace, workload.deployment, deadline=read_by)
        replicasets = kube_facts.owned_replicasets(deployment, kube.list_replicasets(
            workload.namespace, kube_facts.selector_string(deployment), deadline=read_by))
        now_runs = template_image(deployment, workload.container)
        current = kube_facts.revision(deployment)
        images = {kube_facts.revision(rs): kube_facts.template_image(rs, workload.container) for rs in replicasets}
        known = ", ".join(f"{number} ({kube_facts.image_tag(image)})" for number, image in images.items()) or "none"
        where = f"{plan.service} in {plan.env}"
        if plan.revision:
            if plan.revision not in images:
                raise UsageError(f"{where} has no revision {plan.revision} (revisions: {known})")
            if plan.revision == current:
                raise UsageError(f"{where} runs revision {current} ({kube_facts.image_tag(now_runs)}) already: "
                                 "nothing to roll back")
            target = plan.revision
        else:
            failed_revisions, failed_images = self._failed_targets(plan.service, plan.env)
            candidates = [number for number, image in images.items() if number != current and image != now_runs
                          and number not in failed_revisions and image not in failed_images]
            if not candidates:
                raise UsageError(
                    f"{where} has nothing to roll back to: it runs revision {current} "
                    f"({kube_facts.image_tag(now_runs)}) and no other revision differs from it without having "
                    f"failed under svcbot (revisions: {known}); deploy a version instead, or name one with --to")
            target = max(candidates)
        steps = tuple(dataclasses.replace(step, args={**step.args, "revision": target}) if step.kind == "undo"
                      else step for step in plan.steps)
        resolved = dataclasses.replace(plan, version=str(target), revision=target, image=images[target], steps=steps)
        return resolved, CurrentImage(now_runs)

    def _failed_targets(self, service: str, env: str) -> tuple[set[int], set[str]]:
        """Revisions and images that svcbot runs went to and that then failed (the newest run to an image
        decides: an image that failed once and later succeeded counts as good)."""
        store = self.store()
        requests = store.requests(service=service, env=env, limit=500)
        runs = store.runs_of([request.id for request in requests])
        revisions: set[int] = set()
        images: dict[str, bool] = {}  # image -> the newest run to it failed
        for request in requests:  # newest first
            record = runs.get(request.id)
            if record is None or request.state not in FINAL:
                continue
            failed = request.state in (State.FAILED, State.ROLLED_BACK)
            if failed and record.to_revision is not None:
                revisions.add(record.to_revision)
            if record.to_image:
                images.setdefault(record.to_image, failed)
        return revisions, {image for image, failed in images.items() if failed}

    def view(self, request_id: str) -> Snapshot:
        """A request, its run and steps as the store has them now."""
        return self.store().snapshot(request_id)

    # --- requesting -----------------------------------------------------------------------------------

    def approval_for(self, plan: Plan, decided: Approval | None) -> Approval | None:
        """The approval the strictest matching rule asks for (`decided`: the dispatcher's policy decision, with
        user groups resolved); a protected environment always asks for one."""
        if decided is not None:
            return decided
        if not self.catalog.environment(plan.env).protected:
            return None
        covering = [rule.approval for rule in self.catalog.access.rules
                    if plan.action in rule.verbs and ("*" in rule.envs or plan.env in rule.envs) and rule.approval]
        if not covering:
            raise UserError(f"{plan.env} is protected but no access rule names its approvers; "
                            "nothing can be deployed there until the catalog says who approves")
        return max(covering, key=lambda approval: (approval.quorum, not approval.self_approval))

    def request(self, plan: Plan, current: CurrentImage, *, user: str, approval: Approval | None,
                os_user: str = "", source: str = "slack", channel: str = "",
                follow: Follow | None = None) -> Pending | Started:
        """Store the request; PENDING when `approval` asks for one, else take the lock and start the run."""
        store = self.store()
        plan = dataclasses.replace(plan, from_image=current.image)  # approving it later checks this still runs
        base = NewRequest(kind=plan.action, service=plan.service, env=plan.env, version=plan.version,
                          requester=user, plan=plan.to_json(), os_user=os_user, source=source, channel=channel)
        if approval is not None:
            expires_at = time.time() + approval.expires
            try:
                request = store.create_request(dataclasses.replace(
                    base, state=State.PENDING, expires_at=expires_at,
                    approval={"approvers": list(approval.approvers), "quorum": approval.quorum,
                              "self_approval": approval.self_approval, "expires": approval.expires}),
                    exclusive=True)
            except AlreadyPending as exc:
                raise self._refuse_second(exc.request, plan, user) from exc
            return Pending(request=request, approval=approval, current_image=current.image)
        engine = self.engine()
        run_id = new_id()
        try:
            lock = engine.acquire_lock(plan, run_id, user)
        except Conflict as exc:
            store.record(user, f"{plan.action}.refused",
                         detail={"service": plan.service, "env": plan.env, "version": plan.version,
                                 "reason": exc.message})
            raise
        try:
            store.create_request(dataclasses.replace(base, id=run_id, state=State.APPROVED), exclusive=True)
        except BaseException as exc:
            if lock is not None:
                lock.release()
            if isinstance(exc, AlreadyPending):
                raise self._refuse_second(exc.request, plan, user) from exc
            raise
        return self._start(run_id, user, current.image, follow, lock=lock)

    def _refuse_second(self, first: RequestRecord, plan: Plan, user: str) -> Conflict:
        """A second request for a service and environment while one awaits approval is refused, pointing at
        the first; the same person is told to withdraw theirs first (nothing is withdrawn for them: an
        approver may be reading it right now, and a click on it must not find it gone without a word)."""
        self.store().record(user, f"{plan.action}.refused",
                            detail={"service": plan.service, "env": plan.env, "version": plan.version,
                                    "reason": f"request {first.id} awaits approval"})
        what = approvals.describe(first)
        if first.requester == user:
            return Conflict(f"you already asked for a {what}: {first.id} awaits approval. Withdraw it with "
                            f"/svc cancel {first.id}, then ask again")
        return Conflict(f"{plan.service} in {plan.env} already has a request awaiting approval: {first.id} ({what}, "
                        f"asked by {approvals.mention(first.requester)} at {approvals.clock(first.created_at)}). "
                        f"Approve or reject it first (its requester may withdraw it: /svc cancel {first.id})")

    def _start(self, request_id: str, actor: str, from_image: str, follow: Follow | None,
               lock: object | None = None) -> Started:
        engine = self.engine()
        sink = TerminalSink(follow.progress) if follow is not None else None
        handle = engine.start(request_id, sink, lock=lock, actor=actor, from_image=from_image)  # type: ignore[arg-type]
        if follow is None:
            return Started(self.store().snapshot(request_id), waited=False)
        return Started(handle.wait(follow.left()), waited=True)

    # --- deciding -------------------------------------------------------------------------------------

    def approve(self, policy: Policy, request_id: str, user: str, *, follow: Follow | None = None) -> Voted:
        """Count `user`'s approval; the vote that reaches the quorum starts the stored plan."""
        store = self.store()
        result = approvals.approve(store, policy, request_id, user)
        if result.decision is Decision.VOTED:
            return Voted(result)
        request = result.request
        plan = Plan.from_json(request.plan)
        # The one read of the deployment on this path: what the run records as its "from", and the check that
        # it still runs what the request was made against.
        current = self.current_image(plan, deadline=time.monotonic() + CURRENT_IMAGE_READ)
        stale = superseded(plan, current.image)
        if stale:
            if not store.transition(request.id, State.CANCELLED, actor=user, expected=(State.APPROVED,),
                                    reason=stale, detail={"now_runs": current.image, "made_against": plan.from_image}):
                raise Conflict(f"{request.id} is already {store.request(request.id).state.value}")
            return Voted(dataclasses.replace(result, request=store.request(request.id)), superseded=stale)
        try:
            started = self._start(request.id, user, current.image, follow)
        except (Conflict, BackendError) as exc:
            state = store.request(request.id).state
            if state is not State.APPROVED:  # started (or ended) by someone else meanwhile
                raise Conflict(f"{request.id} is already {state.value}") from exc
            # It stays APPROVED; recorded so that an approver's `/svc approve <id>` may start it later.
            approvals.record_not_started(store, request.id, user, exc.message)
            return Voted(result, not_started=exc.message, not_started_by_conflict=isinstance(exc, Conflict))
        return Voted(result, started=started)

    def reject(self, policy: Policy, request_id: str, user: str, reason: str = "") -> VoteResult:
        """One approver's reject ends the request."""
        return approvals.reject(self.store(), policy, request_id, user, approvals.clean_reason(reason))

    def cancel(self, policy: Policy, request_id: str, user: str, *,
               follow: Follow | None = None) -> Withdrawn | CancelAsked:
        """Withdraw a request that has not run, or ask a running one to stop between steps. Allowed to its
        requester and to anyone the access rules let deploy (or roll back) there."""
        store = self.store()
        request = store.request(request_id)
        if user != request.requester and not policy.check(request.kind, (request.env,), user).allowed:
            requester = approvals.mention(request.requester)
            raise Forbidden(f"only the requester ({requester}) or someone allowed to {request.kind} "
                            f"in {request.env} may cancel {request.id}")
        if request.state in (State.PENDING, State.APPROVED):
            return self._withdraw(request, user)
        if request.state is not State.RUNNING:
            raise UserError(f"{request.id} already ended {request.state.value}; nothing to cancel")
        engine = self.engine()
        if not engine.cancel(request.id, user):
            request = store.request(request.id)
            raise UserError(f"{request.id} is {request.state.value}; it could not be cancelled "
                            "(it ended meanwhile, or a cancel was already asked for)")
        handle = engine.handle(request.id)
        if handle is not None and follow is not None:
            snapshot = handle.wait(follow.left())
            if handle.done():
                return CancelAsked(request, ended=snapshot)
        return CancelAsked(request)

    def _withdraw(self, request: RequestRecord, user: str) -> Withdrawn:
        """PENDING or APPROVED (not started) -> CANCELLED, once; a PENDING request past its expiry is refused
        as expired (checked inside the UPDATE, like an approval)."""
        store = self.store()
        now = time.time()
        if request.state is State.PENDING:
            approvals.ensure_open(store, request, now)
        withdrawn = store.transition(
            request.id, State.CANCELLED, actor=user, expected=(request.state,),
            unexpired=request.state is State.PENDING, reason=f"cancelled by {user}", now=now)
        if not withdrawn:
            current = store.request(request.id)
            if current.state is State.PENDING:
                approvals.ensure_open(store, current, now)  # it expired between the two checks
            raise UserError(f"{request.id} is already {current.state.value}; nothing to cancel")
        return Withdrawn(request)
