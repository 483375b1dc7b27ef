"""Slack's request bodies, envelopes and signatures, built exactly as Slack sends them.

Everything here is pure (no sockets, no state) so HTTP-mode tests can use it without a running sandbox:

- ``sign_request`` computes Slack's v0 request signature headers;
- ``slash_command_payload`` / ``slash_command_body`` build a slash command (a dict for Socket Mode, the
  ``application/x-www-form-urlencoded`` string for HTTP mode);
- ``block_actions_payload`` / ``block_actions_body`` build a button click (a dict for Socket Mode,
  ``payload=<urlencoded JSON>`` for HTTP mode);
- ``envelope`` wraps a payload the way Socket Mode delivers it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_TEAM_ID = "T0SANDBOX"
DEFAULT_TEAM_DOMAIN = "sandbox"
DEFAULT_APP_ID = "A0SVCBOT"
DEFAULT_VERIFICATION_TOKEN = "sandbox-verification-token"

_trigger_counter = itertools.count(1)
_trigger_lock = threading.Lock()


def sign_request(
    body: bytes | str,
    secret: str,
    timestamp: int | str | None = None,
    *,
    content_type: str | None = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """Headers Slack sends with a signed request: v0 HMAC-SHA256 over ``v0:<timestamp>:<body>``.

    ``timestamp`` defaults to now; pass an old one to test replay rejection. ``content_type`` is added
    as ``Content-Type`` unless None.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = b"v0:" + ts.encode("ascii") + b":" + raw
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def new_trigger_id() -> str:
    """A trigger id shaped like Slack's (``<n>.<n>.<hex>``)."""
    with _trigger_lock:
        n = next(_trigger_counter)
    return f"{1700000000000 + n}.{4744562912}.{secrets.token_hex(16)}"


def action_ts() -> str:
    """An ``action_ts`` shaped like Slack's (seconds with six decimals)."""
    return f"{time.time():.6f}"


def slash_command_payload(
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/svc",
    user_name: str | None = None,
    channel_name: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    token: str = DEFAULT_VERIFICATION_TOKEN,
    trigger_id: str | None = None,
) -> dict[str, str]:
    """A slash command payload with Slack's fields, in Slack's order (all values are strings)."""
    return {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name or channel_id.lower(),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }


def form_encode(fields: Mapping[str, str]) -> str:
    """Form-encode like Slack does: ``+`` for spaces, everything else reserved is %-escaped (``/`` too)."""
    return urlencode(list(fields.items()))


def slash_command_body(
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/svc",
    **fields: str,
) -> str:
    """The ``application/x-www-form-urlencoded`` body Slack POSTs for a slash command in HTTP mode.

    Extra keyword arguments are those of ``slash_command_payload`` (user_name, channel_name, team_id, ...).
    """
    payload = slash_command_payload(
        text, user_id=user_id, channel_id=channel_id, response_url=response_url, command=command, **fields
    )
    return form_encode(payload)


def block_actions_payload(
    *,
    action_id: str,
    value: str | None,
    user_id: str,
    channel_id: str,
    message_ts: str,
    response_url: str,
    block_id: str = "actions",
    button_text: str = "Button",
    style: str | None = None,
    message: Mapping[str, Any] | None = None,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_APP_ID,
    token: str = DEFAULT_VERIFICATION_TOKEN,
    trigger_id: str | None = None,
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """A ``block_actions`` payload for one button click on a message, in Slack's shape.

    ``message`` is the message the button is on (as chat.postMessage returned it); a minimal one is
    made up from ``message_ts`` when it is None.
    """
    name = user_name or user_id.lower()
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text, "emoji": True},
        "type": "button",
        "action_ts": action_ts(),
    }
    if value is not None:
        action["value"] = value
    if style is not None:
        action["style"] = style
    msg = dict(message) if message is not None else {"type": "message", "text": "", "ts": message_ts}
    msg.setdefault("ts", message_ts)
    msg.pop("channel", None)
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name or channel_id.lower()},
        "message": msg,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def block_actions_body(**kwargs: Any) -> str:
    """The body Slack POSTs for an interaction in HTTP mode: ``payload=<urlencoded JSON>``.

    Takes the keyword arguments of ``block_actions_payload``.
    """
    return interactive_body(block_actions_payload(**kwargs))


def interactive_body(payload: Mapping[str, Any]) -> str:
    """Encode any interaction payload as ``payload=<urlencoded JSON>``."""
    return "payload=" + quote(json.dumps(payload, separators=(",", ":")), safe="")


def envelope(envelope_type: str, payload: Mapping[str, Any], *, accepts_response_payload: bool) -> dict[str, Any]:
    """A Socket Mode envelope as Slack sends it over the WebSocket."""
    return {
        "envelope_id": str(uuid.uuid4()),
        "payload": dict(payload),
        "type": envelope_type,
        "accepts_response_payload": accepts_response_payload,
    }
