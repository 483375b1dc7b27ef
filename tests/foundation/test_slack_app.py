"""The real Bolt app: signed HTTP requests and Socket Mode envelopes, answered through the sandbox Slack."""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml

from bot.clients.backends import Backends
from bot.core.catalog import load_catalog
from bot.core.errors import DeadlineExceeded
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.dispatch.dispatcher import Dispatcher
from bot.render import slack as slack_render
from bot.render.document import Button, Buttons, Delivery, Document, Paragraph
from bot.replies.base import Message, Reply
from bot.runtime import Runtime
from bot.slack import serving as bot_app
from bot.slack.webapi import Destination, SlackPoster, make_web_client
from commands import registry
from sandbox.slack import SlackSandbox, sign_request

RELEASE = threading.Event()
STALLED_RUNNING = threading.Event()
DEADLINE = 3.0  # seconds: the command deadline of this module's catalog
ACK_DEADLINE = 3.0  # seconds: Slack's own limit for acknowledging a slash command


def stalled_run(_args: argparse.Namespace, invocation: Invocation) -> Reply:
    """Stands in for a verb whose backend does not answer (until the test is over): its call ends at the
    command deadline, as every backend call does (bot/clients/deadlines.py)."""
    STALLED_RUNNING.set()
    if not RELEASE.wait(max(0.0, invocation.deadline - time.monotonic())):
        raise DeadlineExceeded("the backend did not answer by the deadline")
    return Message(title="too late")


STALLED = Command(name="probe", summary="a verb whose backend stalls", usage="/svc probe",
                  build_parser=lambda: CommandParser("probe", "/svc probe"), run=stalled_run)


@pytest.fixture(name="slack", scope="module")
def _slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture(name="catalog_path")
def _catalog_path(example_catalog_path: Path, tmp_path: Path) -> Path:
    """The example catalog with a short command deadline."""
    raw = yaml.safe_load(example_catalog_path.read_text())
    raw["settings"]["command_deadline"] = f"{DEADLINE:g}s"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def make_runtime(catalog_path: Path) -> Runtime:
    catalog = load_catalog(catalog_path)
    backends = Backends(catalog)
    dispatcher = Dispatcher(catalog, backends, {**registry(), "probe": STALLED})
    return Runtime(catalog=catalog, backends=backends, dispatcher=dispatcher)


def http_env(slack: SlackSandbox) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SVCBOT_SLACK_API_URL": slack.api_url}


@pytest.fixture(name="http_bot")
def _http_bot(slack: SlackSandbox, catalog_path: Path) -> Iterator[bot_app.Running]:
    slack.reset()
    running = bot_app.start(catalog_path, port=0, health_port=0, environ=http_env(slack),
                            runtime=make_runtime(catalog_path))
    yield running
    RELEASE.set()
    running.stop(grace=2)
    RELEASE.clear()
    STALLED_RUNNING.clear()


def events_url(running: bot_app.Running) -> str:
    assert running.events_server is not None
    return f"http://127.0.0.1:{running.events_server.port}/slack/events"


def response_id(body: str) -> str:
    """The id of a slash command's response_url at the sandbox (Call.target of the posts to it)."""
    return parse_qs(body)["response_url"][0].rstrip("/").rsplit("/", 1)[-1]


def answered(slack: SlackSandbox, body: str, timeout: float = 30) -> dict[str, object]:
    """The first accepted post to this slash command's response_url."""
    rid = response_id(body)
    return slack.wait_for("response_url", timeout=timeout,
                          predicate=lambda call: call.target == rid and call.status == 200)[0].args


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class TestHttpMode:
    def test_signed_help_is_acked_and_answered(self, slack: SlackSandbox, http_bot: bot_app.Running) -> None:
        """A correctly signed /svc help gets 200 within the ack and its answer at the response_url."""
        body, headers = slack.slash_command_request("help")
        started = time.monotonic()
        status, _ = slack.post(events_url(http_bot), body, headers)
        assert status == 200
        assert time.monotonic() - started < ACK_DEADLINE
        post = slack.wait_for("response_url", timeout=5)[0]
        assert post.args["response_type"] == "ephemeral"
        assert "/svc help [verb]" in json.dumps(post.args["blocks"])

    @pytest.mark.parametrize("tamper", ["signature", "missing", "stale"])
    def test_bad_requests_rejected(self, slack: SlackSandbox, http_bot: bot_app.Running, tamper: str) -> None:
        """A wrong signature, missing headers or a timestamp older than 5 minutes get 401 and nothing is posted."""
        if tamper == "signature":
            body, headers = slack.slash_command_request("help", secret="not-the-secret")
        elif tamper == "missing":
            body, _ = slack.slash_command_request("help")
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        else:
            body, headers = slack.slash_command_request("help", timestamp=int(time.time()) - 6 * 60)
        status, _ = slack.post(events_url(http_bot), body, headers)
        assert status == 401
        # A command the bot accepted is queued before its ack is sent, and the workers take commands in
        # order. So once a good command sent after the refused one is answered and no worker is busy, the
        # refused one would have been answered too, had it been taken: only the good one's answer is there.
        good, good_headers = slack.slash_command_request("help")
        assert slack.post(events_url(http_bot), good, good_headers)[0] == 200
        answered(slack, good)
        deadline = time.monotonic() + 30
        while http_bot.bot.pool.busy:
            assert time.monotonic() < deadline, "a worker is still busy"
            time.sleep(0.01)
        assert [call.target for call in slack.response_posts()] == [response_id(good)]

    def test_usage_error_answered_in_the_ack(self, slack: SlackSandbox, http_bot: bot_app.Running) -> None:
        """An unknown verb needs no backend: the ack itself carries the ephemeral error."""
        body, headers = slack.slash_command_request("sttus payment")
        status, text = slack.post(events_url(http_bot), body, headers)
        assert status == 200
        answer = json.loads(text)
        assert answer["response_type"] == "ephemeral"
        assert "unknown command 'sttus'" in answer["text"]

    def test_stalled_command_does_not_delay_others(self, slack: SlackSandbox, http_bot: bot_app.Running) -> None:
        """A stalled command is answered at its deadline; a later command is acked and answered meanwhile."""
        stalled_body, stalled_headers = slack.slash_command_request("probe")
        help_body, help_headers = slack.slash_command_request("help")
        started = time.monotonic()
        assert slack.post(events_url(http_bot), stalled_body, stalled_headers)[0] == 200
        assert time.monotonic() - started < ACK_DEADLINE
        assert STALLED_RUNNING.wait(30), "the stalled verb never ran"
        asked = time.monotonic()
        assert slack.post(events_url(http_bot), help_body, help_headers)[0] == 200
        assert time.monotonic() - asked < ACK_DEADLINE
        assert "/svc help [verb]" in json.dumps(answered(slack, help_body))
        stalled = answered(slack, stalled_body)
        assert "no answer within the command deadline (3s)" in str(stalled["text"])
        # Meanwhile: help's answer came first, while the stalled command was still waiting for its backend,
        # not after the stalled command gave up at its deadline.
        assert [call.target for call in slack.response_posts()] == [response_id(help_body),
                                                                    response_id(stalled_body)]
        assert time.monotonic() - started < DEADLINE + 3.0  # at its deadline, not when the verb gives up

    def test_health_endpoints(self, slack: SlackSandbox, http_bot: bot_app.Running) -> None:
        """/healthz and /readyz answer 200, /metrics counts commands by verb and outcome."""
        base = f"http://127.0.0.1:{http_bot.health_server.port}"
        body, headers = slack.slash_command_request("help")
        slack.post(events_url(http_bot), body, headers)
        slack.wait_for("response_url", timeout=5)
        assert get(base + "/healthz")[0] == 200
        assert get(base + "/readyz") == (200, "ready\n")
        status, text = get(base + "/metrics")
        assert status == 200
        assert 'svcbot_commands_total{outcome="ok",verb="help"}' in text
        http_bot.health.stopping = True
        assert get(base + "/readyz")[0] == 503


class TestSocketMode:
    @pytest.fixture(name="socket_bot")
    def _socket_bot(self, slack: SlackSandbox, catalog_path: Path) -> Iterator[bot_app.Running]:
        slack.reset()
        running = bot_app.start(catalog_path, port=0, health_port=0, environ=slack.env(),
                                runtime=make_runtime(catalog_path))
        slack.wait_for_connections(1, timeout=10)
        yield running
        assert running.socket_handler is not None
        slack.close_socket_mode_client(running.socket_handler.client)
        running.socket_handler = None
        running.stop(grace=2)

    def test_slash_command_over_socket_mode(self, slack: SlackSandbox, socket_bot: bot_app.Running) -> None:
        """A slash command envelope is acked over the socket and answered at its response_url."""
        envelope_id = slack.send_slash_command("help")
        slack.wait_for_ack(envelope_id, timeout=5)
        post = slack.wait_for("response_url", timeout=5)[0]
        assert "/svc help [verb]" in json.dumps(post.args)
        base = f"http://127.0.0.1:{socket_bot.health_server.port}"
        assert get(base + "/readyz") == (200, "ready\n")

    def test_block_actions_over_socket_mode(self, slack: SlackSandbox, socket_bot: bot_app.Running) -> None:
        """An approval-style button click is acked and answered to the clicking user only."""
        poster = SlackPoster(make_web_client(slack.bot_token, slack.api_url))
        buttons = Buttons((Button("Approve", "svc_approve", "42", style="primary"),
                           Button("Reject", "svc_reject", "42", style="danger")))
        poster.post("C0SANDBOX", slack_render.render(Document(summary="deploy?", elements=(buttons,))))
        envelope_id = slack.send_block_actions("svc_approve", "42", user_id="U02CCC")
        slack.wait_for_ack(envelope_id, timeout=5)
        post = slack.wait_for("response_url", timeout=5)[0]
        assert post.args["response_type"] == "ephemeral"

    def test_readiness_follows_the_connection(self, slack: SlackSandbox, socket_bot: bot_app.Running) -> None:
        """/readyz turns 503 when the Socket Mode connection is lost."""
        assert socket_bot.socket_handler is not None
        client = socket_bot.socket_handler.client
        client.auto_reconnect_enabled = False
        slack.disconnect_all("close")
        base = f"http://127.0.0.1:{socket_bot.health_server.port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and get(base + "/readyz")[0] == 200:
            time.sleep(0.05)
        assert get(base + "/readyz") == (503, "slack connection down\n")


class TestDelivery:
    def test_not_in_channel_falls_back_to_response_url(self, slack: SlackSandbox) -> None:
        """A message that must be posted in a channel the bot is not in goes to response_url with an invite hint."""
        slack.reset()
        poster = SlackPoster(make_web_client(slack.bot_token, slack.api_url))
        message = slack_render.render(Document(summary="deploy started", elements=(Paragraph("deploy"),),
                                               delivery=Delivery(post=True)))
        response_url = slack.response_url()
        ts = poster.deliver(message, Destination(channel="C0ELSEWHERE", user="U01AAA", response_url=response_url))
        assert ts is None
        texts = [call.args.get("text", "") for call in slack.wait_for("response_url", count=2)]
        assert texts[0] == "deploy started"
        assert "/invite @svcbot" in texts[1]

    def test_long_output_goes_as_a_file(self, slack: SlackSandbox) -> None:
        """Output too long for a message is cut with a note and uploaded whole as a file."""
        slack.reset()
        poster = SlackPoster(make_web_client(slack.bot_token, slack.api_url))
        document = Document(summary="many lines", elements=tuple(Paragraph(f"line {i}") for i in range(200)))
        message = slack_render.render(document)
        poster.deliver(message, Destination(channel="C0SANDBOX", user="U01AAA", response_url=slack.response_url()))
        slack.wait_for("files.completeUploadExternal", timeout=5)
        files = slack.uploaded_files()
        assert len(files) == 1
        assert "line 199" in files[0].text

    def test_rate_limited_then_posted(self, slack: SlackSandbox) -> None:
        """A ratelimited chat.postMessage is retried after Retry-After and succeeds."""
        slack.reset()
        slack.set_fault("chat.postMessage", mode="ratelimited", retry_after=1, times=1)
        poster = SlackPoster(make_web_client(slack.bot_token, slack.api_url))
        started = time.monotonic()
        ts = poster.post("C0SANDBOX", slack_render.render(Document(summary="hello")))
        assert ts
        assert time.monotonic() - started >= 0.9
        assert [call.status for call in slack.calls("chat.postMessage")] == [429, 200]


def test_signature_helper_matches_slack_vector() -> None:
    """The sandbox's signer reproduces Slack's documented test vector (so our signed requests are real ones)."""
    body = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
            "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
            "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    headers = sign_request(body, "8f742231b10e8888abcd99yyyzzz85a5", 1531420618)
    assert headers["X-Slack-Signature"] == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
