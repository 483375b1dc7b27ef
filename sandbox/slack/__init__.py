"""Sandbox Slack: a local stand-in for the Slack Web API, response_url, file uploads and Socket Mode.

    with SlackSandbox() as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        client.chat_postMessage(channel="C0SANDBOX", text="hi")
        slack.wait_for("chat.postMessage")

Web API methods answered (``SUPPORTED_METHODS``): api.test, auth.test, chat.postMessage, chat.update,
chat.delete, chat.postEphemeral, conversations.info, usergroups.users.list, files.getUploadURLExternal
(plus the upload URL it returns), files.completeUploadExternal, apps.connections.open. Any other method answers
``unknown_method``. Tokens: ``bot_token`` for everything except apps.connections.open, which wants
``app_token``; a wrong token answers ``invalid_auth``, the wrong kind ``not_allowed_token_type``.

Pure helpers for HTTP-mode tests live in ``sandbox.slack.payloads`` and are re-exported here:
``sign_request``, ``slash_command_body``, ``block_actions_body`` and the ``*_payload`` builders.

Modules: ``server`` (SlackSandbox: wiring, lifecycle and the driver tests call), ``workspace`` (the state
and the queries on it), ``web_api`` (the methods), ``response_url``, ``front`` (the HTTP port, argument
parsing, faults), ``control`` (``/_sandbox/`` endpoints), ``socket_mode``, ``payloads``, ``blocks``.
"""

from sandbox.slack.blocks import validate_blocks
from sandbox.slack.payloads import (
    block_actions_body,
    block_actions_payload,
    envelope,
    form_encode,
    interactive_body,
    sign_request,
    slash_command_body,
    slash_command_payload,
)
from sandbox.slack.server import SlackSandbox
from sandbox.slack.socket_mode import Ack, Envelope, SocketModeEndpoint
from sandbox.slack.web_api import SUPPORTED_METHODS
from sandbox.slack.workspace import Call, UploadedFile

__all__ = [
    "SUPPORTED_METHODS",
    "Ack",
    "Call",
    "Envelope",
    "SlackSandbox",
    "SocketModeEndpoint",
    "UploadedFile",
    "block_actions_body",
    "block_actions_payload",
    "envelope",
    "form_encode",
    "interactive_body",
    "sign_request",
    "slash_command_body",
    "slash_command_payload",
    "validate_blocks",
]
