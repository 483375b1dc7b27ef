"""The watcher: streams for the namespaces channels watch, incidents judged from what they hold.

Runs on the replica that leads the background work (`leading()`, bot/deploys/background.py), on threads of
its own, never on the command lanes. A supervisor thread checks the lead and the subscriptions every
`interval` seconds and starts or stops streams (bot/watch/streams.py: one per cluster, namespace and kind);
an evaluator thread, woken by every change the streams see (and every `interval` anyway, for thresholds in
time and for deploy runs that end), judges each watched service and environment (bot/watch/detect.py) and
writes what changed into the book (bot/watch/book.py): open, update in place, a line in the thread, resolve.
`on_written()` then wakes the Slack sender.

svcbot's own deploys: while a run is active for the service and environment (and for `watch.after_deploy`
after it ended), no incident opens: the run's thread carries the news. Trouble that outlives that opens one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from bot.clients.kube import KubeClient
from bot.core.catalog import Catalog
from bot.core.errors import BotError
from bot.deploys.store import FINAL, State, Store
from bot.insight import kube_facts
from bot.watch import detect, groups
from bot.watch.book import ALL, Book, Incident, Subscription, channels_for
from bot.watch.streams import ObjectStream

log = structlog.get_logger("svcbot.watch")

JSON = dict[str, Any]
INTERVAL = 1.0
BURST = 0.1  # seconds a pass waits after the first change of a burst
RESOURCES = ("pods", "deployments", "horizontalpodautoscalers")
ErrorLines = Callable[[str, str, Sequence[str]], tuple[str, ...]]


@dataclass(frozen=True)
class Target:
    service: str
    env: str
    cluster: str
    namespace: str
    deployment: str
    container: str


def targets(catalog: Catalog, subscriptions: Sequence[Subscription]) -> list[Target]:
    """The (service, env) pairs some channel watches, in catalog order."""
    out = []
    for service_name, service in catalog.services.items():
        for env_name, env in catalog.environments.items():
            if any(sub.covers(service_name, env_name) for sub in subscriptions):
                out.append(Target(service_name, env_name, env.cluster, env.namespace,
                                  service.deployment or service_name, service.container))
    return out


def duration_words(seconds: float) -> str:
    return kube_facts.human_age(seconds)


class Watcher:
    def __init__(self, catalog: Catalog, store: Callable[[], Store], kube: Callable[[str], KubeClient], *,
                 leading: Callable[[], bool] = lambda: True, on_written: Callable[[], None] = lambda: None,
                 error_lines: ErrorLines | None = None, interval: float = INTERVAL, watch_timeout: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self._store = store
        self._kube = kube
        self.leading = leading
        self.on_written = on_written
        self.error_lines = error_lines
        self.interval = interval
        self.watch_timeout = watch_timeout
        self.clock = clock
        self.streams: dict[tuple[str, str, str], ObjectStream] = {}
        self.passes = 0  # evaluation passes done (tests wait for one after a change)
        self.last_pass = 0.0  # the clock of the last pass that judged every watched service
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._targets: list[Target] = []
        self._lock = threading.Lock()
        self._absent: dict[tuple[str, str, str], float] = {}  # open incidents' trouble not seen since
        self._first_seen: dict[tuple[str, str, str], float] = {}  # new trouble waiting for `group_wait`
        self._first_seen_read = False  # read from the store since this replica took the lead

    # --- life -----------------------------------------------------------------------------------------

    def start(self) -> Watcher:
        for name, loop in (("watch-supervisor", self._supervise), ("watch-evaluator", self._evaluate_loop)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._stop_streams(set())
        for thread in self._threads:
            thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    @property
    def book(self) -> Book:
        return Book(self._store())

    # --- supervision: which streams run ---------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self.supervise()
            except BotError as exc:
                log.warning("watch.supervise_failed", reason=exc.message)
            except Exception:
                log.exception("watch.supervise_crashed")
            self._stop.wait(self.interval)

    def supervise(self) -> None:
        """Start the streams the subscriptions need while this replica leads; stop them otherwise."""
        if not self.leading():
            with self._lock:
                self._targets = []
            self._first_seen_read = False
            self._stop_streams(set())
            return
        subscriptions = self.book.subscriptions()
        wanted_targets = targets(self.catalog, subscriptions)
        wanted = {(target.cluster, target.namespace, resource) for target in wanted_targets for resource in RESOURCES}
        self._stop_streams(wanted)
        for key in sorted(wanted - set(self.streams)):
            cluster = key[0]
            self.streams[key] = ObjectStream(cluster, key[1], key[2], lambda c=cluster: self._kube(c),  # type: ignore[misc]
                                             self.wake, watch_timeout=self.watch_timeout).start()
        with self._lock:
            self._targets = wanted_targets
        self.wake()

    def _stop_streams(self, keep: set[tuple[str, str, str]]) -> None:
        for key in [key for key in self.streams if key not in keep]:
            self.streams.pop(key).stop()

    # --- evaluation -----------------------------------------------------------------------------------

    def _evaluate_loop(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(self.interval):
                # Changes come in bursts (a rollout writes many pods at once): one pass for the burst.
                self._stop.wait(BURST)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self.evaluate():
                    self.on_written()
            except BotError as exc:
                log.warning("watch.evaluate_failed", reason=exc.message)
            except Exception:
                log.exception("watch.evaluate_crashed")
            finally:
                self.passes += 1

    def evaluate(self) -> int:
        """One pass over every watched service and environment; how many incidents were written."""
        with self._lock:
            watched = list(self._targets)
        if not watched or not self.leading():
            return 0
        book = self.book
        store = book.store
        rules = self.catalog.watch
        subscriptions = book.subscriptions()
        open_incidents: dict[tuple[str, str], list[Incident]] = {}
        for incident in book.incidents():
            open_incidents.setdefault((incident.service, incident.env), []).append(incident)
        now = self.clock()
        gone = groups.clusters_gone(self.streams, rules.cluster_gone, now)
        written = self._judge_clusters(book, watched, subscriptions, open_incidents=open_incidents, gone=gone,
                                       now=now)
        affected: dict[tuple[str, str], dict[str, detect.Finding]] = {}  # (env, kind) -> service -> finding
        pending: dict[tuple[str, str], list[tuple[Target, detect.Finding, list[str]]]] = {}
        for target in watched:
            if target.cluster in gone:
                continue  # its cache is stale: nothing opens or resolves until it answers
            found = self._findings(target, now)
            if found is None:
                continue
            current = {incident.kind: incident for incident in open_incidents.get((target.service, target.env), [])}
            written += self._resolve_absent(book, target.service, target.env, current, present=set(found),
                                            now=now)
            if not found:
                continue
            quiet = self._deploy_quiet(store, target, now)
            channels = channels_for(subscriptions, target.service, target.env)
            for kind, finding in found.items():
                if not quiet:
                    affected.setdefault((target.env, kind), {})[target.service] = finding
                if kind in current:
                    written += self._record(book, target, finding, current[kind], channels=channels, quiet=quiet,
                                            now=now)
                elif not quiet and channels:
                    pending.setdefault((target.env, kind), []).append((target, finding, channels))
        written += self._open_pending(book, pending, affected, open_incidents, now)
        for env in {target.env for target in watched if target.cluster not in gone}:
            storms = {incident.kind: incident for incident in open_incidents.get((ALL, env), [])
                      if incident.kind != detect.CLUSTER_GONE}  # a cluster may share an environment's name
            present = {kind for (where, kind) in affected if where == env}
            written += self._update_storms(book, env, storms, affected=affected, subscriptions=subscriptions, now=now)
            written += self._resolve_absent(book, ALL, env, storms, present=present, now=now)
        self.last_pass = now
        return written

    def _findings(self, target: Target, now: float) -> dict[str, detect.Finding] | None:
        """What is wrong with the target now; None until its streams have listed."""
        pods_stream = self.streams.get((target.cluster, target.namespace, "pods"))
        deployments_stream = self.streams.get((target.cluster, target.namespace, "deployments"))
        if pods_stream is None or deployments_stream is None:
            return None
        if not (pods_stream.synced.is_set() and deployments_stream.synced.is_set()):
            return None
        hpas_stream = self.streams.get((target.cluster, target.namespace, "horizontalpodautoscalers"))
        hpas = hpas_stream.snapshot() if hpas_stream is not None and hpas_stream.synced.is_set() else []
        deployment = deployments_stream.get(target.deployment)
        pods = _pods_of(deployment, pods_stream.snapshot()) if deployment is not None else []
        return {finding.kind: finding for finding in
                detect.findings(deployment, pods, target.container, self.catalog.watch, now, hpas)}

    def _resolve_absent(self, book: Book, service: str, env: str, current: dict[str, Incident], *,
                        present: set[str], now: float) -> int:
        """Resolve the open incidents whose trouble has been gone for `resolve_after`: a crash loop's pod runs
        for a while between two crashes, and a rollout passes through states that look fine for a moment."""
        written = 0
        for kind, incident in current.items():
            key = (service, env, kind)
            if kind in present:
                self._absent.pop(key, None)
                continue
            gone_since = self._absent.setdefault(key, now)
            if now - gone_since < self.catalog.watch.resolve_after:
                continue
            self._absent.pop(key, None)
            if book.resolve_incident(incident.id, f"resolved after {duration_words(now - incident.opened_at)}",
                                     now=now):
                written += 1
                log.info("watch.resolved", service=service, env=env, kind=kind, incident=incident.id)
        return written

    def _judge_clusters(self, book: Book, watched: list[Target], subscriptions: list[Subscription], *,
                        open_incidents: dict[tuple[str, str], list[Incident]], gone: dict[str, groups.Gone],
                        now: float) -> int:
        written = 0
        for cluster in sorted({target.cluster for target in watched}):
            on_it = [target for target in watched if target.cluster == cluster]
            current = {incident.kind: incident for incident in open_incidents.get((ALL, cluster), [])
                       if incident.kind == detect.CLUSTER_GONE}
            if cluster not in gone:
                written += self._resolve_absent(book, ALL, cluster, current, present=set(), now=now)
                continue
            self._absent.pop((ALL, cluster, detect.CLUSTER_GONE), None)
            finding = groups.cluster_finding(gone[cluster], [(target.service, target.env) for target in on_it], now)
            channels = sorted({channel for target in on_it
                               for channel in channels_for(subscriptions, target.service, target.env)})
            incident = current.get(detect.CLUSTER_GONE)
            change = groups.cluster_change(incident, finding, now) if incident is not None else None
            if incident is not None and change is not None and book.update_incident(
                    incident.id, change.facts, change.fingerprint, change.line, channels=channels, now=now):
                written += 1
                log.info("watch.cluster_changed", cluster=cluster, incident=incident.id, joined=change.joined,
                         left=change.left)
            if incident is None and channels:
                opened = book.open_incident(ALL, cluster, detect.CLUSTER_GONE, facts=finding.facts(),
                                            fingerprint=finding.fingerprint, channels=channels,
                                            reopen_window=self.catalog.watch.reopen_window, now=now)
                if opened is not None:
                    written += 1
                    log.warning("watch.cluster_gone", cluster=cluster, incident=opened.id)
        return written

    def _open_pending(self, book: Book, pending: dict[tuple[str, str], list[tuple[Target, detect.Finding, list[str]]]],
                      affected: dict[tuple[str, str], dict[str, detect.Finding]],
                      open_incidents: dict[tuple[str, str], list[Incident]], now: float) -> int:
        """Open what is new: one incident per service, or one for the storm when `watch.storm` services or more
        of one environment show the same kind."""
        written = 0
        waiting = {(target.service, env, kind) for (env, kind), group in pending.items() for target, _, _ in group}
        self._note_waiting(book, waiting, now)
        for (env, kind), group in pending.items():
            # Trouble seen for the first time waits `group_wait`, so what breaks together is announced together.
            due = [item for item in group
                   if now - self._first_seen[(item[0].service, env, kind)] >= self.catalog.watch.group_wait]
            if not due:
                continue
            group = due if len(affected.get((env, kind), {})) < self.catalog.watch.storm else group
            storm = next((incident for incident in open_incidents.get((ALL, env), []) if incident.kind == kind
                          and kind != detect.CLUSTER_GONE), None)
            members = affected.get((env, kind), {})
            if storm is None and len(members) < self.catalog.watch.storm:
                for target, finding, channels in group:
                    written += self._record(book, target, finding, None, channels=channels, quiet=False, now=now)
                continue
            if storm is not None:
                continue  # its members change in _update_storms, every pass
            finding = groups.storm_finding(env, kind, members)
            channels = sorted({channel for _, _, channels in group for channel in channels})
            opened = book.open_incident(ALL, env, kind, facts=finding.facts(), fingerprint=finding.fingerprint,
                                        channels=channels, reopen_window=self.catalog.watch.reopen_window, now=now)
            if opened is not None:
                written += 1
                log.warning("watch.storm", env=env, kind=kind, services=sorted(members), incident=opened.id)
        return written

    def _note_waiting(self, book: Book, waiting: set[tuple[str, str, str]], now: float) -> None:
        """When each waiting trouble was first seen, kept in the store (written only when the set changes): a
        new leader goes on from there (read once when it takes the lead) instead of starting the wait again."""
        known = self._first_seen if self._first_seen_read else book.pending()
        self._first_seen_read = True
        first_seen = {key: at for key, at in known.items() if key in waiting}
        new = dict.fromkeys(waiting - set(first_seen), now)
        gone = set(known) - waiting
        if new or gone:
            book.note_pending(new, gone)
        self._first_seen = {**first_seen, **new}

    def _update_storms(self, book: Book, env: str, storms: dict[str, Incident], *,
                       affected: dict[tuple[str, str], dict[str, detect.Finding]], subscriptions: list[Subscription],
                       now: float) -> int:
        """An open storm follows its members (bot/watch/groups.py: storm_change), as a service's incident does."""
        written = 0
        for kind, storm in storms.items():
            change = groups.storm_change(storm, affected.get((env, kind), {}), now)
            if change is None:
                continue
            channels = sorted({channel for name in change.joined for channel in channels_for(subscriptions, name, env)})
            if book.update_incident(storm.id, change.facts, change.fingerprint, change.line, channels=channels,
                                    now=now):
                written += 1
                log.info("watch.storm_changed", env=env, kind=kind, joined=change.joined, left=change.left,
                         incident=storm.id)
        return written

    def _record(self, book: Book, target: Target, finding: detect.Finding, incident: Incident | None, *,
                channels: list[str], quiet: bool, now: float) -> int:
        facts = finding.facts()
        if incident is not None:
            old = dict(incident.facts)
            facts["log_lines"] = old.get("log_lines", [])
            if groups.same_facts(old, facts):
                return 0
            changed_shape = finding.fingerprint != incident.fingerprint
            # Silenced: the message still shows where things stand, the thread stays quiet.
            line = f"now: {finding.summary}" if changed_shape and not incident.silenced(now) else ""
            return 1 if book.update_incident(incident.id, facts, finding.fingerprint, line, now=now) else 0
        if quiet or not channels:
            return 0
        facts["log_lines"] = list(self._error_lines(target, finding.pods))
        if finding.kind == detect.NOT_READY and finding.pods:
            facts["lines"] = [*facts["lines"], *self._probe_answers(target, finding.pods)]
        opened = book.open_incident(target.service, target.env, finding.kind, facts=facts,
                                    fingerprint=finding.fingerprint, channels=channels,
                                    reopen_window=self.catalog.watch.reopen_window, now=now)
        if opened is None:
            return 0
        log.info("watch.opened", service=target.service, env=target.env, kind=finding.kind, incident=opened.id,
                 reopened=opened.reopened)
        return 1

    def _deploy_quiet(self, store: Store, target: Target, now: float) -> bool:
        """A svcbot run is active for the service and environment, or ended less than `after_deploy` ago."""
        latest = store.requests(service=target.service, env=target.env, limit=1)
        if not latest:
            return False
        request = latest[0]
        if request.state is State.RUNNING:
            return True
        ran = request.state in FINAL and request.state not in (State.REJECTED, State.EXPIRED, State.CANCELLED)
        return ran and now - request.updated_at < self.catalog.watch.after_deploy

    def _probe_answers(self, target: Target, pods: Sequence[str]) -> list[str]:
        """What the failing readiness probe answered, in probe's words (the kubelet's Unhealthy events)."""
        try:
            events = self._kube(target.cluster).list_events(target.namespace, deadline=time.monotonic() + 5.0)
        except BotError as exc:
            return [f"(probe answers not read: {exc.message})"]
        warnings = kube_facts.recent_warnings(events, {("Pod", pod) for pod in pods}, limit=3)
        return [f"{line.reason}: {line.message}" + (f" (x{line.count})" if line.count > 1 else "")
                for line in warnings if line.reason == "Unhealthy"]

    def _error_lines(self, target: Target, pods: Sequence[str]) -> tuple[str, ...]:
        if self.error_lines is None:
            return ()
        try:
            return self.error_lines(target.service, target.env, pods)
        except BotError as exc:
            return (f"(logs not read: {exc.message})",)

    def watched(self) -> list[Target]:
        with self._lock:
            return list(self._targets)


def _pods_of(deployment: JSON, pods: Sequence[JSON]) -> list[JSON]:
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return []
    return [pod for pod in pods
            if all(((pod.get("metadata") or {}).get("labels") or {}).get(key) == value
                   for key, value in labels.items())]


__all__ = ["ALL", "Target", "Watcher", "targets"]
