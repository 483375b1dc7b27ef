"""Target discovery and scraping for the Prometheus stand-in.

Targets are the sandbox clusters' pods that carry an `app` label, found afresh at every scrape (a rollout's
new pods appear, deleted ones go), with the labels docs/promql-subset.md fixes and a real Prometheus gets from
DIR/prometheus.yml's http_sd_configs (the same `targets()` list serves both). A scrape reads what GET
/metrics through the pod proxy would answer: nothing when the proxy would refuse (no IP yet, container not
running: `up` 0 and the target's series marked stale, as Prometheus does), the pod's metrics model (the very
samples the text format is written from) otherwise, or a test's /metrics override parsed as text.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

from sandbox.kube.resources import PODS
from sandbox.kube.sim.network import container_ports, pod_metrics
from sandbox.kube.util import ApiError, as_dict, as_list
from sandbox.prometheus.tsdb import TSDB, Labels

if TYPE_CHECKING:
    from sandbox.kube import KubeSandbox

JOB = "sandbox-pods"
log = logging.getLogger("sandbox.prometheus")


@dataclass(frozen=True)
class Target:
    cluster: str
    api_url: str  # the cluster's API server (https://127.0.0.1:port), which proxies to the pod
    namespace: str
    pod: str
    port: int
    labels: dict[str, str]  # job instance cluster namespace pod app

    @property
    def metrics_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}:{self.port}/proxy/metrics"


def targets(kube: KubeSandbox) -> list[Target]:
    """Every pod with an `app` label and an IP, in every cluster (deleted ones while they terminate too:
    their endpoints still answer until the container stops)."""
    out = []
    for cname, cluster in kube.clusters.items():
        with cluster.store.lock:
            pods = cluster.store.list(PODS)
        for pod in pods:
            meta, status = pod["metadata"], as_dict(pod.get("status"))
            app = as_dict(meta.get("labels")).get("app")
            ip = status.get("podIP")
            containers = as_list(as_dict(pod.get("spec")).get("containers"))
            if not app or not ip or not containers:
                continue
            port = next(iter(container_ports(as_dict(containers[0])).values()), 8080)
            labels = {"job": JOB, "instance": f"{ip}:{port}", "cluster": cname, "namespace": meta["namespace"],
                      "pod": meta["name"], "app": str(app)}
            out.append(Target(cname, cluster.url, meta["namespace"], meta["name"], port, labels))
    return out


def http_sd(kube: KubeSandbox) -> list[dict[str, Any]]:
    """The targets in Prometheus' HTTP service discovery format: scrape each pod through its cluster's API
    server (address, scheme https, the pod proxy's path), labelled as the stand-in labels them."""
    return [{"targets": [t.api_url.split("://", 1)[1]],
             "labels": {**t.labels, "__metrics_path__": t.metrics_path, "__scheme__": "https"}}
            for t in targets(kube)]


def scrape(kube: KubeSandbox, target: Target, now: float) -> list[tuple[str, dict[str, str], float]] | None:
    """The samples GET /metrics of the target answers now, or None when the scrape would fail."""
    cluster = kube.clusters[target.cluster]
    ctl = cluster.controller
    with cluster.store.lock:
        try:
            pod, c, _number = ctl.proxy_target(target.namespace, target.pod, str(target.port))
        except ApiError:
            return None
        ep = ctl.core.health.resolve(target.cluster, target.namespace, target.labels["app"], target.pod, "/metrics")
        if ep.status == 404:
            return pod_metrics(ctl.core, pod, c).flat(now)
    if ep.status != 200 or not isinstance(ep.body, str):
        return None
    try:
        return [(s.name, dict(s.labels), float(s.value)) for family in text_string_to_metric_families(ep.body)
                for s in family.samples]
    except ValueError:
        return None


class Scraper:
    """Scrapes every target each `interval` seconds into the TSDB, on a daemon thread."""

    def __init__(self, kube: KubeSandbox, db: TSDB, interval: float, backfill: float = 0.0,
                 backfill_step: float = 30.0) -> None:
        self.kube = kube
        self.db = db
        self.interval = interval
        self.backfill_s = backfill  # seconds of history written before the first scrape (0: none)
        self.backfill_step = backfill_step
        self.rounds = 0
        self.round_done = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[tuple[str, str, str], set[Labels]] = {}  # target -> series keys of its last scrape

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-prometheus-scraper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def wait_rounds(self, n: int, timeout: float) -> bool:
        """Wait until n more scrape rounds have finished (tests)."""
        with self.round_done:
            goal = self.rounds + n
            return self.round_done.wait_for(lambda: self.rounds >= goal, timeout)

    def _run(self) -> None:
        if self.backfill_s > 0:
            try:
                self.write_history(time.time())
            except Exception:  # the live scrapes matter more than the history
                log.exception("writing the metrics history failed")
        next_at = time.monotonic()
        compacted = time.monotonic()
        while not self._stop.is_set():
            try:
                self.scrape_all(time.time())
            except Exception:  # a stand-in's scraper keeps going, as Prometheus does
                log.exception("scrape round failed")
            with self.round_done:
                self.rounds += 1
                self.round_done.notify_all()
            if time.monotonic() - compacted > 60:
                self.db.compact(int(time.time() * 1000))
                compacted = time.monotonic()
            next_at += self.interval
            self._stop.wait(max(next_at - time.monotonic(), 0.0))
            next_at = max(next_at, time.monotonic() - self.interval)

    def write_history(self, now: float) -> None:
        """What scrapes every backfill_step seconds over the last backfill_s seconds would have read from
        the pods running now (the metrics are functions of time, so the past is known): `--since 1h` has a
        history in a sandbox started a minute ago. Runs on the scraper thread before its first scrape."""
        models = []
        for target in targets(self.kube):
            cluster = self.kube.clusters[target.cluster]
            with cluster.store.lock:
                try:
                    pod, c, _number = cluster.controller.proxy_target(target.namespace, target.pod,
                                                                      str(target.port))
                except ApiError:
                    continue
                models.append((target, pod_metrics(cluster.controller.core, pod, c)))
        first = now - self.backfill_s
        for target, model in models:
            t = max(first, model.started + self.backfill_step)
            t -= (t - first) % self.backfill_step  # the same grid for every target
            while t < now - self.backfill_step / 2:
                t_ms = int(t * 1000)
                with self.db.lock:
                    for name, labels, value in model.flat(t):
                        self.db.append({**labels, **target.labels, "__name__": name}, t_ms, value)
                    self.db.append({"__name__": "up", **target.labels}, t_ms, 1.0)
                t += self.backfill_step

    def scrape_all(self, now: float) -> None:
        t_ms = int(now * 1000)
        current = {(t.cluster, t.namespace, t.pod): t for t in targets(self.kube)}
        for key in set(self._seen) - set(current):  # a target gone: its series end now
            self.db.mark_stale(self._seen.pop(key), t_ms)
        for key, target in current.items():
            samples = scrape(self.kube, target, now)
            keys: set[Labels] = set()
            with self.db.lock:
                for name, labels, value in samples or []:
                    full = {**labels, **target.labels, "__name__": name}
                    self.db.append(full, t_ms, value)
                    keys.add(tuple(sorted(full.items())))
                up = {"__name__": "up", **target.labels}
                self.db.append(up, t_ms, 0.0 if samples is None else 1.0)
                keys.add(tuple(sorted(up.items())))
                self.db.mark_stale(self._seen.get(key, set()) - keys, t_ms)
            self._seen[key] = keys
