"""The Prometheus stand-in: scrapes the sandbox clusters' pods (their GET /metrics, sandbox/kube/sim/metrics.py)
into an in-memory TSDB and answers Prometheus' HTTP API with a named PromQL subset (docs/promql-subset.md;
anything else: `bad_data`).

    prom = PrometheusSandbox(kube, interval=1.0)   # SandboxStack.everything() wires it to the stack's kube
    prom.start(); prom.url                         # http://127.0.0.1:<port>/api/v1/query?query=up
    prom.write_config(directory)                   # DIR/prometheus.yml for a REAL Prometheus (config.py)
    prom.stop()

Parts: promql_parser.py (a Pratt parser), promql_eval.py (Prometheus 2.x semantics), tsdb.py (series,
staleness, retention), scraper.py (targets, scrapes; the same targets feed /sandbox/http_sd), http_api.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.httpserver import LOOPBACK, HttpServer
from sandbox.prometheus.http_api import Engine, PrometheusHandler
from sandbox.prometheus.scraper import Scraper, http_sd
from sandbox.prometheus.tsdb import TSDB

if TYPE_CHECKING:
    from sandbox.kube import KubeSandbox

DEFAULT_INTERVAL = 2.0  # seconds between scrapes (Prometheus' default is 1m; the sandbox's history is short)
DEFAULT_RETENTION = 2 * 3600.0


class PrometheusSandbox:
    def __init__(self, kube: KubeSandbox | None = None, *, interval: float = DEFAULT_INTERVAL,
                 retention: float = DEFAULT_RETENTION, host: str = LOOPBACK, port: int = 0,
                 query_timeout: float = 30.0, history: float = 0.0) -> None:
        self.kube = kube  # SandboxStack.start sets it when None
        self.interval = interval
        self.history = history  # seconds of past samples written at start (the pods' metrics are functions of time)
        self.query_timeout = query_timeout
        self.db = TSDB(retention)
        self.engine = Engine(self)
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, parameters) of each API request, for tests
        self.scraper: Scraper | None = None
        self._http = HttpServer(type("SandboxPrometheusHandler", (PrometheusHandler,), {"sandbox": self}),
                                name="sandbox-prometheus", host=host, port=port,
                                error_log=logging.getLogger("sandbox.prometheus"))

    def start(self) -> PrometheusSandbox:
        if self.kube is None:
            raise RuntimeError("PrometheusSandbox needs the sandbox's Kubernetes (kube=...) before start()")
        self._http.start()
        if self.scraper is None:
            self.scraper = Scraper(self.kube, self.db, self.interval, backfill=self.history)
        self.scraper.start()
        return self

    def stop(self) -> None:
        if self.scraper is not None:
            self.scraper.stop()
        self._http.stop()

    def __enter__(self) -> PrometheusSandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def sd_url(self) -> str:
        return f"{self.url}/sandbox/http_sd"

    def addresses(self) -> dict[str, str]:
        return {"prometheus": self.url}

    def environment(self) -> dict[str, str]:
        return {"SVCBOT_SANDBOX_PROMETHEUS_URL": self.url}

    def http_sd(self) -> list[dict[str, Any]]:
        return http_sd(self.kube) if self.kube is not None else []

    def wait_scrapes(self, n: int = 2, timeout: float = 30.0) -> bool:
        """Wait for n more scrape rounds (tests: data is there to query)."""
        return self.scraper is not None and self.scraper.wait_rounds(n, timeout)

    def write_config(self, directory: Path, *, interval: float | None = None) -> Path:
        """DIR/prometheus.yml (+ the CA and the admin token it names) for a real Prometheus; see config.py."""
        from sandbox.prometheus.config import write_config  # noqa: PLC0415

        assert self.kube is not None
        return write_config(directory, self.kube, self.sd_url, interval or self.interval)
