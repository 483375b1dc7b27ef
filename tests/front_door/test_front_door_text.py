"""Nothing leaks, nothing renders: error text from backends and text users typed are untrusted (no live Slack
markup in blocks or in the fallback text), errors built from backend data are masked like answers, and the
terminal refuses overlong text as Slack does."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import yaml
from front_door_servers import Scripted

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
