"""Background work done once across replicas: approval expiry, interrupted-run recovery, lock housekeeping.

Every bot process runs a `BackgroundWork`. On each tick it asks its `Leadership` whether it leads; only
the leader runs the jobs, so N replicas do the work once, not N times.

Leadership:
- PostgreSQL store: a session-level advisory lock (`pg_try_advisory_lock`) held on a connection of its
  own. PostgreSQL releases it the moment that session ends: a killed pod's TCP connection closes, and a
  vanished node is noticed by the server's keepalives (set on the session: ~25 s). Another replica's
  next tick takes it. No clock, no renewal loop, no Kubernetes permission; the lock lives in the same
  database as the rows the jobs change.
- SQLite store: this process leads (SQLite means one replica).

Leadership is for economy, not for safety: every change a job makes is one conditional UPDATE in the
store (expiry inside the UPDATE, staleness inside the UPDATE, a Lease written with its resourceVersion),
so if two processes ever ran a job at once (a leader that has not yet noticed its connection died), each
request is still expired once and each run interrupted once, and only the process whose UPDATE succeeded
tells anybody.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from bot.core.errors import BotError, Conflict, NotFound
from bot.deploys.approvals import NOT_STARTED_EVENT
from bot.deploys.store import FINAL, PostgresDatabase, RequestRecord, Snapshot, State, Store, advisory_key
from bot.insight import kube_facts as rollout

if TYPE_CHECKING:
    import psycopg

    from bot.clients.kube import DeployKube
    from bot.core.catalog import Catalog
    from bot.deploys.facade import Deploys

log = structlog.get_logger("svcbot.background")

DEFAULT_INTERVAL = 5.0  # seconds between ticks: leadership checks and job runs
LEADER_LOCK = "svcbot.background"
# Server-side keepalives on the leader's session, so PostgreSQL drops a vanished leader (and its lock)
# after about idle + interval * count = 25 s instead of the kernel's two hours.
_LEADER_KEEPALIVES = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}


@dataclass(frozen=True)
class Job:
    """One piece of background work: `run(store)` returns how many things it changed (for the log)."""

    name: str
    run: Callable[[Store], int]
    every: float | None = None  # seconds between runs; None: every tick


# --- leadership ---------------------------------------------------------------------------------------------

class Leadership(Protocol):
    def acquire(self) -> bool:
        """Take the lead if it is free, or check it is still ours; True while this process leads."""

    def release(self) -> None:
        """Give the lead up (at shutdown), so another replica takes it on its next tick."""


class SoleLeader:
    """SQLite: one replica, so this process always leads."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLockLeader:
    """pg_try_advisory_lock on a dedicated autocommit connection; the lock is the session's, so it lasts
    exactly as long as the connection does. The key is derived from the database and schema, so two svcbot
    installations sharing a PostgreSQL server (or one database, in two schemas) elect separately."""

    def __init__(self, database: PostgresDatabase, name: str = LEADER_LOCK) -> None:
        self.database = database
        self.name = name
        self._connection: psycopg.Connection[dict[str, Any]] | None = None
        self._key: int | None = None
        self._held = False

    def acquire(self) -> bool:
        try:
            connection = self._connect()
            if self._held:
                connection.execute("SELECT 1")  # still connected, so still ours
            else:
                row = connection.execute("SELECT pg_try_advisory_lock(%s) AS held", (self._key,)).fetchone()
                self._held = bool(row and row["held"])
        except BotError as exc:
            self._drop(f"cannot reach the store: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - any driver error means the session, and the lock, is gone
            self._drop(f"the leader's connection failed: {type(exc).__name__}")
        return self._held

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            if self._held:
                connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        with contextlib.suppress(Exception):
            connection.close()
        self._held = False

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        connection = self.database.connect()
        try:
            for setting, value in _LEADER_KEEPALIVES.items():
                connection.execute(f"SET {setting} = {int(value)}")
            row = connection.execute("SELECT current_database() AS db, current_schema() AS schema").fetchone()
        except BaseException:
            with contextlib.suppress(Exception):
                connection.close()
            raise
        where = f"{row['db']}.{row['schema']}" if row else ""
        self._key = advisory_key(f"{self.name}:{where}")
        self._connection = connection
        return connection

    def _drop(self, reason: str) -> None:
        if self._held:
            log.warning("background.lead_lost", reason=reason)
        self._held = False
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()


def leadership_for(store: Store) -> Leadership:
    """Advisory-lock leadership on a PostgreSQL store; sole leadership on SQLite."""
    if isinstance(store.database, PostgresDatabase):
        return AdvisoryLockLeader(store.database)
    return SoleLeader()


# --- the loop -------------------------------------------------------------------------------------------------

class BackgroundWork:
    """Runs `jobs` every `interval` seconds on whichever replica leads.

    `store_factory` gives the process's store (`Deploys.store`); it is called on the worker thread, so a
    store that is down at start-up delays the jobs instead of stopping the bot.
    """

    def __init__(self, store_factory: Callable[[], Store], jobs: Sequence[Job], interval: float = DEFAULT_INTERVAL,
                 *, leadership: Leadership | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store_factory = store_factory
        self.jobs = tuple(jobs)
        self.interval = interval
        self.leadership = leadership
        self.clock = clock
        self.leading = False
        self.ticks = 0  # rounds done: leadership checked (and jobs run when leading)
        self.runs: dict[str, int] = {job.name: 0 for job in self.jobs}  # how often each job ran here
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> BackgroundWork:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="svc-background", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the current tick, give up the lead, and stop."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if self.leadership is not None:
            self.leadership.release()
        if self.leading:
            log.info("background.lead_released")
        self.leading = False

    def tick(self) -> bool:
        """One round: check the lead, and run the jobs that are due when this process has it."""
        try:
            return self._tick()
        finally:
            self.ticks += 1

    def _tick(self) -> bool:
        try:
            store = self.store_factory()
        except BotError as exc:
            log.warning("background.store_unavailable", reason=exc.message)
            return self._set_leading(False)
        if self.leadership is None:
            self.leadership = leadership_for(store)
        if not self._set_leading(self.leadership.acquire()):
            return False
        now = self.clock()
        for job in self.jobs:
            if self._stop.is_set():
                break
            every = job.every if job.every is not None else self.interval
            last = self._last.get(job.name)
            if last is not None and now - last < every:
                continue
            self._last[job.name] = now
            self._run(job, store)
        return True

    def _run(self, job: Job, store: Store) -> None:
        started = time.monotonic()
        try:
            changed = job.run(store)
        except BotError as exc:
            log.warning("background.job_failed", job=job.name, reason=exc.message)
            return
        except Exception:
            log.exception("background.job_crashed", job=job.name)
            return
        self.runs[job.name] += 1
        if changed:
            log.info("background.job_done", job=job.name, changed=changed,
                     duration_ms=round((time.monotonic() - started) * 1000))

    def _set_leading(self, leading: bool) -> bool:
        if leading != self.leading:
            log.info("background.leading" if leading else "background.following")
            if leading:
                self._last.clear()  # a new leader runs every job at once
        self.leading = leading
        return leading

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("background.tick_crashed")
            self._stop.wait(self.interval)


# --- the jobs ---------------------------------------------------------------------------------------------------

def _tell(callback: Callable[[Any], None] | None, item: Any, what: str, request_id: str) -> None:
    if callback is None:
        return
    try:
        callback(item)
    except Exception:
        log.exception("background.notify_failed", what=what, request_id=request_id)


def expiry_job(on_expired: Callable[[RequestRecord], None] | None = None, *,
               sweep: Callable[[Store], Sequence[RequestRecord]] = Store.expire_overdue,
               every: float | None = None) -> Job:
    """PENDING requests past their approval deadline become EXPIRED (`sweep`: those this call expired, e.g.
    `bot.deploys.approvals.expire_due`); `on_expired` tells people (the approvals wiring updates the request's
    message). Each request is expired once whoever sweeps, so each is announced once."""

    def run(store: Store) -> int:
        expired = sweep(store)
        for request in expired:
            _tell(on_expired, request, "expired", request.id)
        return len(expired)

    return Job("approval-expiry", run, every)


def recovery_job(on_interrupted: Callable[[Snapshot], None] | None = None, *, every: float | None = None) -> Job:
    """RUNNING runs whose heartbeat went stale (their process died) become INTERRUPTED; `on_interrupted`
    tells the requester in the run's thread (the engine's progress sink). A live run is never touched."""

    def run(store: Store) -> int:
        interrupted = store.interrupt_stale()
        for snapshot in interrupted:
            _tell(on_interrupted, snapshot, "interrupted", snapshot.id)
        return len(interrupted)

    return Job("run-recovery", run, every)


STRANDED_AFTER = 60.0  # seconds an approved request may wait for its run to start before it counts as stranded
STRANDED_REASON = ("not started: svcbot stopped between the approval and the start of its run; nothing was "
                   "deployed: request it again")


def stranded_job(on_cancelled: Callable[[RequestRecord], None] | None = None, *, after: float = STRANDED_AFTER,
                 every: float | None = None, clock: Callable[[], float] = time.time) -> Job:
    """APPROVED requests whose run never began (the process that approved them died before starting it) end
    CANCELLED with a reason, once, and `on_cancelled` tells the requester (their message is updated). Not
    started again behind everyone's back: nobody may be watching any more, and what runs may have changed.
    Requests whose start was refused (the deploy lock was held: `run.not_started`) stay APPROVED for an
    approver to start."""

    def run(store: Store) -> int:
        ended = 0
        now = clock()
        for request in store.requests(states=(State.APPROVED,), limit=500):
            if now - request.updated_at < after or store.run(request.id) is not None:
                continue
            if any(event.event == NOT_STARTED_EVENT for event in store.audit(request.id)):
                continue
            if store.transition(request.id, State.CANCELLED, actor="svcbot", expected=(State.APPROVED,),
                                reason=STRANDED_REASON, now=now):
                ended += 1
                _tell(on_cancelled, store.request(request.id), "stranded", request.id)
        return ended

    return Job("stranded-approvals", run, every)


LEASE_SELECTOR = "app.kubernetes.io/managed-by=svcbot"
RUN_ANNOTATION = "svcbot.io/run"


def lock_housekeeping_job(catalog: Catalog, kube_for: Callable[[str], DeployKube], *, quiet: float = 30.0,
                          every: float | None = 30.0, clock: Callable[[], float] = time.time) -> Job:
    """Deploy locks (Leases) still held for a run the store says is over are released.

    A replica that dies mid-run cannot release its Lease; the run is marked INTERRUPTED by `recovery_job`
    and the Lease would only free itself `leaseDurationSeconds` after its last renewal. This frees it once
    the holder has also been silent for `quiet` seconds (longer than the engine's renewal interval), so a
    re-run can start at once. A Lease naming a run this store does not know (another store's `svcbot run`)
    or a run still RUNNING is left alone, and every release is a PUT with the resourceVersion read.
    """

    def run(store: Store) -> int:
        released = 0
        for cluster, namespace in sorted({(env.cluster, env.namespace) for env in catalog.environments.values()}):
            try:
                kube = kube_for(cluster)
                leases = kube.client.list_leases(namespace, label_selector=LEASE_SELECTOR)
            except BotError as exc:
                log.warning("background.locks_unreadable", cluster=cluster, namespace=namespace, reason=exc.message)
                continue
            released += sum(_release_if_over(store, kube, namespace, lease, quiet=quiet, now=clock())
                            for lease in leases)
        return released

    return Job("lock-housekeeping", run, every)


def _release_if_over(store: Store, kube: DeployKube, namespace: str, lease: dict[str, Any], *, quiet: float,
                     now: float) -> bool:
    lock = rollout.deploy_lock(lease, now)
    metadata = lease.get("metadata") or {}
    run_id = str((metadata.get("annotations") or {}).get(RUN_ANNOTATION) or "")
    if lock is None or not run_id or lock.renewed is None or now - lock.renewed < quiet:
        return False
    try:
        request = store.request(run_id)
    except NotFound:
        return False
    if request.state not in FINAL:
        return False
    spec = dict(lease.get("spec") or {})
    spec.pop("holderIdentity", None)
    name = str(metadata.get("name", ""))
    try:
        kube.replace_lease(namespace, name, {**lease, "spec": spec})
    except Conflict:
        return False  # renewed or taken meanwhile: not ours to touch
    log.warning("lock.released_for_finished_run", lease=name, namespace=namespace, request_id=run_id,
                state=request.state.value, holder=lock.holder)
    return True


def for_deploys(deploys: Deploys, *, on_expired: Callable[[RequestRecord], None] | None = None,
                 sweep: Callable[[Store], Sequence[RequestRecord]] = Store.expire_overdue,
                 interval: float = DEFAULT_INTERVAL, expiry_every: float | None = None) -> BackgroundWork:
    """The bot's background work on its shared clients: approval expiry (`sweep`, announced by `on_expired`),
    interrupted-run recovery (announced through the deploy engine's progress sink, i.e. in the run's Slack
    thread once `serve` has set it), and lock housekeeping on the catalog's clusters. Call start() / stop()."""

    def on_interrupted(snapshot: Snapshot) -> None:
        deploys.engine().sink_for(snapshot).finished(snapshot)

    def kube_for(cluster: str) -> DeployKube:
        from bot.clients.kube import DeployKube  # noqa: PLC0415 - kubernetes is imported when housekeeping first runs

        return DeployKube(deploys.backends.kube(cluster))

    jobs = [expiry_job(on_expired, sweep=sweep, every=expiry_every), recovery_job(on_interrupted),
            stranded_job(on_expired, after=max(deploys.run_settings.stranded_after, deploys.run_settings.stale_after)
                         if deploys.run_settings is not None else STRANDED_AFTER),
            lock_housekeeping_job(deploys.catalog, kube_for)]
    return BackgroundWork(deploys.store, jobs, interval=interval)
