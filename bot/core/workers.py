"""svcbot's own bounded worker pool for commands (not Bolt's listener executor).

The Slack listener acks at once and hands the command here. A full queue is refused explicitly (the
user is told), never dropped silently; the position in the queue is known so the ack can say it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import structlog

from bot.core import acks, metrics

log = structlog.get_logger("svcbot.workers")
Job = Callable[[], None]


class QueueFull(Exception):
    """Every worker is busy and the waiting line is at its limit."""


class WorkerPool:
    def __init__(self, workers: int, queue_limit: int, name: str = "svc-worker") -> None:
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_limit)
        self._busy = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
                         for index in range(workers)]
        self.workers = workers
        for thread in self._threads:
            thread.start()

    @property
    def busy(self) -> int:
        return self._busy

    def submit(self, job: Job) -> int:
        """Queue a job; returns how many commands wait ahead of it (0 = starts now). Raises QueueFull."""
        with self._lock:
            ahead = max(0, self._queue.qsize() + self._busy - self.workers + 1)
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                metrics.COMMANDS_REJECTED.inc()
                raise QueueFull from None
            metrics.QUEUE_DEPTH.set(self._queue.qsize())
        return ahead

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                self._queue.task_done()
                return
            with self._lock:
                self._busy += 1
                metrics.WORKERS_BUSY.set(self._busy)
                metrics.QUEUE_DEPTH.set(self._queue.qsize())
            try:
                acks.yield_to_acks()
                job()
            except Exception:
                log.exception("worker.job_failed")
            finally:
                with self._lock:
                    self._busy -= 1
                    metrics.WORKERS_BUSY.set(self._busy)
                self._queue.task_done()

    def shutdown(self, grace: float = 10.0) -> bool:
        """Let queued and running commands finish for up to `grace` seconds; True if all did."""
        deadline = time.monotonic() + grace
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                return False
        for thread in self._threads:  # one deadline for all: each running command gets the whole grace
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)
