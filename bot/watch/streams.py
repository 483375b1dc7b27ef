"""The watcher's view of the clusters: one thread per (cluster, namespace, kind) keeping a cache of the objects
current, from a list and then a watch resumed from the last resourceVersion (bookmarks move it on too).

- The server ends a watch (its timeoutSeconds) or the connection drops: the next watch starts from the last
  resourceVersion seen, with no list, so nothing is seen twice and nothing is missed.
- 410 Gone (the version is too old): list again and replace the cache. Detection is judged on the state, not
  on events, and the store knows what is already announced, so a re-list announces nothing twice.
- A cluster that does not answer: retried with backoff and jitter; `failing_since` says since when.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from bot.clients.kube import KubeClient
from bot.clients.kube.streams import WatchExpired, WatchStream, list_for_watch
from bot.core.errors import BotError

log = structlog.get_logger("svcbot.watch")

JSON = dict[str, Any]
BACKOFF_BASE = 0.5
BACKOFF_CAP = 10.0
LIST_DEADLINE = 15.0  # seconds for one list


class ObjectStream:
    """Objects of one kind in one namespace of one cluster, kept current by a watch."""

    def __init__(self, cluster: str, namespace: str, resource: str, client: Callable[[], KubeClient],
                 on_change: Callable[[], None], *, watch_timeout: int = 300) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.resource = resource
        self._client = client
        self._on_change = on_change
        self.watch_timeout = watch_timeout
        self.objects: dict[str, JSON] = {}
        self.resource_version = ""
        self.synced = threading.Event()  # the first list is in
        self.failing_since: float | None = None
        self.lists = 0  # how many lists (1 + one per 410 Gone): tests and metrics
        self.watches = 0  # how many watch requests the server answered
        self.events = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._random = random.Random()  # noqa: S311 - jitter, not secrets
        self._thread = threading.Thread(target=self._run, name=f"watch-{cluster}-{namespace}-{resource}",
                                        daemon=True)

    def start(self) -> ObjectStream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> list[JSON]:
        with self._lock:
            return list(self.objects.values())

    def get(self, name: str) -> JSON | None:
        with self._lock:
            return self.objects.get(name)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if not self.resource_version:
                    self._list()
                self._watch()
                attempt = 0
                self.failing_since = None
            except WatchExpired as exc:
                log.info("watch.expired", cluster=self.cluster, namespace=self.namespace, resource=self.resource,
                         reason=exc.message)
                self.resource_version = ""  # list again
            except BotError as exc:
                if self._stop.is_set():
                    return
                if self.failing_since is None:
                    self.failing_since = time.time()
                    log.warning("watch.failing", cluster=self.cluster, namespace=self.namespace,
                                resource=self.resource, reason=exc.message)
                attempt += 1
                self._on_change()
                delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 8))
                self._stop.wait(delay * self._random.uniform(0.5, 1.5))
            except Exception:
                log.exception("watch.crashed", cluster=self.cluster, namespace=self.namespace, resource=self.resource)
                self._stop.wait(BACKOFF_CAP)

    def _connected(self) -> None:
        self.watches += 1

    def _list(self) -> None:
        items, version = list_for_watch(self._client(), self.resource, self.namespace,
                                        deadline=time.monotonic() + LIST_DEADLINE)
        with self._lock:
            self.objects = {_name(item): item for item in items}
            self.resource_version = version
        self.lists += 1
        self.failing_since = None
        self.synced.set()
        self._on_change()

    def _watch(self) -> None:
        stream = WatchStream(self._client(), self.resource, self.namespace, self.resource_version,
                             timeout_seconds=self.watch_timeout, on_connect=self._connected)
        self._stream = stream
        if self._stop.is_set():
            return
        try:
            for kind, obj in stream:
                if self._stop.is_set():
                    return
                version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if kind != "BOOKMARK":
                    with self._lock:
                        if kind == "DELETED":
                            self.objects.pop(_name(obj), None)
                        else:
                            self.objects[_name(obj)] = obj
                    self.events += 1
                    self._on_change()
                if version:
                    self.resource_version = version
                self.failing_since = None
        finally:
            self._stream = None
            stream.close()


def _name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")
