"""Socket Mode end to end with slack_sdk's own SocketModeClient (and Bolt's SocketModeHandler)."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable
from typing import Any

import pytest
import requests
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sandbox.slack import SlackSandbox

Factory = Callable[..., SocketModeClient]

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "deploy payment v1.4.2 to prod?"}},
    {
        "type": "actions",
        "block_id": "approval",
        "elements": [
            {
                "type": "button",
                "action_id": "deploy_approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "req-42",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "deploy_reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": "req-42",
                "style": "danger",
            },
        ],
    },
]


def acking_client(
    socket_client: Factory, slack: SlackSandbox, answer: dict[str, Any] | None = None
) -> tuple[SocketModeClient, queue.Queue[SocketModeRequest]]:
    """A connected client that acks every request (with ``answer`` as payload) and queues it."""
    received: queue.Queue[SocketModeRequest] = queue.Queue()

    def listener(client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        received.put(req)
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=answer))

    client = socket_client()
    client.socket_mode_request_listeners.append(listener)
    client.connect()
    slack.wait_for_connections(1)
    return client, received


def test_connect_goes_through_apps_connections_open_and_gets_hello(slack: SlackSandbox, socket_client: Factory) -> None:
    """The client opens a URL from apps.connections.open (app token) and receives Slack's hello."""
    messages: queue.Queue[dict[str, Any]] = queue.Queue()
    client = socket_client()
    client.message_listeners.append(lambda _c, message, _raw: messages.put(message))
    client.connect()
    hello = messages.get(timeout=5)
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": slack.app_id}
    (open_call,) = slack.calls("apps.connections.open")
    assert open_call.response["url"].startswith(f"{slack.socket_mode_url}?ticket=")
    assert slack.connection_count() == 1


def test_slash_command_envelope_is_delivered_and_acked(slack: SlackSandbox, socket_client: Factory) -> None:
    """A pushed slash command arrives in Slack's envelope shape and the client's ack is recorded."""
    _, received = acking_client(socket_client, slack)
    envelope_id = slack.send_slash_command("status payment", user_id="U01AAA", channel_id="C0SANDBOX")
    ack = slack.wait_for_ack(envelope_id)
    req = received.get(timeout=5)
    assert (req.type, req.envelope_id, req.accepts_response_payload) == ("slash_commands", envelope_id, True)
    assert list(req.payload) == [
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name", "command",
        "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    ]  # fmt: skip
    assert (req.payload["command"], req.payload["text"], req.payload["user_name"]) == (
        "/svc",
        "status payment",
        "alice",
    )
    assert req.payload["response_url"].startswith(f"{slack.base_url}/response/")
    assert ack.payload is None
    assert ack.latency is not None
    assert ack.latency < 3


def test_ack_payload_is_recorded(slack: SlackSandbox, socket_client: Factory) -> None:
    """An ack carrying a response payload (Bolt's ack(text)) is recorded with it."""
    acking_client(socket_client, slack, answer={"text": "working on it"})
    ack = slack.wait_for_ack(slack.send_slash_command("logs payment"))
    assert ack.payload == {"text": "working on it"}


def test_block_actions_click_on_a_posted_message(slack: SlackSandbox, socket_client: Factory, web: WebClient) -> None:
    """Clicking a button of a message the bot posted sends block_actions with that button's ids and value."""
    ts = web.chat_postMessage(channel="C0APPROVALS", text="approve?", blocks=APPROVAL_BLOCKS)["ts"]
    _, received = acking_client(socket_client, slack)
    envelope_id = slack.send_block_actions("deploy_approve", user_id="U02CCC", channel_id="C0APPROVALS")
    slack.wait_for_ack(envelope_id)
    req = received.get(timeout=5)
    assert (req.type, req.accepts_response_payload) == ("interactive", False)
    body = req.payload
    assert body["type"] == "block_actions"
    assert body["user"] == {"id": "U02CCC", "username": "carol", "name": "carol", "team_id": slack.team_id}
    assert body["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0APPROVALS",
        "is_ephemeral": False,
    }
    assert body["channel"]["id"] == "C0APPROVALS"
    assert body["message"]["ts"] == ts
    assert body["message"]["blocks"] == APPROVAL_BLOCKS
    (action,) = body["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"], action["style"]) == (
        "deploy_approve",
        "approval",
        "req-42",
        "button",
        "primary",
    )
    assert action["text"]["text"] == "Approve"
    assert body["state"] == {"values": {}}
    assert body["trigger_id"]
    assert body["response_url"]


def test_clicking_a_missing_button_is_an_error(slack: SlackSandbox) -> None:
    """Asking to click a button no message has fails loudly instead of sending a made-up click."""
    with pytest.raises(ValueError, match="deploy_approve"):
        slack.send_block_actions("deploy_approve", channel_id="C0APPROVALS")


def test_unacked_envelope_times_out(slack: SlackSandbox, socket_client: Factory) -> None:
    """wait_for_ack raises TimeoutError when the app never acks."""
    client = socket_client()
    client.connect()
    slack.wait_for_connections(1)
    with pytest.raises(TimeoutError, match="no ack"):
        slack.wait_for_ack(slack.send_slash_command("status"), timeout=0.3)


@pytest.mark.parametrize("mode", ["disconnect", "close"])
def test_client_reconnects_after_disconnect_all(slack: SlackSandbox, socket_client: Factory, mode: str) -> None:
    """After the sandbox ends every connection the client reconnects and envelopes flow again."""
    acking_client(socket_client, slack)
    assert slack.disconnect_all(mode, grace=0.2) == 1
    assert slack.connection_count() == 0
    slack.wait_for_connections(1, timeout=10)
    slack.wait_for_ack(slack.send_slash_command("status"))
    assert slack.connections_opened() == 2
    assert len(slack.calls("apps.connections.open")) == 2


def test_connection_without_a_ticket_is_refused(slack: SlackSandbox) -> None:
    """A WebSocket URL that apps.connections.open did not hand out is refused with 401."""
    with pytest.raises(InvalidStatus) as excinfo:
        connect(f"{slack.socket_mode_url}?ticket=forged", open_timeout=2)
    assert excinfo.value.response.status_code == 401
    assert slack.connection_count() == 0


def test_raw_websocket_client_sees_hello_and_acks(slack: SlackSandbox) -> None:
    """Any WebSocket client with an issued URL gets hello first and can ack envelopes."""
    url = WebClient(base_url=slack.api_url).apps_connections_open(app_token=slack.app_token)["url"]
    with connect(url, open_timeout=2) as ws:
        assert json.loads(ws.recv(timeout=2))["type"] == "hello"
        envelope_id = slack.send_slash_command("help")
        envelope = json.loads(ws.recv(timeout=2))
        assert envelope["envelope_id"] == envelope_id
        ws.send(json.dumps({"envelope_id": envelope_id}))
        assert slack.wait_for_ack(envelope_id).payload is None


def test_control_endpoint_pushes_a_slash_command(slack: SlackSandbox) -> None:
    """POST /_sandbox/slash_command lets another process push a command to the connected app."""
    url = WebClient(base_url=slack.api_url).apps_connections_open(app_token=slack.app_token)["url"]
    with connect(url, open_timeout=2) as ws:
        ws.recv(timeout=2)  # hello
        resp = requests.post(f"{slack.base_url}/_sandbox/slash_command", json={"text": "status"}, timeout=5)
        envelope = json.loads(ws.recv(timeout=2))
    assert resp.json() == {"ok": True, "envelope_id": envelope["envelope_id"]}
    assert envelope["payload"]["text"] == "status"


def test_apps_connections_open_wants_the_app_token(slack: SlackSandbox, web: WebClient) -> None:
    """apps.connections.open with the bot token answers not_allowed_token_type."""
    with pytest.raises(SlackApiError) as excinfo:
        web.apps_connections_open(app_token=slack.bot_token)
    assert excinfo.value.response["error"] == "not_allowed_token_type"


def test_bolt_app_in_socket_mode_answers_command_and_click(slack: SlackSandbox) -> None:
    """A real Bolt app over SocketModeHandler acks, responds to a command, and updates a clicked message."""
    app = App(client=WebClient(token=slack.bot_token, base_url=slack.api_url))

    @app.command("/svc")
    def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        ack()
        respond(text=f"you said {command['text']}", response_type="in_channel")

    @app.action("deploy_approve")
    def on_approve(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(
            channel=body["channel"]["id"],
            ts=body["container"]["message_ts"],
            text=f"approved by <@{body['user']['id']}> ({body['actions'][0]['value']})",
        )

    ts = app.client.chat_postMessage(channel="C0APPROVALS", text="approve?", blocks=APPROVAL_BLOCKS)["ts"]
    handler = SocketModeHandler(app, slack.app_token)
    handler.client.ping_interval = 1
    handler.connect()
    try:
        slack.wait_for_connections(1)
        slack.wait_for_ack(slack.send_slash_command("status payment"))
        (post,) = slack.wait_for("response_url")
        assert post.args["text"] == "you said status payment"
        slack.wait_for_ack(slack.send_block_actions("deploy_approve", user_id="U02CCC", channel_id="C0APPROVALS"))
        slack.wait_for("chat.update")
        msg = slack.message("C0APPROVALS", ts)
        assert msg is not None
        assert msg["text"] == "approved by <@U02CCC> (req-42)"
    finally:
        slack.close_socket_mode_client(handler.client)
