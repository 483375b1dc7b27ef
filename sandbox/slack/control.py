"""The ``/_sandbox/<action>`` control endpoints of the Slack sandbox, so a bot in another process can be
driven over HTTP (used by `svcbot sandbox`): read the calls, messages and acks, deliver a slash command
or a button click over Socket Mode, reset.

    GET  /_sandbox/calls | messages | acks
    POST /_sandbox/slash_command {"text", "user_id", "channel_id", "command", "wait"}
    POST /_sandbox/block_actions {"action_id", "value", "user_id", "channel_id", "message_ts", "wait"}
    POST /_sandbox/reset
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.slack.server import SlackSandbox


def answer(sandbox: SlackSandbox, http_method: str, action: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) of one control request."""
    try:
        body = json.loads(raw) if raw else {}
        if http_method == "GET" and action == "calls":
            calls = [
                {"method": c.method, "status": c.status, "args": c.args, "response": c.response}
                for c in sandbox.calls()
            ]
            return 200, {"ok": True, "calls": calls}
        if http_method == "GET" and action == "messages":
            return 200, {"ok": True, "messages": sandbox.messages(), "ephemerals": sandbox.ephemerals()}
        if http_method == "GET" and action == "acks":
            acks = [{"envelope_id": a.envelope_id, "payload": a.payload, "latency": a.latency} for a in sandbox.acks()]
            return 200, {"ok": True, "acks": acks}
        if http_method == "POST" and action == "slash_command":
            envelope_id = sandbox.send_slash_command(
                str(body.get("text", "")),
                user_id=str(body.get("user_id", "U01AAA")),
                channel_id=str(body.get("channel_id", "C0SANDBOX")),
                command=str(body.get("command", "/svc")),
                wait=float(body.get("wait", 5.0)),
            )
            return 200, {"ok": True, "envelope_id": envelope_id}
        if http_method == "POST" and action == "block_actions":
            envelope_id = sandbox.send_block_actions(
                str(body["action_id"]),
                body.get("value"),
                user_id=str(body.get("user_id", "U01AAA")),
                channel_id=str(body.get("channel_id", "C0SANDBOX")),
                message_ts=body.get("message_ts"),
                wait=float(body.get("wait", 5.0)),
            )
            return 200, {"ok": True, "envelope_id": envelope_id}
        if http_method == "POST" and action == "reset":
            sandbox.reset()
            return 200, {"ok": True}
        return 404, {"ok": False, "error": "unknown_control"}
    except (TimeoutError, ValueError, KeyError) as e:
        return 400, {"ok": False, "error": str(e)}
