"""The sandbox's log collector (what promtail or the OpenTelemetry collector is in a cluster): takes what the
simulated containers print (each cluster's kubelet outbox) and pushes it to the Loki stand-in under the pod's
labels {namespace, app, pod, container}, through Loki's push API, every fraction of a second.

    shipper = LogShipper(kube, loki).start()   # SandboxStack does this when both run
    shipper.flush()                            # push what is waiting now (tests)
    shipper.stop()
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.kube import KubeSandbox

log = logging.getLogger("sandbox.shipper")

PERIOD_S = 0.25  # real seconds between pushes (a collector's batch wait; not scaled: it is plumbing)


class LogShipper:
    def __init__(self, kube: KubeSandbox, loki: Any, *, period: float = PERIOD_S) -> None:
        self.kube = kube
        self.loki = loki
        self.period = period
        self.pushed = 0
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> LogShipper:
        self._thread = threading.Thread(target=self._loop, name="sandbox-log-shipper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.flush()
            except Exception:  # a push that fails is retried with the next batch; never stop collecting
                log.exception("log shipping failed")

    def flush(self) -> int:
        """Push every line waiting in the clusters' outboxes; return how many."""
        with self._lock:
            streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
            taken = []
            for cluster in self.kube.clusters.values():
                outbox = cluster.controller.core.log_outbox
                while outbox:
                    try:
                        labels, lines = outbox.popleft()
                    except IndexError:
                        break
                    taken.append((outbox, labels, lines))
                    values = streams.setdefault(tuple(sorted(labels.items())), [])
                    values.extend([str(int(t * 1e9)), line] for t, line in lines)
            if not streams:
                return 0
            batch = [{"stream": dict(key), "values": values} for key, values in streams.items()]
            try:
                for start in range(0, len(batch), 50):
                    self.loki.push(batch[start:start + 50])
            except Exception:
                self.failures += 1
                for outbox, labels, lines in reversed(taken):  # keep them for the next try
                    outbox.appendleft((labels, lines))
                raise
            count = sum(len(v) for v in streams.values())
            self.pushed += count
            return count
