"""Request signing and HTTP-mode bodies, checked against Slack's test vector and a real Bolt app."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import (
    SlackSandbox,
    block_actions_body,
    form_encode,
    sign_request,
    slash_command_body,
)

# Slack's published example (slack_sdk tests/slack_sdk/signature/test_signature_verifier.py).
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = "1531420618"
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_signature_matches_slacks_test_vector() -> None:
    """sign_request reproduces the signature in Slack's documentation example."""
    headers = sign_request(VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP)
    assert headers["X-Slack-Signature"] == VECTOR_SIGNATURE
    assert headers["X-Slack-Request-Timestamp"] == VECTOR_TIMESTAMP
    assert sign_request(VECTOR_BODY.encode(), VECTOR_SECRET, int(VECTOR_TIMESTAMP)) == headers


def test_form_encoding_matches_slacks_bytes() -> None:
    """Form-encoding the example's fields in order gives Slack's exact body (%2F for '/', empty text kept)."""
    assert form_encode(dict(parse_qsl(VECTOR_BODY, keep_blank_values=True))) == VECTOR_BODY


def test_slack_sdk_verifier_accepts_a_fresh_signature() -> None:
    """slack_sdk's SignatureVerifier accepts what sign_request produces with the current time."""
    body = slash_command_body("status payment", "U01AAA", "C0SANDBOX", "http://127.0.0.1/response/x")
    headers = sign_request(body, "s3cret")
    assert SignatureVerifier("s3cret").is_valid(
        body=body,
        timestamp=headers["X-Slack-Request-Timestamp"],
        signature=headers["X-Slack-Signature"],
    )


def test_slash_command_body_fields() -> None:
    """slash_command_body is Slack's form encoding of the slash command fields, spaces as '+'."""
    body = slash_command_body("deploy payment prod v1.2.3", "U01AAA", "C0SANDBOX", "http://h/response/1")
    assert "text=deploy+payment+prod+v1.2.3" in body
    assert "command=%2Fsvc" in body
    fields = dict(parse_qsl(body, keep_blank_values=True))
    assert (fields["user_id"], fields["channel_id"], fields["response_url"]) == (
        "U01AAA",
        "C0SANDBOX",
        "http://h/response/1",
    )


def test_block_actions_body_is_payload_json() -> None:
    """block_actions_body is payload=<urlencoded JSON> of a block_actions payload."""
    body = block_actions_body(
        action_id="deploy_approve",
        value="req-1",
        user_id="U02CCC",
        channel_id="C0APPROVALS",
        message_ts="1700000000.000100",
        response_url="http://h/response/2",
    )
    assert body.startswith("payload=")
    payload = json.loads(unquote(body[len("payload=") :]))
    assert payload["type"] == "block_actions"
    assert payload["actions"][0]["value"] == "req-1"


def make_app(slack: SlackSandbox) -> App:
    app = App(client=WebClient(token=slack.bot_token, base_url=slack.api_url), signing_secret=slack.signing_secret)

    @app.command("/svc")
    def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        ack()
        respond(text=f"ran {command['text']}")

    @app.action("deploy_approve")
    def on_approve(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["container"]["message_ts"], text="approved")

    return app


def test_bolt_dispatch_accepts_signed_slash_command(slack: SlackSandbox) -> None:
    """A real Bolt app verifies the signed body, runs /svc, and its respond() reaches the sandbox."""
    app = make_app(slack)
    body, headers = slack.slash_command_request("status payment")
    assert app.dispatch(BoltRequest(body=body, headers=headers)).status == 200
    (post,) = slack.wait_for("response_url")
    assert post.args["text"] == "ran status payment"


def test_bolt_dispatch_rejects_old_or_forged_signatures(slack: SlackSandbox) -> None:
    """A stale timestamp or a wrong secret gets 401 from Bolt and nothing is posted."""
    app = make_app(slack)
    for kwargs in ({"timestamp": int(time.time()) - 301}, {"secret": "not-the-secret"}):
        body, headers = slack.slash_command_request("status", **kwargs)
        assert app.dispatch(BoltRequest(body=body, headers=headers)).status == 401
    assert slack.response_posts() == []


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(name="bolt_http_url")
def fixture_bolt_http_url(slack: SlackSandbox) -> Iterator[str]:
    """A Bolt app served over real HTTP (wsgiref) at /slack/events."""
    server = make_server("127.0.0.1", 0, SlackRequestHandler(make_app(slack)), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/slack/events"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_signed_click_over_http_updates_the_message(slack: SlackSandbox, web: WebClient, bolt_http_url: str) -> None:
    """A signed block_actions POST over HTTP is accepted and the app's chat.update reaches the sandbox."""
    blocks = [
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": "deploy_approve",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": "req-7",
                }
            ],
        }
    ]
    ts = web.chat_postMessage(channel="C0APPROVALS", text="approve?", blocks=blocks)["ts"]
    body, headers = slack.block_actions_request("deploy_approve", user_id="U02CCC", channel_id="C0APPROVALS")
    assert slack.post(bolt_http_url, body, headers)[0] == 200
    slack.wait_for("chat.update")
    msg = slack.message("C0APPROVALS", ts)
    assert msg is not None
    assert msg["text"] == "approved"
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert slack.post(bolt_http_url, body, unsigned)[0] == 401
