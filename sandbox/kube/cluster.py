"""One sandbox cluster: its store, REST layer, simulation, fault switches and HTTP server."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .api import Api
from .auth import Auth
from .controller import Controller
from .faults import Fault, Faults
from .health import Health
from .registry import Registry
from .resources import BY_KEY
from .server import ClusterServer
from .store import Store
from .util import clone


class Cluster:
    def __init__(self, name: str, namespaces: list[str], health: Health, registry: Registry,  # noqa: PLR0917
                 time_scale: Callable[[], float], served_sink: set[tuple[str, str, str, str]] | None = None,
                 auth: Auth | None = None):
        self.name = name
        self.auth = auth  # None: plain HTTP, no authentication (only for code that builds a Cluster by hand)
        self.namespaces = list(namespaces)
        self.store = Store()
        self.api = Api(self.store, name)
        self.health = health
        self.faults = Faults()
        self.controller = Controller(self, registry, time_scale)
        self.server: ClusterServer | None = None
        self.served: set[tuple[str, str, str, str]] = set()  # (group, resource, subresource, verb)
        self._sink = served_sink
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=5000)
        self.callers: set[tuple[str, str, str, str, str, int]] = set()  # (user, group, resource, sub, verb, code)
        self._served_lock = threading.Lock()
        self.faults.on_change(self._on_fault)

    def record(self, key: tuple[str, str, str, str], method: str, path: str, code: int, user: str = "") -> None:
        with self._served_lock:
            if user:
                self.callers.add((user, *key, code))
            if key[1]:
                self.served.add(key)
                if self._sink is not None:
                    self._sink.add(key)
            self.requests.append((method, path, code))

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    @property
    def port(self) -> int:
        return self.server.port if self.server else 0

    def start(self) -> None:
        self.controller.start()
        self.server = ClusterServer(self)
        self.server.start()

    def stop(self) -> None:
        if self.server:
            self.server.stop()
        self.faults.clear()  # releases stalled requests
        self.controller.stop()
        self.store.close()

    def _on_fault(self, fault: Fault | None) -> None:
        if self.server is None:
            return
        if fault is not None and fault.mode == "down":
            self.server.go_down()
        else:
            self.server.come_up()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until a controller pass makes no writes (the simulation has caught up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.store.rv
            self.controller.run_pass()
            if self.store.rv == before:
                return True
            time.sleep(0.01)
        return False

    def __repr__(self) -> str:
        return f"<Cluster {self.name} {self.url} namespaces={self.namespaces}>"

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Snapshot of stored objects, e.g. cluster.objects("apps/deployments", "prod") (for tests)."""
        key = resource if "/" in resource else f"/{resource}"
        return [clone(o) for o in self.store.list(BY_KEY[key], namespace)]
