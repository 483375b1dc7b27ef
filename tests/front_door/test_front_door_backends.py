"""Slow and broken backends: every Loki, Kubernetes (pod proxy included) and Slack Web API call ends within
its deadline plus one second against a server that answers one byte a second; a Loki probe that met such
a server frees the circuit breaker; a wrong JSON shape from Kubernetes is a backend error naming the cluster."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from front_door_servers import DripServer, Scripted, write_kubeconfig

from bot.clients.breaker import CircuitBreaker
from bot.clients.kube import KubeClient
from bot.clients.loki import LokiClient
from bot.core.catalog import Cluster
from bot.core.errors import BackendError, BackendUnavailable, BotError
from bot.render.document import Document, Paragraph
from bot.render.slack import render
from bot.slack.webapi import Destination, SlackPoster, make_web_client

DEADLINE = 2.0  # seconds given to each call
MARGIN = 1.0  # the bound: deadline + 1 s


def timed(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test looks at what came out
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def kube_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> KubeClient:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", url)))
    client = KubeClient("prod", Cluster(context="prod-ctx"), {"prod": "prod"})
    client.prepare()  # as `svcbot serve` does at start: the deadlines below are the calls' own
    return client


class TestSlowDrip:
    def test_loki_calls_end_by_their_deadline(self, drip: DripServer) -> None:
        client = LokiClient(drip.url, environ={})
        calls: dict[str, Callable[[float], Any]] = {
            "query_range": lambda d: client.query_range('{app="x"}', start_ns=0, end_ns=1, deadline=d),
            "query": lambda d: client.query("sum(rate({app=\"x\"}[1m]))", deadline=d),
            "labels": lambda d: client.labels(deadline=d),
            "label_values": lambda d: client.label_values("app", deadline=d),
            "ready": lambda d: client.ready(deadline=d),
        }
        for name, call in calls.items():
            client.breaker = CircuitBreaker(f"Loki {name}")  # each call meets the server, not an open breaker
            seconds, error = timed(lambda call=call: call(time.monotonic() + DEADLINE))
            assert seconds < DEADLINE + MARGIN, f"{name} took {seconds:.1f}s"
            if name != "ready":
                assert isinstance(error, BackendUnavailable), f"{name}: {error!r}"
                assert "Loki" in error.message
        client.close()

    def test_kube_calls_end_by_their_deadline(self, drip: DripServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        client = kube_client(tmp_path, monkeypatch, drip.url)
        calls: dict[str, Callable[[float], Any]] = {
            "read_deployment": lambda d: client.read_deployment("prod", "payment-api", deadline=d),
            "list_pods": lambda d: client.list_pods("prod", "app=payment", deadline=d),
            "list_events": lambda d: client.list_events("prod", deadline=d),
            "read_lease": lambda d: client.read_lease("prod", "svcbot-lock-payment", deadline=d),
            "pod_http_get": lambda d: client.pod_http_get("prod", "payment-1", 8080, "/healthz", deadline=d),
        }
        for name, call in calls.items():
            client.breaker = CircuitBreaker(f"cluster prod {name}")
            seconds, error = timed(lambda call=call: call(time.monotonic() + DEADLINE))
            assert seconds < DEADLINE + MARGIN, f"{name} took {seconds:.1f}s"
            assert error is None or isinstance(error, BotError), f"{name}: {error!r}"
            if error is not None:
                assert "cluster prod" in str(error)
        client.close()

    def test_slack_web_api_and_response_url_end_by_their_deadline(self, drip: DripServer) -> None:
        poster = SlackPoster(make_web_client("xoxb-test", drip.url + "/api/"), call_deadline=DEADLINE)
        message = render(Document(summary="hello", elements=(Paragraph("hello"),)))
        calls: dict[str, Callable[[], Any]] = {
            "chat.postMessage": lambda: poster.post("C0SANDBOX", message),
            "response_url": lambda: poster.respond(drip.url + "/response", message),
            "deliver": lambda: poster.deliver(message, Destination(channel="C0SANDBOX", user="U01AAA")),
        }
        for name, call in calls.items():
            seconds, error = timed(call)
            assert seconds < DEADLINE + MARGIN, f"{name} took {seconds:.1f}s"
            assert isinstance(error, BackendUnavailable), f"{name}: {error!r}"
        # usergroups: Slack that cannot say means nobody, at once
        seconds, _ = timed(lambda: poster.usergroup_members("S0SRE"))
        assert seconds < DEADLINE + MARGIN

    def test_drip_cut_is_a_failure_that_frees_the_loki_breaker(self, scripted: Scripted) -> None:
        """The breaker opens on drips, its half-open probe meets the drip too and fails at its deadline
        (it does not hang), and once Loki is healthy the next probe closes it."""
        drip = DripServer("body")
        client = LokiClient(drip.url, environ={})
        client.breaker = CircuitBreaker("Loki", threshold=1, reset_after=0.5)
        def call_through() -> tuple[float, Any]:
            """The first call the breaker lets through (refusals while open come back at once)."""
            give_up = time.monotonic() + 10
            while True:
                started = time.monotonic()
                try:
                    return time.monotonic() - started, client.labels(deadline=time.monotonic() + DEADLINE)
                except BackendUnavailable as exc:
                    if "not retrying yet" in exc.message and time.monotonic() < give_up:
                        time.sleep(0.05)
                        continue
                    return time.monotonic() - started, exc

        try:
            for _ in range(2):  # the failure that opens it, then the half-open probe after reset_after
                seconds, outcome = call_through()
                assert seconds < DEADLINE + MARGIN
                assert isinstance(outcome, BackendUnavailable)
                assert "not retrying yet" not in outcome.message
                assert client.breaker.state == "open"
            # Loki is healthy again (same client, new address): the next probe goes through and closes it.
            scripted.body = json.dumps({"status": "success", "data": ["app"]}).encode()
            client.base_url = scripted.url
            assert call_through()[1] == ["app"]
            assert client.breaker.state == "closed"
        finally:
            client.close()
            drip.close()

    def test_a_probe_that_never_ends_frees_the_breaker_after_its_limit(self) -> None:
        now = [0.0]
        breaker = CircuitBreaker("Loki", threshold=1, reset_after=1.0, probe_limit=30.0, clock=lambda: now[0])
        breaker.before_call()
        breaker.failure()
        now[0] = 2.0
        breaker.before_call()  # the probe, which never reports back
        with pytest.raises(BackendUnavailable):
            breaker.before_call()
        now[0] = 33.0
        breaker.before_call()  # a new probe: the stuck one counts as failed
        breaker.success()
        assert breaker.state == "closed"


class TestWrongShapes:
    @pytest.mark.parametrize("items", [7, "seven", {"a": 1}])
    def test_items_that_are_not_a_list(self, scripted: Scripted, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, items: object) -> None:
        scripted.body = json.dumps({"kind": "PodList", "items": items}).encode()
        client = kube_client(tmp_path, monkeypatch, scripted.url)
        with pytest.raises(BackendError) as caught:
            client.list_pods("prod", "app=payment", deadline=time.monotonic() + 10)
        assert "cluster prod" in caught.value.message
        assert "not a list" in caught.value.message
        client.close()

    def test_answer_that_is_not_an_object(self, scripted: Scripted, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        scripted.body = b"[1, 2, 3]"
        client = kube_client(tmp_path, monkeypatch, scripted.url)
        with pytest.raises(BackendError, match="cluster prod"):
            client.read_deployment("prod", "payment-api", deadline=time.monotonic() + 10)
        client.close()
