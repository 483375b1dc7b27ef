"""SlackSandbox: a local stand-in for the Slack Web API, response_url and Socket Mode, and the driver tests
use to play Slack's side (deliver commands and clicks, wait for calls, read messages, inject faults).

Point ``slack_sdk.WebClient(base_url=sandbox.api_url)`` (or ``SVCBOT_SLACK_API_URL``) at it. It answers
the methods svcbot calls in Slack's shapes, checks tokens, channel membership and Block Kit limits the way
Slack does, records every call, and can be told to rate-limit or fail. See ``sandbox/slack/__init__.py``
for the list of methods and helpers.

How it is put together: SlackSandbox *is* the Workspace (workspace.py: the state, and the queries on it
such as ``calls``, ``wait_for``, ``messages``), so those need no forwarding; the surfaces that answer
the bot are parts it owns: the Web API (web_api.py) and response_urls (response_url.py) behind one HTTP
front (front.py), and the Socket Mode endpoint (socket_mode.py). This module adds only the wiring, the
lifecycle and what a test does as Slack: deliver envelopes, build payloads, set faults.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.httpserver import LOOPBACK
from sandbox.slack import blocks as blockkit
from sandbox.slack import control, payloads
from sandbox.slack.front import Fault, SlackHttpFront
from sandbox.slack.response_url import ResponseUrls
from sandbox.slack.socket_mode import Ack, Envelope, SocketModeEndpoint
from sandbox.slack.web_api import SUPPORTED_METHODS, WebApi
from sandbox.slack.workspace import Call, UploadedFile, Workspace

__all__ = ["SUPPORTED_METHODS", "Call", "SlackSandbox", "UploadedFile"]


class SlackSandbox(Workspace):
    """Sandbox Slack: Web API + response_url + upload URLs over HTTP, and a Socket Mode endpoint.

    ``channels`` are the channels the bot is a member of (id -> name); posting elsewhere answers
    ``not_in_channel``, and ids starting with one of ``not_found_prefixes`` (or listed in
    ``missing_channels``) answer ``channel_not_found``. User ids (U.../W...) and DM ids (D...) are
    accepted as direct messages.
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        socket_mode_port: int = 0,
        bot_token: str = "xoxb-sandbox",
        app_token: str = "xapp-sandbox",
        signing_secret: str = "sandbox-signing-secret",
        channels: Mapping[str, str] | Iterable[str] | None = None,
        not_found_prefixes: Iterable[str] = ("CNOTFOUND",),
        missing_channels: Iterable[str] = (),
        usergroups: Mapping[str, Iterable[str]] | None = None,
        users: Mapping[str, str] | None = None,
        team_id: str = payloads.DEFAULT_TEAM_ID,
        team_domain: str = payloads.DEFAULT_TEAM_DOMAIN,
        app_id: str = payloads.DEFAULT_APP_ID,
        bot_user_id: str = "U0SVCBOT",
        bot_id: str = "B0SVCBOT",
        response_url_limit: int | None = 5,
    ) -> None:
        super().__init__(
            bot_token=bot_token,
            app_token=app_token,
            signing_secret=signing_secret,
            channels=channels,
            not_found_prefixes=not_found_prefixes,
            missing_channels=missing_channels,
            usergroups=usergroups,
            users=users,
            team_id=team_id,
            team_domain=team_domain,
            app_id=app_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
        )
        self.socket_mode = SocketModeEndpoint(host=host, port=socket_mode_port, app_id=app_id)
        self.response_urls = ResponseUrls(self, lambda: self.base_url, response_url_limit)
        self.web_api = WebApi(self, self.socket_mode, lambda: self.base_url)
        self.front = SlackHttpFront(
            self, self.web_api, self.response_urls, functools.partial(control.answer, self), host=host, port=port
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SlackSandbox:
        """Start both servers (idempotent); returns self."""
        if self.front.http.running:
            return self
        self.front.http.start()
        self.socket_mode.start()
        return self

    def stop(self) -> None:
        """Stop both servers (idempotent); open Socket Mode connections are closed."""
        self.socket_mode.stop()
        self.front.http.stop()

    def __enter__(self) -> SlackSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.front.http.host

    @property
    def port(self) -> int:
        return self.front.http.port

    @property
    def base_url(self) -> str:
        return self.front.base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)`` / SVCBOT_SLACK_API_URL (ends with /)."""
        return f"{self.base_url}/api/"

    @property
    def socket_mode_url(self) -> str:
        return self.socket_mode.base_url

    def addresses(self) -> dict[str, str]:
        """Where everything listens, for printing."""
        return {
            "slack_api_url": self.api_url,
            "socket_mode_url": self.socket_mode_url,
            "response_url_base": f"{self.base_url}/response/",
            "control_url": f"{self.base_url}/_sandbox/",
        }

    def env(self) -> dict[str, str]:
        """Environment variables pointing svcbot at this sandbox (Socket Mode, as an app token is set)."""
        return {
            "SVCBOT_SLACK_API_URL": self.api_url,
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_APP_TOKEN": self.app_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
        }

    def response_url(
        self,
        id: str | None = None,
        *,
        channel_id: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """Mint a response_url; posts to it land in ``response_posts()`` and act on the channel/message."""
        return self.response_urls.mint(id, channel_id=channel_id, user_id=user_id, message_ts=message_ts)

    @property
    def response_url_limit(self) -> int | None:
        """How many posts one response_url takes (None: no limit)."""
        return self.response_urls.limit

    @response_url_limit.setter
    def response_url_limit(self, limit: int | None) -> None:
        self.response_urls.limit = limit

    # -- faults ------------------------------------------------------------------------------------

    def set_fault(
        self,
        method: str | None,
        mode: str = "ratelimited",
        retry_after: int = 1,
        times: int | None = 1,
        *,
        error: str = "internal_error",
        delay: float = 0.0,
    ) -> None:
        """Make calls to ``method`` (None: every call, including response_url and upload) misbehave.

        ``ratelimited``: HTTP 429, ``Retry-After: <retry_after>``, ``{"ok":false,"error":"ratelimited"}``.
        ``error500``: HTTP 500. ``error``: HTTP 200 ``{"ok":false,"error":<error>}``. ``delay``: answer
        normally after sleeping ``delay`` seconds. ``times`` calls are affected (None: until cleared).
        """
        self.front.faults.add(Fault(method, mode, int(retry_after), times, error, delay))

    def clear_faults(self) -> None:
        self.front.faults.clear()

    # -- what happened (the rest is Workspace's) ---------------------------------------------------

    def response_posts(self, id: str | None = None) -> list[Call]:
        """Posts to response_urls (``Call.args`` is the JSON body, ``Call.target`` the response_url id)."""
        return [c for c in self.calls("response_url") if id is None or c.target == id]

    def reset(self) -> None:
        """Forget calls, messages, files, response_urls, faults, envelopes, acks (not config, sockets)."""
        self.forget_content()
        self.response_urls.forget()
        self.front.faults.clear()
        self.socket_mode.reset()

    # -- Socket Mode -------------------------------------------------------------------------------

    def send_slash_command(
        self,
        text: str,
        user_id: str = "U01AAA",
        channel_id: str = "C0SANDBOX",
        command: str = "/svc",
        *,
        response_url: str | None = None,
        wait: float = 5.0,
    ) -> str:
        """Deliver a slash command over Socket Mode; returns the envelope_id."""
        payload = self.slash_command_payload(
            text, user_id=user_id, channel_id=channel_id, command=command, response_url=response_url
        )
        return self.socket_mode.send(
            payloads.envelope("slash_commands", payload, accepts_response_payload=True), wait=wait
        )

    def send_block_actions(
        self,
        action_id: str,
        value: str | None = None,
        user_id: str = "U01AAA",
        channel_id: str = "C0SANDBOX",
        message_ts: str | None = None,
        *,
        block_id: str | None = None,
        button_text: str | None = None,
        response_url: str | None = None,
        wait: float = 5.0,
    ) -> str:
        """Deliver a button click over Socket Mode; returns the envelope_id.

        Without ``message_ts`` it clicks the newest message in ``channel_id`` that has a button with this
        action_id (and value, if given). The button's block_id, text, value and style come from the stored
        message when it has that button.
        """
        payload = self.block_actions_payload(
            action_id,
            value,
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
            block_id=block_id,
            button_text=button_text,
            response_url=response_url,
        )
        return self.socket_mode.send(
            payloads.envelope("interactive", payload, accepts_response_payload=False), wait=wait
        )

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Block until the app acks ``envelope_id`` (raises TimeoutError)."""
        return self.socket_mode.wait_for_ack(envelope_id, timeout=timeout)

    def acks(self) -> list[Ack]:
        return self.socket_mode.acks()

    def envelopes(self) -> list[Envelope]:
        return self.socket_mode.envelopes()

    def disconnect_all(self, mode: str = "close", *, grace: float = 1.0) -> int:
        """End every Socket Mode connection (``close``, ``disconnect`` or ``drop``); returns how many."""
        return self.socket_mode.disconnect_all(mode, grace=grace)

    def close_socket_mode_client(self, client: Any) -> None:
        """Close a slack_sdk ``SocketModeClient`` (e.g. ``SocketModeHandler.client``) without waiting."""
        self.socket_mode.close_client(client)

    def connection_count(self) -> int:
        """Open Socket Mode connections."""
        return self.socket_mode.connection_count()

    def connections_opened(self) -> int:
        """Socket Mode connections ever opened."""
        return self.socket_mode.connections_opened()

    def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> int:
        return self.socket_mode.wait_for_connections(count, timeout=timeout)

    # -- payload builders bound to this workspace ---------------------------------------------------

    def slash_command_payload(
        self,
        text: str,
        *,
        user_id: str = "U01AAA",
        channel_id: str = "C0SANDBOX",
        command: str = "/svc",
        response_url: str | None = None,
    ) -> dict[str, str]:
        """A slash command payload for this workspace, with a fresh response_url unless given."""
        return payloads.slash_command_payload(
            text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url or self.response_url(channel_id=channel_id, user_id=user_id),
            command=command,
            user_name=self.user_name(user_id),
            channel_name=self.channel_name(channel_id),
            team_id=self.team_id,
            team_domain=self.team_domain,
            api_app_id=self.app_id,
        )

    def block_actions_payload(
        self,
        action_id: str,
        value: str | None = None,
        *,
        user_id: str = "U01AAA",
        channel_id: str = "C0SANDBOX",
        message_ts: str | None = None,
        block_id: str | None = None,
        button_text: str | None = None,
        response_url: str | None = None,
    ) -> dict[str, Any]:
        """A block_actions payload clicking a button on a message stored in the sandbox (or made up)."""
        message: dict[str, Any] | None = None
        button: tuple[str, dict[str, Any]] | None = None
        with self.cond:
            if message_ts is None:
                message_ts = self.latest_with_button(channel_id, action_id, value)
                if message_ts is None:
                    raise ValueError(f"no message in {channel_id} has a button {action_id!r} (value={value!r})")
            stored = self.stored(channel_id, message_ts)
            if stored is not None:
                message = json.loads(json.dumps(stored))
                button = blockkit.find_button(stored.get("blocks"), action_id, value)
        element = button[1] if button else {}
        text_obj = element.get("text")
        return payloads.block_actions_payload(
            action_id=action_id,
            value=value if value is not None else element.get("value"),
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
            response_url=response_url
            or self.response_url(channel_id=channel_id, user_id=user_id, message_ts=message_ts),
            block_id=block_id or (button[0] if button else "actions"),
            button_text=button_text or (text_obj.get("text") if isinstance(text_obj, dict) else None) or action_id,
            style=element.get("style"),
            message=message,
            user_name=self.user_name(user_id),
            channel_name=self.channel_name(channel_id),
            team_id=self.team_id,
            team_domain=self.team_domain,
            api_app_id=self.app_id,
        )

    # -- HTTP mode helpers -------------------------------------------------------------------------

    def slash_command_request(
        self,
        text: str,
        user_id: str = "U01AAA",
        channel_id: str = "C0SANDBOX",
        command: str = "/svc",
        *,
        timestamp: int | str | None = None,
        secret: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """(body, headers) of a signed slash command POST, as Slack sends it in HTTP mode."""
        body = payloads.form_encode(
            self.slash_command_payload(text, user_id=user_id, channel_id=channel_id, command=command)
        )
        return body, payloads.sign_request(body, secret or self.signing_secret, timestamp)

    def block_actions_request(
        self,
        action_id: str,
        value: str | None = None,
        user_id: str = "U01AAA",
        channel_id: str = "C0SANDBOX",
        message_ts: str | None = None,
        *,
        timestamp: int | str | None = None,
        secret: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """(body, headers) of a signed block_actions POST (``payload=<json>``), as Slack sends it."""
        payload = self.block_actions_payload(
            action_id, value, user_id=user_id, channel_id=channel_id, message_ts=message_ts
        )
        body = payloads.interactive_body(payload)
        return body, payloads.sign_request(body, secret or self.signing_secret, timestamp)

    @staticmethod
    def post(url: str, body: str | bytes, headers: Mapping[str, str], timeout: float = 10.0) -> tuple[int, str]:
        """POST a body with headers (e.g. from slash_command_request) to the bot; returns (status, text)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        req = urllib.request.Request(url, data=data, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")
