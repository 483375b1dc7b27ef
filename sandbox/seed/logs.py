"""The sandbox's log lines: what the seed world's services have been logging for the last two hours.

Structured JSON lines (timestamp, level, service, trace_id, message, plus a few fields) for payment,
orders, gateway and inventory in dev, staging and prod, pushed with the stream labels
{<namespace label>: <namespace>, <service label>: <service>, pod, container}. They tell the same story
as the Kubernetes seed:

- orders in staging lost its database ~25 minutes ago: an error every ~20 s ("database unreachable"),
  retries as warnings, and its checkouts fail (trace STAGING_FAILED_TRACE_ID);
- inventory in prod is in CrashLoopBackOff: every ~5 minutes it starts, logs an error, a fatal panic, and
  the Go runtime's stack trace as plain text (lines that are not JSON);
- requests cross gateway -> orders -> payment with one trace id; PROD_DECLINED_TRACE_ID is a checkout in
  prod ~10 minutes ago that payment declined;
- gateway in prod also prints Go's standard `log` lines (not JSON), and payment in prod logged a
  password and an API key once (the line that proves svcbot masks them).

Timestamps are relative to `now`, so `--since 1h` finds the recent story whenever the sandbox starts. With
`pods`, the lines are under the names of the pods the Kubernetes stand-in runs; from then on the pods log
for themselves (sandbox/kube/sim/logs.py, shipped by sandbox/shipper.py).
Deterministic: the same `now` gives the same lines.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
from collections.abc import Mapping
from typing import Any

SERVICES = ("payment", "orders", "gateway", "inventory")
NAMESPACES = ("dev", "staging", "prod")
PROD_DECLINED_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
STAGING_FAILED_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SECRET_PASSWORD = "hunter2-do-not-log"  # a fake secret: the masking tests look for it
SECRET_API_KEY = "sk_live_51HxSandboxOnlyKey"
HISTORY_SECONDS = 2 * 3600

_PATHS = ("/api/orders", "/api/checkout", "/api/cart", "/api/products", "/healthz")


class _Log:
    """Collects lines per (namespace, service, pod)."""

    def __init__(self, now: float, rng: random.Random, pods: Mapping[tuple[str, str], list[str]] | None = None
                 ) -> None:
        self.now = now
        self.rng = rng
        self.pods = pods or {}
        self._pick = random.Random(7)  # apart from rng, so the story's lines and trace ids stay the same
        self.lines: dict[tuple[str, str, str], list[tuple[int, str]]] = {}

    def pod(self, namespace: str, service: str) -> str:
        suffix = "7c9d8f6b5" if namespace == "prod" else "5f4c7d9b8"
        replica = self.rng.choice("ab")
        real = self.pods.get((namespace, service))
        if real:
            return self._pick.choice(real)
        return f"{service}-{suffix}-{('x2k9q', 'm4t7w')['ab'.index(replica)]}"

    def crashing_pod(self, namespace: str, service: str, default: str) -> str:
        real = self.pods.get((namespace, f"{service}/crashing"))
        return real[0] if real else default

    def json(self, namespace: str, service: str, ago: float, level: str, message: str,  # noqa: PLR0917
             trace_id: str | None = None, pod: str | None = None, **fields: Any) -> None:
        """One JSON line; positional arguments keep the story above readable as a script."""
        timestamp = self.now - ago
        record: dict[str, Any] = {"timestamp": _rfc3339(timestamp), "level": level, "service": service}
        if trace_id:
            record["trace_id"] = trace_id
        record["message"] = message
        record.update(fields)
        self.raw(namespace, service, ago, json.dumps(record, separators=(",", ":")), pod)

    def raw(self, namespace: str, service: str, ago: float, line: str, pod: str | None = None) -> None:
        key = (namespace, service, pod or self.pod(namespace, service))
        self.lines.setdefault(key, []).append((int((self.now - ago) * 1e9), line))

    def trace_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


def _rfc3339(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _background(log: _Log) -> None:
    """Ordinary traffic everywhere: requests crossing the services, periodic jobs, some warnings."""
    rng = log.rng
    for namespace in NAMESPACES:
        ago = float(HISTORY_SECONDS)
        gap = {"dev": 150.0, "staging": 90.0, "prod": 40.0}[namespace]
        while (ago := ago - rng.uniform(gap * 0.5, gap * 1.5)) > 5:
            trace = log.trace_id()
            path = rng.choice(_PATHS)
            millis = rng.randint(3, 180)
            if path == "/healthz":
                log.json(namespace, "gateway", ago, "debug", "GET /healthz 200", path=path, status=200)
                continue
            log.json(namespace, "gateway", ago, "info", f"request started POST {path}", trace, method="POST",
                     path=path)
            if path in ("/api/orders", "/api/checkout"):
                order = f"ord_{rng.randint(10_000, 99_999)}"
                log.json(namespace, "orders", ago - 0.004, "info", "creating order", trace, order_id=order)
                if path == "/api/checkout":
                    amount = rng.randint(500, 25_000)
                    log.json(namespace, "payment", ago - 0.010, "info", "charge authorized", trace,
                             order_id=order, amount_cents=amount, currency="EUR")
                    log.json(namespace, "inventory", ago - 0.016, "info", "stock reserved", trace,
                             order_id=order, sku=f"SKU-{rng.randint(100, 999)}")
                log.json(namespace, "orders", ago - 0.020, "info", "order created", trace, order_id=order)
            status = 200
            if rng.random() < 0.04:
                status = 499
                log.json(namespace, "gateway", ago - millis / 1000, "warn", "client closed the connection",
                         trace, path=path)
            log.json(namespace, "gateway", ago - millis / 1000, "info", f"POST {path} {status} in {millis}ms",
                     trace, status=status, duration_ms=millis)
        for service in SERVICES:
            ago = float(HISTORY_SECONDS)
            while (ago := ago - rng.uniform(240, 420)) > 5:
                log.json(namespace, service, ago, "debug", "cache refreshed", entries=rng.randint(50, 900))
                if rng.random() < 0.15:
                    log.json(namespace, service, ago - 1, "warn", "slow query",
                             duration_ms=rng.randint(800, 2500), table=f"{service}_events")


def _orders_staging_outage(log: _Log) -> None:
    ago = 25 * 60.0
    attempt = 0
    log.json("staging", "orders", ago + 2, "warn", "database connection pool exhausted", pool="primary",
             in_use=20, max=20)
    while ago > 3:
        attempt += 1
        log.json("staging", "orders", ago, "error",
                 "database unreachable: dial tcp 10.0.3.7:5432: connect: connection refused",
                 db_host="orders-db.staging", attempt=attempt)
        if attempt % 3 == 0:
            log.json("staging", "orders", ago - 1, "warn", f"retrying database connection (attempt {attempt})",
                     backoff_ms=min(30_000, 250 * attempt))
        ago -= log.rng.uniform(15, 25)
    trace = STAGING_FAILED_TRACE_ID
    at = 12 * 60.0
    log.json("staging", "gateway", at, "info", "request started POST /api/checkout", trace, method="POST",
             path="/api/checkout")
    log.json("staging", "orders", at - 0.003, "info", "creating order", trace, order_id="ord_40404")
    log.json("staging", "orders", at - 2.003, "error", "order failed: database unreachable", trace,
             order_id="ord_40404")
    log.json("staging", "gateway", at - 2.010, "error", "POST /api/checkout 503 in 2010ms", trace,
             status=503, duration_ms=2010)


def _inventory_prod_crashloop(log: _Log) -> None:
    ago = 40 * 60.0
    restart = 0
    pod = log.crashing_pod("prod", "inventory", "inventory-7c9d8f6b5-q8z2n")
    while ago > 30:
        restart += 1
        log.json("prod", "inventory", ago, "info", "starting inventory v3.1.1", pod=pod, restart=restart)
        log.json("prod", "inventory", ago - 1.2, "error", "failed to load reservations cache: nil map",
                 pod=pod, cache="reservations")
        log.json("prod", "inventory", ago - 1.25, "fatal", "panic: assignment to entry in nil map", pod=pod)
        # What the Go runtime writes to stderr after a panic: not JSON.
        for offset, line in enumerate((
            "panic: assignment to entry in nil map",
            "goroutine 1 [running]:",
            "main.(*ReservationCache).Load(0xc0001a2000, {0x7f1c2e0, 0xc00012e000})",
            "\t/src/inventory/cache.go:42 +0x1d4",
            "main.main()",
            "\t/src/inventory/main.go:27 +0x2b8",
            "exit status 2",
        )):
            log.raw("prod", "inventory", ago - 1.26 - offset * 0.0001, line, pod=pod)
        ago -= log.rng.uniform(280, 320)


def _prod_declined_checkout(log: _Log) -> None:
    trace = PROD_DECLINED_TRACE_ID
    at = 10 * 60.0
    log.json("prod", "gateway", at, "info", "request started POST /api/checkout", trace, method="POST",
             path="/api/checkout", user_agent="Mozilla/5.0")
    log.json("prod", "orders", at - 0.004, "info", "creating order", trace, order_id="ord_77123")
    log.json("prod", "payment", at - 0.011, "info", "charging card", trace, order_id="ord_77123",
             amount_cents=12_999, currency="EUR")
    log.json("prod", "payment", at - 0.240, "warn", "charge declined: card expired", trace,
             order_id="ord_77123", decline_code="expired_card")
    log.json("prod", "orders", at - 0.245, "error", "order failed: payment declined", trace,
             order_id="ord_77123")
    log.json("prod", "gateway", at - 0.250, "warn", "POST /api/checkout 402 in 250ms", trace, status=402,
             duration_ms=250)


def _odd_lines(log: _Log) -> None:
    """Lines that are not JSON, and the line with a secret in it."""
    for ago in (47 * 60.0, 31 * 60.0, 8 * 60.0):
        log.raw("prod", "gateway", ago, f"{_dt.datetime.fromtimestamp(log.now - ago, tz=_dt.UTC):%Y/%m/%d %H:%M:%S}"
                " http: TLS handshake error from 10.0.7.21:51234: EOF")
    log.json("prod", "payment", 5 * 60.0, "warn",
             f"config reload: connecting to ledger with password={SECRET_PASSWORD} (deprecated setting)",
             api_key=SECRET_API_KEY, setting="LEDGER_PASSWORD")


def seed_streams(now: float, *, namespace_label: str = "namespace", service_label: str = "app",
                 pods: Mapping[tuple[str, str], list[str]] | None = None) -> list[dict[str, Any]]:
    """The seed as Loki push streams ({"stream": labels, "values": [["<ns>", "<line>"], ...]}).

    `pods` names the pods that logged: (namespace, service) -> the pods kubectl lists (the seed's lines are
    spread over them), and (namespace, "<service>/crashing") -> [the crash-looping pod]; without it, made-up
    names."""
    log = _Log(now, random.Random(20240501), pods)
    _background(log)
    _orders_staging_outage(log)
    _inventory_prod_crashloop(log)
    _prod_declined_checkout(log)
    _odd_lines(log)
    streams = []
    for (namespace, service, pod), entries in sorted(log.lines.items()):
        entries.sort()
        labels = {namespace_label: namespace, service_label: service, "pod": pod, "container": "app"}
        streams.append({"stream": labels, "values": [[str(timestamp), line] for timestamp, line in entries]})
    return streams
