"""The HTTP front door of `svcbot serve`, spoken to as Slack (and an attacker) would: signed requests from the
sandbox Slack to the real Bolt app behind waitress.

Replays of signed bytes that can change something are refused on every replica sharing the store; bodies
over the limit get 413 before they are read; malformed payloads are 400 (never 500); command text over
4,000 characters is refused before parsing, quickly, with a short quote."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from postgres_support import postgres_schema

from bot.render.document import Document, Paragraph
from bot.render.slack import MAX_BLOCKS, render
from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox, block_actions_payload, interactive_body, sign_request


@pytest.fixture(name="slack", scope="module")
def _slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


def start_bot(slack: SlackSandbox, catalog: Path) -> bot_app.Running:
    environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
               "SVCBOT_SLACK_API_URL": slack.api_url}
    return bot_app.start(catalog, port=0, health_port=0, environ=environ)


@pytest.fixture(name="bots")
def _bots(slack: SlackSandbox, example_catalog_path: Path) -> Iterator[list[bot_app.Running]]:
    """Two replicas of the bot on one store (SVCBOT_DB, set per test)."""
    slack.reset()
    running = [start_bot(slack, example_catalog_path), start_bot(slack, example_catalog_path)]
    yield running
    for bot in running:
        bot.stop(grace=2)


def url(running: bot_app.Running) -> str:
    assert running.events_server is not None
    return f"http://127.0.0.1:{running.events_server.port}/slack/events"


class TestReplays:
    @pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
    def test_a_replayed_command_is_refused_on_every_replica(
            self, slack: SlackSandbox, example_catalog_path: Path, monkeypatch: pytest.MonkeyPatch,
            engine: str) -> None:
        with postgres_schema() if engine == "postgresql" else _nothing() as database:
            if database:
                monkeypatch.setenv("SVCBOT_DB", database)
            slack.reset()
            first, second = start_bot(slack, example_catalog_path), start_bot(slack, example_catalog_path)
            try:
                body, headers = slack.slash_command_request("cancel 20260101-0000-abcd")
                assert slack.post(url(first), body, headers)[0] == 200
                slack.wait_for("response_url", timeout=10)
                for replica in (second, first):  # the same bytes again, to each replica
                    status, text = slack.post(url(replica), body, headers)
                    assert status == 409, text
                    assert "replay" in text
                # A new request with the same words is a new signature: it runs.
                body2, headers2 = slack.slash_command_request("cancel 20260101-0000-abcd")
                assert slack.post(url(second), body2, headers2)[0] == 200
            finally:
                first.stop(grace=2)
                second.stop(grace=2)

    def test_a_replayed_button_click_is_refused(self, slack: SlackSandbox, bots: list[bot_app.Running]) -> None:
        payload = block_actions_payload(action_id="svc_approve", value="20260101-0000-abcd", user_id="U02CCC",
                                        channel_id="C0SANDBOX", message_ts="1700000000.000100",
                                        response_url=slack.response_url(channel_id="C0SANDBOX", user_id="U02CCC"))
        body = interactive_body(payload)
        headers = sign_request(body, slack.signing_secret)
        assert slack.post(url(bots[0]), body, headers)[0] == 200
        assert slack.post(url(bots[1]), body, headers)[0] == 409

    def test_reads_are_not_remembered(self, slack: SlackSandbox, bots: list[bot_app.Running]) -> None:
        """Only requests that can change something cost a write: a replayed `help` changes nothing."""
        body, headers = slack.slash_command_request("help")
        assert slack.post(url(bots[0]), body, headers)[0] == 200
        assert slack.post(url(bots[0]), body, headers)[0] == 200


class _nothing:  # noqa: N801 - a context manager standing in for postgres_schema()
    def __enter__(self) -> str:
        return ""

    def __exit__(self, *_exc: object) -> None:
        return None


def raw_post(port: int, head: bytes, body: bytes = b"", timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(head + body)
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


class TestBodies:
    def test_an_oversized_body_gets_413_before_it_is_read(self, bots: list[bot_app.Running]) -> None:
        """A Content-Length of 100 MB is answered 413 at once, without sending (or reading) the body."""
        assert bots[0].events_server is not None
        head = (b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100000000\r\n\r\n")
        started = time.monotonic()
        answer = raw_post(bots[0].events_server.port, head)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - started < 3.0

    def test_the_largest_block_actions_payload_fits(self, slack: SlackSandbox,
                                                    bots: list[bot_app.Running]) -> None:
        """A click on a message at Slack's limits (50 blocks, the renderer's most text, characters that
        grow most when JSON- and form-encoded) comes back within the body limit and is served."""
        worst = "😀&<>\"" * 2000
        rendered = render(Document(summary=worst, elements=tuple(Paragraph(worst) for _ in range(MAX_BLOCKS))))
        message: dict[str, Any] = {"type": "message", "user": "U0BOT", "ts": "1700000000.000100",
                                   "text": rendered.text, "blocks": rendered.blocks}
        payload = block_actions_payload(action_id="svc_reject", value="20260101-0000-abcd", user_id="U02CCC",
                                        channel_id="C0SANDBOX", message_ts="1700000000.000100",
                                        response_url=slack.response_url(channel_id="C0SANDBOX", user_id="U02CCC"),
                                        message=message)
        body = interactive_body(payload)
        assert len(body) < bot_app.MAX_BODY / 10  # the worst case (about 40 KB), with ten times the room
        status, text = slack.post(url(bots[0]), body, sign_request(body, slack.signing_secret))
        assert status == 200, text


class TestMalformed:
    @pytest.mark.parametrize(("body", "reason"), [
        ("payload=" + quote("{not json"), "payload is not JSON"),
        ("payload=" + quote("[1, 2]"), "payload is not a JSON object"),
        ("payload=" + quote(json.dumps({"type": "block_actions", "actions": [], "user": {"id": "U1"}})),
         "no actions"),
        ("payload=" + quote(json.dumps({"type": "block_actions", "actions": [7], "user": {"id": "U1"}})),
         "action_id"),
        ("payload=" + quote(json.dumps({"type": "block_actions", "actions": [{"action_id": "svc_approve"}],
                                        "user": "U1"})), "user"),
        ("payload=" + quote(json.dumps({"actions": []})), "no type"),
        ("[1, 2, 3]", "neither a slash command nor an interaction payload"),
        ('{"type": 7}', "no type"),
        ('{"type": ', "not JSON"),
    ])
    def test_signed_but_malformed_is_400(self, slack: SlackSandbox, bots: list[bot_app.Running],
                                         body: str, reason: str) -> None:
        status, text = slack.post(url(bots[0]), body, sign_request(body, slack.signing_secret))
        assert status == 400
        assert reason in text

    def test_body_that_is_not_utf8_is_400(self, slack: SlackSandbox, bots: list[bot_app.Running]) -> None:
        body = b"command=%2Fsvc&text=\xff\xfe"
        assert slack.post(url(bots[0]), body, sign_request(body, slack.signing_secret))[0] == 400

    @pytest.mark.parametrize("timestamp", ["soon", "1e9", "-5", "12345678901234567890"])
    def test_non_numeric_timestamp_is_400(self, slack: SlackSandbox, bots: list[bot_app.Running],
                                          timestamp: str) -> None:
        body, _ = slack.slash_command_request("help")
        headers = sign_request(body, slack.signing_secret, timestamp)
        status, text = slack.post(url(bots[0]), body, headers)
        assert status == 400
        assert "X-Slack-Request-Timestamp" in text

    def test_missing_signature_headers_are_401(self, slack: SlackSandbox, bots: list[bot_app.Running]) -> None:
        body, _ = slack.slash_command_request("help")
        status, _ = slack.post(url(bots[0]), body, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 401


class TestHugeText:
    def test_overlong_command_text_is_refused_in_the_ack(self, slack: SlackSandbox,
                                                          bots: list[bot_app.Running]) -> None:
        """900,000 characters in one word (shlex would take a minute of CPU on it): refused in the ack with
        a short quote, well inside Slack's 3 s."""
        text = "logs payment --grep " + "a" * 900_000
        body, headers = slack.slash_command_request(text)
        started = time.monotonic()
        status, answer = slack.post(url(bots[0]), body, headers)
        assert time.monotonic() - started < 2.5
        assert status == 200
        ack = json.loads(answer)
        assert "svcbot reads at most 4,000" in ack["text"]
        assert len(ack["text"]) < 300
