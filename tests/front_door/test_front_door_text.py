"""Nothing leaks, nothing renders: error text from backends and text users typed are untrusted (no live Slack
markup in blocks or in the fallback text), errors built from backend data are masked like answers, and the
terminal refuses overlong text as Slack does."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from front_door_servers import Scripted, write_kubeconfig

from bot.clients.backends import Backends
from bot.core.catalog import load_catalog
from bot.dispatch.dispatcher import MAX_TEXT, Dispatcher
from bot.render import slack as slack_render
from bot.render import text as text_render
from bot.render.views import to_document
from bot.replies.base import Reply
from commands import registry

# Slack syntax that must never come out live: specials (<!here>), links with a label, channel links.
LIVE = re.compile(r"<(?:!(?!subteam)|https?://|#C)")


def dispatcher(example_catalog_path: Path, tmp_path: Path, loki_url: str) -> Dispatcher:
    raw = yaml.safe_load(example_catalog_path.read_text())
    raw["loki"]["url"] = loki_url
    raw["settings"]["command_deadline"] = "5s"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    catalog = load_catalog(path)
    return Dispatcher(catalog, Backends(catalog), registry())


def slack_texts(reply: Reply) -> str:
    message = slack_render.render(to_document(reply))
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


class TestUntrustedText:
    def test_a_proxy_error_page_cannot_render_a_link(self, scripted: Scripted, example_catalog_path: Path,
                                                    tmp_path: Path) -> None:
        scripted.status = 502
        scripted.headers = {"Content-Type": "text/html"}
        scripted.body = b"<http://evil.example|click here> <!channel> <html><body>Bad Gateway</body></html>"
        reply = dispatcher(example_catalog_path, tmp_path, scripted.url).execute("logs payment dev", "U01AAA")
        rendered = slack_texts(reply)
        assert "click here" in rendered  # the text is shown...
        assert not LIVE.search(rendered), rendered  # ...but nothing in it is live

    def test_user_text_in_the_fallback_cannot_notify(self, scripted: Scripted, example_catalog_path: Path,
                                                    tmp_path: Path) -> None:
        scripted.body = json.dumps({"status": "success", "data": {"resultType": "streams", "result": []}}).encode()
        bot = dispatcher(example_catalog_path, tmp_path, scripted.url)
        for text in ("trace '<!here>'", "status '<!channel>'", "logs '<http://evil|x>'"):
            reply = bot.execute(text, "U01AAA")
            message = slack_render.render(to_document(reply))
            assert not LIVE.search(message.text), (text, message.text)
            assert not LIVE.search(json.dumps(message.blocks)), text

    def test_a_secret_in_a_malformed_entry_is_masked(self, scripted: Scripted, example_catalog_path: Path,
                                                     tmp_path: Path) -> None:
        scripted.body = json.dumps({"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"app": "payment"}, "values": [["not-a-time", "db password=hunter2 connected"]]}]}}).encode()
        reply = dispatcher(example_catalog_path, tmp_path, scripted.url).execute("logs payment dev", "U01AAA")
        rendered = slack_texts(reply) + text_render.render(to_document(reply))
        assert "malformed" in rendered
        assert "hunter2" not in rendered


class TestTextLength:
    def test_the_terminal_refuses_overlong_text_quickly(self, scripted: Scripted, example_catalog_path: Path,
                                                        tmp_path: Path) -> None:
        bot = dispatcher(example_catalog_path, tmp_path, scripted.url)
        text = "logs payment --grep " + "a" * 1_000_000
        started = time.monotonic()
        reply = bot.execute(text, "alice", source="terminal")
        assert time.monotonic() - started < 1.0
        shown = text_render.render(to_document(reply))
        assert f"svcbot reads at most {MAX_TEXT:,}" in shown
        assert len(shown) < 500

    def test_text_at_the_limit_is_read(self, scripted: Scripted, example_catalog_path: Path,
                                       tmp_path: Path) -> None:
        bot = dispatcher(example_catalog_path, tmp_path, scripted.url)
        text = "help " + " " * (MAX_TEXT - 5)
        assert "at most" not in text_render.render(to_document(bot.execute(text, "alice", source="terminal")))


SECRET_ERROR = "db password=hunter2 refused"


def kube_dispatcher(example_catalog_path: Path, tmp_path: Path, url: str,
                    monkeypatch: pytest.MonkeyPatch) -> Dispatcher:
    """The example catalog with both clusters at `url` (one kubeconfig context) and a 5 s command deadline."""
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", url)))
    raw = yaml.safe_load(example_catalog_path.read_text())
    raw["clusters"] = {"nonprod": {"context": "prod-ctx"}, "prod": {"context": "prod-ctx"}}
    raw["settings"]["command_deadline"] = "5s"
    raw["services"]["payment"]["config"]["dir"] = str(example_catalog_path.parent / "configs" / "payment")
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    catalog = load_catalog(path)
    return Dispatcher(catalog, Backends(catalog), registry())


def shown(reply: Reply) -> str:
    """Everything a person could see of a reply: Slack's blocks and fallback text, and the terminal's text."""
    return slack_texts(reply) + "\n" + text_render.render(to_document(reply))


def status_error(message: str) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                       "reason": "InternalError", "code": 500}).encode()


class TestBackendTextInsideReplies:
    """Errors inside an answer (one environment's, one pod's, the sparkline's) are masked like whole-command
    errors: a backend answering `password=hunter2` never shows it."""

    def test_status_per_environment_errors(self, scripted: Scripted, example_catalog_path: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        scripted.status, scripted.body = 500, status_error(SECRET_ERROR)
        for text in ("status payment", "status payment dev", "status all"):  # a fresh breaker each time
            reply = kube_dispatcher(example_catalog_path, tmp_path, scripted.url, monkeypatch).execute(text, "U01AAA")
            seen = shown(reply)
            assert "refused" in seen, (text, seen)  # the error is shown...
            assert "hunter2" not in seen, (text, seen)  # ...without its secret

    def test_probe_per_pod_errors(self, scripted: Scripted, example_catalog_path: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
        labels = {"app": "payment"}
        container = {"name": "app", "image": "registry.example.com/payment:1.4.1",
                     "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}}}
        deployment = {"kind": "Deployment", "metadata": {"name": "payment-api", "namespace": "dev", "uid": "d1",
                                                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
                      "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                               "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
                      "status": {"replicas": 1, "readyReplicas": 1}}
        replicaset = {"kind": "ReplicaSet", "metadata": {
            "name": "payment-api-5d8f", "namespace": "dev", "uid": "r1", "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"kind": "Deployment", "name": "payment-api", "uid": "d1"}]},
            "spec": {"replicas": 1, "template": deployment["spec"]["template"]}, "status": {"replicas": 1}}
        pod = {"kind": "Pod", "metadata": {"name": "payment-api-1", "namespace": "dev", "labels": labels,
                                           "ownerReferences": [{"kind": "ReplicaSet", "name": "payment-api-5d8f",
                                                                "uid": "r1"}]},
               "spec": {"containers": [container], "nodeName": "n1"},
               "status": {"phase": "Running", "podIP": "10.0.0.1",
                          "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0,
                                                 "image": container["image"], "state": {"running": {}}}]}}
        scripted.routes = [
            ("/proxy/", 503, status_error(f"error trying to reach service: {SECRET_ERROR}")),
            ("/deployments/payment-api", 200, json.dumps(deployment).encode()),
            ("/replicasets", 200, json.dumps({"kind": "ReplicaSetList", "items": [replicaset]}).encode()),
            ("/pods", 200, json.dumps({"kind": "PodList", "items": [pod]}).encode()),
        ]
        scripted.body = json.dumps({"kind": "List", "items": []}).encode()
        reply = kube_dispatcher(example_catalog_path, tmp_path, scripted.url, monkeypatch).execute(
            "probe payment dev", "U01AAA")
        seen = shown(reply)
        assert "payment-api-1" in seen, seen
        assert "refused" in seen, seen
        assert "hunter2" not in seen, seen

    def test_logs_series_problem(self, scripted: Scripted, example_catalog_path: Path, tmp_path: Path) -> None:
        scripted.body = json.dumps({"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"app": "payment"}, "values": [[str(time.time_ns()), "level=info all good"]]}]}}).encode()
        scripted.routes = [("count_over_time", 500, f"loki: {SECRET_ERROR}".encode())]
        reply = dispatcher(example_catalog_path, tmp_path, scripted.url).execute("logs payment dev", "U01AAA")
        seen = shown(reply)
        assert "all good" in seen, seen
        assert "refused" in seen, seen
        assert "hunter2" not in seen, seen
