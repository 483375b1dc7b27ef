"""Backend clients, created lazily on first use so a down or misconfigured backend never stops the bot
from starting or answering the verbs that do not need it.

Each backend's section below is owned by its client module's author; commands reach clients only
through here (`invocation.backends.<name>(...)`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from bot.core.errors import BotError, NotFound

if TYPE_CHECKING:
    from bot.clients.kube import KubeClient
    from bot.clients.loki import LokiClient
    from bot.clients.prometheus import PrometheusClient
    from bot.core.catalog import Catalog

log = structlog.get_logger("svcbot.backends")


class Backends:
    """Holds the clients one process shares between commands (one per cluster, one Loki, one store)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()

    # --- Kubernetes (bot/clients/kube/) -------------------------------------------------------------------
    # bot.clients.kube (and with it the kubernetes package) is imported on first use only: the layers that
    # import this module must not depend on kubernetes, and verbs without a cluster start faster.

    _kube_clients: dict[str, KubeClient] | None = None

    def kube(self, cluster: str) -> KubeClient:
        """The client for one catalog cluster, created on first use and shared by every command thread."""
        from bot.clients.kube import KubeClient  # noqa: PLC0415 - see above

        spec = self.catalog.clusters.get(cluster)
        if spec is None:
            raise NotFound(f"unknown cluster '{cluster}' (known: {', '.join(self.catalog.clusters)})")
        with self._lock:
            if self._kube_clients is None:
                self._kube_clients = {}
            client = self._kube_clients.get(cluster)
            if client is None:
                namespaces = {env.namespace: name for name, env in self.catalog.environments.items()
                              if env.cluster == cluster}
                client = self._kube_clients[cluster] = KubeClient(cluster, spec, namespaces)
            return client

    def kube_for_env(self, env: str) -> KubeClient:
        """The client for the cluster an environment lives on (its namespace: catalog.environment(env))."""
        return self.kube(self.catalog.environment(env).cluster)

    def prepare_kube(self) -> None:
        """Import the Kubernetes client and build every cluster's client (no requests); a cluster whose
        config is broken is left for its commands to report."""
        for cluster in self.catalog.clusters:
            try:
                self.kube(cluster).prepare()
            except BotError as exc:
                log.info("kube.not_prepared", cluster=cluster, reason=exc.message)

    def close_kube(self) -> None:
        """Drop every cluster's connection pool (called from close())."""
        with self._lock:
            clients = list((self._kube_clients or {}).values())
        for client in clients:
            client.close()

    # --- Loki (bot/clients/loki.py) ------------------------------------------------------------------------
    # Built on first use: a missing or down Loki only affects the log verbs (they answer with why).

    _loki_client: LokiClient | None = None

    def loki(self) -> LokiClient:
        """The Loki client from catalog.loki, shared by every command thread."""
        from bot.clients.loki import LokiClient  # noqa: PLC0415 - see above
        from bot.core.errors import UserError  # noqa: PLC0415 - keeps this section self-contained

        if self.catalog.loki is None:
            raise UserError("Loki is not configured in the catalog (add a `loki:` section with its url)")
        with self._lock:
            if self._loki_client is None:
                self._loki_client = LokiClient.from_catalog(self.catalog.loki)
            return self._loki_client

    def close_loki(self) -> None:
        """Drop Loki's connection pool (to be called from close())."""
        with self._lock:
            client, self._loki_client = self._loki_client, None
        if client is not None:
            client.close()

    # --- Prometheus (bot/clients/prometheus.py) ------------------------------------------------------------
    # One client per configured Prometheus (a cluster's own, or the global one), built on first use.

    _prometheus_clients: dict[tuple[str, str | None, str], PrometheusClient] | None = None

    def prometheus(self, cluster: str) -> tuple[PrometheusClient, str | None]:
        """The client of the Prometheus holding `cluster`'s metrics, and the cluster label value to match
        (None when that Prometheus has no cluster label); UserError when none is configured."""
        from bot.clients.prometheus import PrometheusClient  # noqa: PLC0415 - see above
        from bot.core.errors import UserError  # noqa: PLC0415 - keeps this section self-contained

        found = self.catalog.prometheus_for(cluster)
        if found is None:
            raise UserError("Prometheus is not configured in the catalog (add a `prometheus:` section with its url, "
                            f"or `prometheus:` under clusters.{cluster})")
        config, cluster_value = found
        key = (config.url, config.tenant, config.auth_env)
        with self._lock:
            if self._prometheus_clients is None:
                self._prometheus_clients = {}
            client = self._prometheus_clients.get(key)
            if client is None:
                client = self._prometheus_clients[key] = PrometheusClient.from_catalog(config)
            return client, cluster_value

    def prometheus_configured(self, cluster: str) -> bool:
        return self.catalog.prometheus_for(cluster) is not None

    def close_prometheus(self) -> None:
        with self._lock:
            clients = list((self._prometheus_clients or {}).values())
            self._prometheus_clients = None
        for client in clients:
            client.close()

    def close(self) -> None:
        """Release connections; safe to call twice."""
        self.close_prometheus()
        self.close_loki()
        self.close_kube()
