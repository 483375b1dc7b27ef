"""Object storage for one cluster: a global resourceVersion counter bumped on every write, and the
history of changes that watches read from."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .resources import ResourceType


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: str  # resource key "group/plural"
    namespace: str
    obj: dict[str, Any]  # the object after the change (for DELETED: the last state, with the deletion rv)
    old: dict[str, Any] | None


class Store:
    def __init__(self, history: int = 5000, first_rv: int = 1000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._rv = first_rv
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._history: list[Change] = []
        self._max_history = history
        self._oldest_rv = first_rv  # a watch may start from this rv or later
        self.closed = False
        self.write_hooks: list[Any] = []
        self.watch_epoch = 0  # grows when watches are expired (expire_watches)

    @property
    def rv(self) -> int:
        return self._rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (callers must not mutate it)."""
        with self.lock:
            return self._objects.get(rt.key, {}).get((namespace if rt.namespaced else "", name))

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            bucket = self._objects.get(rt.key, {})
            keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
            return [bucket[k] for k in keys]

    def put(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Store obj (taking ownership of it), bump the resourceVersion, record the change."""
        with self.lock:
            meta = obj["metadata"]
            ns = meta.get("namespace", "") if rt.namespaced else ""
            key = (ns, meta["name"])
            bucket = self._objects.setdefault(rt.key, {})
            old = bucket.get(key)
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[key] = obj
            self._record(Change(self._rv, "MODIFIED" if old is not None else "ADDED", rt.key, ns, obj, old))
            return obj

    def remove(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            ns = namespace if rt.namespaced else ""
            bucket = self._objects.get(rt.key, {})
            old = bucket.pop((ns, name), None)
            if old is None:
                return None
            self._rv += 1
            final = dict(old)
            final["metadata"] = dict(old["metadata"], resourceVersion=str(self._rv))
            self._record(Change(self._rv, "DELETED", rt.key, ns, final, old))
            return final

    def _record(self, change: Change) -> None:
        self._history.append(change)
        if len(self._history) > 2 * self._max_history:
            del self._history[: self._max_history]
            self._oldest_rv = self._history[0].rv - 1
        self.cond.notify_all()
        for hook in self.write_hooks:
            hook(change)

    def changes_since(self, rv: int) -> list[Change] | None:
        """Changes with resourceVersion > rv, or None when rv is older than the kept history."""
        with self.lock:
            if rv < self._oldest_rv:
                return None
            if not self._history or self._history[-1].rv <= rv:
                return []
            # every write records exactly one change, so resourceVersions in the history are contiguous
            start = max(0, rv + 1 - self._history[0].rv)
            return self._history[start:]

    def expire_watches(self) -> None:
        """What a compaction does to watchers: every open watch ends with a 410 Expired ERROR event, and a
        watch or list resumed from a resourceVersion before now gets 410 too (clients relist)."""
        with self.cond:
            self._history.clear()
            self._oldest_rv = self._rv
            self.watch_epoch += 1
            self.cond.notify_all()

    def wait(self, timeout: float) -> None:
        with self.cond:
            self.cond.wait(timeout)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
