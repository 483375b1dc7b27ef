"""SlackSandbox: a local stand-in for the Slack Web API, response_url and Socket Mode.

Point ``slack_sdk.WebClient(base_url=sandbox.api_url)`` (or ``SVCBOT_SLACK_API_URL``) at it. It answers
the methods svcbot calls in Slack's shapes, checks tokens, channel membership and Block Kit limits the way
Slack does, records every call, and can be told to rate-limit or fail. See ``sandbox/slack/__init__.py``
for the list of methods and helpers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import mimetypes
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.slack import blocks as blockkit
from sandbox.slack import payloads
from sandbox.slack.socket_mode import Ack, Envelope, SocketModeEndpoint

logger = logging.getLogger("sandbox.slack")

JSON_FIELDS = ("blocks", "attachments", "files", "metadata")
NO_AUTH_METHODS = ("api.test",)
APP_TOKEN_METHODS = ("apps.connections.open",)
FAULT_MODES = ("ratelimited", "error500", "error", "delay")
FIRST_TS = 1_700_000_000_000_100  # microseconds: "1700000000.000100"


@dataclass(frozen=True)
class Call:
    """One request the sandbox answered.

    ``method`` is the Web API method (``chat.postMessage``), or ``response_url`` for a post to a
    response_url, or ``upload`` for a file upload to an upload URL.
    """

    method: str
    args: dict[str, Any]  # query + body merged; blocks/attachments/files/metadata JSON-decoded; no token
    headers: dict[str, str]  # request headers without Authorization
    status: int  # the HTTP status answered
    response: Any  # the JSON answered (a dict), or the text answered
    at: float  # time.monotonic() when the answer was ready
    wall_time: float  # time.time() at the same moment
    path: str
    http_method: str = "POST"
    raw_body: bytes = b""

    @property
    def ok(self) -> bool:
        if isinstance(self.response, dict):
            return bool(self.response.get("ok"))
        return 200 <= self.status < 300

    @property
    def error(self) -> str | None:
        if isinstance(self.response, dict) and not self.response.get("ok"):
            return str(self.response.get("error"))
        return None if self.ok else str(self.response)

    @property
    def target(self) -> str:
        """The response_url id or file id in the path (the last path segment)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class UploadedFile:
    """A file announced with files.getUploadURLExternal, its bytes, and where it was shared."""

    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None  # None until the upload URL received it
    title: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None

    @property
    def uploaded(self) -> bool:
        return self.content is not None

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8", "replace")


@dataclass
class _Fault:
    method: str | None
    mode: str
    retry_after: int
    times: int | None
    error: str
    delay: float


@dataclass
class _ResponseUrl:
    channel_id: str | None
    user_id: str | None
    message_ts: str | None
    uses: int = 0


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class SlackSandbox:
    """Sandbox Slack: Web API + response_url + upload URLs over HTTP, and a Socket Mode endpoint.

    ``channels`` are the channels the bot is a member of (id -> name); posting elsewhere answers
    ``not_in_channel``, and ids starting with one of ``not_found_prefixes`` (or listed in
    ``missing_channels``) answer ``channel_not_found``. User ids (U.../W...) and DM ids (D...) are
    accepted as direct messages.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
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
        self.host = host
        self._port = port
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.response_url_limit = response_url_limit
        self.not_found_prefixes: tuple[str, ...] = tuple(not_found_prefixes)
        self.missing_channels: set[str] = set(missing_channels)
        if channels is None:
            channels = {"C0SANDBOX": "svc-sandbox", "C0APPROVALS": "svc-approvals"}
        self._channels: dict[str, str] = (
            dict(channels) if isinstance(channels, Mapping) else {c: c.lower() for c in channels}
        )
        self._usergroups: dict[str, list[str]] = {
            k: list(v) for k, v in (usergroups if usergroups is not None else {"S0SRELEADS": ["U02CCC"]}).items()
        }
        self._users: dict[str, str] = dict(
            users if users is not None else {"U01AAA": "alice", "U01BBB": "bob", "U02CCC": "carol"}
        )
        self._cond = threading.Condition()
        self._calls: list[Call] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._files: dict[str, UploadedFile] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._faults: list[_Fault] = []
        self._ts = FIRST_TS - 100  # the first message gets FIRST_TS
        self._file_ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.socket_mode = SocketModeEndpoint(host=host, port=socket_mode_port, app_id=app_id)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SlackSandbox:
        """Start both servers (idempotent); returns self."""
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"sandbox": self})
        httpd = ThreadingHTTPServer((self.host, self._port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-sandbox-http", daemon=True
        )
        self._thread.start()
        self.socket_mode.start()
        return self

    def stop(self) -> None:
        """Stop both servers (idempotent); open Socket Mode connections are closed."""
        self.socket_mode.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

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
        rid = id or uuid.uuid4().hex[:16]
        with self._cond:
            self._response_urls[rid] = _ResponseUrl(channel_id=channel_id, user_id=user_id, message_ts=message_ts)
        return f"{self.base_url}/response/{rid}"

    # -- configuration -----------------------------------------------------------------------------

    def join(self, channel_id: str, name: str | None = None) -> None:
        """Make the bot a member of ``channel_id``."""
        with self._cond:
            self._channels[channel_id] = name or self._channels.get(channel_id) or channel_id.lower()

    def leave(self, channel_id: str) -> None:
        """Remove the bot from ``channel_id`` (posts there then answer not_in_channel)."""
        with self._cond:
            self._channels.pop(channel_id, None)

    @property
    def channels(self) -> dict[str, str]:
        """Channels the bot is a member of (id -> name)."""
        with self._cond:
            return dict(self._channels)

    def set_usergroup(self, usergroup_id: str, users: Iterable[str]) -> None:
        with self._cond:
            self._usergroups[usergroup_id] = list(users)

    def set_user(self, user_id: str, name: str) -> None:
        with self._cond:
            self._users[user_id] = name

    def user_name(self, user_id: str) -> str:
        with self._cond:
            return self._users.get(user_id, user_id.lower())

    def channel_name(self, channel_id: str) -> str:
        with self._cond:
            return self._channels.get(channel_id, channel_id.lower())

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
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}, not {mode!r}")
        with self._cond:
            self._faults.append(_Fault(method, mode, int(retry_after), times, error, delay))

    def clear_faults(self) -> None:
        with self._cond:
            self._faults.clear()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.method is not None and fault.method != method:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return dataclasses.replace(fault)
        return None

    # -- what happened -----------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded call (Web API, response_url, upload), oldest first; filtered by method."""
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(
        self,
        method: str | None,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until ``count`` calls to ``method`` matching ``predicate`` arrived; returns them all.

        Raises TimeoutError, naming the calls that did arrive.
        """

        def matching() -> list[Call]:
            return [
                c for c in self._calls if (method is None or c.method == method) and (predicate is None or predicate(c))
            ]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                seen = [f"{c.method}:{c.status}" for c in self._calls]
                raise TimeoutError(
                    f"expected {count} matching {method or 'any'} call(s), got {len(matching())} "
                    f"after {timeout}s; calls so far: {seen}"
                )
            return matching()

    def response_posts(self, id: str | None = None) -> list[Call]:
        """Posts to response_urls (``Call.args`` is the JSON body, ``Call.target`` the response_url id)."""
        return [c for c in self.calls("response_url") if id is None or c.target == id]

    def uploaded_files(self) -> list[UploadedFile]:
        """Files in the order they were announced (copies)."""
        with self._cond:
            return [dataclasses.replace(f, channels=list(f.channels)) for f in self._files.values()]

    def messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages currently in channels (after updates and deletes), oldest first, each with ``channel``.

        Includes chat.postMessage posts, in_channel response_url posts and file shares.
        """
        with self._cond:
            out = [
                json.loads(json.dumps(m))
                for (ch, _), m in self._messages.items()
                if (channel is None or ch == channel) and (thread_ts is None or m.get("thread_ts") == thread_ts)
            ]
        return sorted(out, key=lambda m: m["ts"])

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._cond:
            m = self._messages.get((channel, ts))
            return json.loads(json.dumps(m)) if m is not None else None

    def ephemerals(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages (chat.postEphemeral and ephemeral response_url posts), oldest first."""
        with self._cond:
            return [dict(e) for e in self._ephemerals if channel is None or e.get("channel") == channel]

    def reset(self) -> None:
        """Forget calls, messages, files, response_urls, faults, envelopes, acks (not config, sockets)."""
        with self._cond:
            self._calls.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._files.clear()
            self._response_urls.clear()
            self._faults.clear()
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
        """Close a slack_sdk ``SocketModeClient`` (e.g. ``SocketModeHandler.client``) without waiting.

        The client's close() otherwise waits up to its 3 s receive timeout and 1 s queue poll; here
        reconnects are turned off, the sandbox hangs up first and the queue is woken, so it returns at once.
        """
        client.auto_reconnect_enabled = False
        client.default_auto_reconnect_enabled = False
        self.disconnect_all("close")
        client.closed = True
        client.message_queue.put(None)  # wakes its message processor, which polls the queue every second
        client.close()

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
        with self._cond:
            if message_ts is None:
                for (ch, _), m in sorted(self._messages.items(), key=lambda kv: kv[1]["ts"], reverse=True):
                    if ch == channel_id and blockkit.find_button(m.get("blocks"), action_id, value):
                        message_ts = m["ts"]
                        break
                else:
                    raise ValueError(f"no message in {channel_id} has a button {action_id!r} (value={value!r})")
            stored = self._messages.get((channel_id, message_ts))
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

    # -- request handling --------------------------------------------------------------------------

    def _next_ts(self) -> str:
        with self._cond:
            self._ts += 100
            v = self._ts
        return f"{v // 1_000_000}.{v % 1_000_000:06d}"

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        logger.debug("slack sandbox %s -> %s", call.method, call.status)

    def handle(self, h: BaseHTTPRequestHandler, http_method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length > 0 else b""
        headers = {k: v for k, v in h.headers.items() if k.lower() != "authorization"}
        path = parts.path
        if path.startswith("/api/"):
            method = path[len("/api/") :]
        elif path.startswith("/response/"):
            method = "response_url"
        elif path.startswith("/upload/"):
            method = "upload"
        elif path.startswith("/_sandbox/"):
            self._control(h, http_method, path[len("/_sandbox/") :], raw)
            return
        elif path.startswith("/files/") and http_method == "GET":
            self._serve_file(h, path)
            return
        else:
            _write(h, 404, {"ok": False, "error": "not_found"})
            return

        status: int
        answer: Any
        extra_headers: dict[str, str] = {}
        args: dict[str, Any] = {}
        try:
            if method == "upload":  # raw bytes (or multipart), never form fields
                args, token = {"length": len(raw)}, None
            else:
                args, token = _parse_args(parts.query, h.headers.get("Content-Type", ""), raw, h.headers)
        except _ApiError as e:
            token = None
            status, answer = 200, {"ok": False, "error": e.error}
        else:
            fault = self._take_fault(method)
            if fault is not None and fault.mode == "delay":
                time.sleep(fault.delay)
                fault = None
            if fault is None:
                status, answer = self._dispatch(
                    method, args, token, raw=raw, content_type=h.headers.get("Content-Type", ""), path=path
                )
            elif fault.mode == "ratelimited":
                status, answer = 429, {"ok": False, "error": "ratelimited"}
                extra_headers["Retry-After"] = str(fault.retry_after)
            elif fault.mode == "error500":
                status, answer = 500, {"ok": False, "error": "internal_error"}
            else:
                status, answer = 200, {"ok": False, "error": fault.error}
        self._record(
            Call(
                method=method,
                args=args,
                headers=headers,
                status=status,
                response=answer,
                at=time.monotonic(),
                wall_time=time.time(),
                path=path,
                http_method=http_method,
                raw_body=raw,
            )
        )
        _write(h, status, answer, extra_headers)

    def _dispatch(
        self,
        method: str,
        args: dict[str, Any],
        token: str | None,
        *,
        raw: bytes,
        content_type: str,
        path: str,
    ) -> tuple[int, Any]:
        if method == "response_url":
            return self._response_post(path.rstrip("/").rsplit("/", 1)[-1], args)
        if method == "upload":
            return self._upload(path.rstrip("/").rsplit("/", 1)[-1], raw, content_type, args)
        handler = _METHODS.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}
        try:
            if method not in NO_AUTH_METHODS:
                self._authorize(method, token)
            return 200, handler(self, args)
        except _ApiError as e:
            return 200, {"ok": False, "error": e.error, **e.extra}

    def _authorize(self, method: str, token: str | None) -> None:
        if not token:
            raise _ApiError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise _ApiError("invalid_auth")
        wants_app = method in APP_TOKEN_METHODS
        if (token == self.app_token) != wants_app:
            raise _ApiError("not_allowed_token_type")

    def _resolve_channel(self, channel: Any) -> str:
        if not isinstance(channel, str) or not channel:
            raise _ApiError("channel_not_found")
        with self._cond:
            if channel.startswith("#"):
                by_name = {name: cid for cid, name in self._channels.items()}
                if channel[1:] in by_name:
                    return by_name[channel[1:]]
                raise _ApiError("channel_not_found")
            if channel in self.missing_channels or channel.startswith(self.not_found_prefixes):
                raise _ApiError("channel_not_found")
            if channel in self._channels:
                return channel
        if channel[0] in "UW":
            return "D" + channel[1:]
        if channel[0] == "D":
            return channel
        raise _ApiError("not_in_channel")

    def _message_content(self, args: Mapping[str, Any], *, require: bool) -> dict[str, Any]:
        """text/blocks/attachments of a message, checked the way Slack checks them."""
        content: dict[str, Any] = {}
        warnings: list[str] = []
        if "blocks" in args and args["blocks"] not in (None, ""):
            problems = blockkit.validate_blocks(args["blocks"])
            if problems:
                raise _ApiError(
                    "invalid_blocks",
                    errors=problems,
                    response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
                )
            content["blocks"] = args["blocks"]
        if "attachments" in args and args["attachments"] not in (None, ""):
            if not isinstance(args["attachments"], list):
                raise _ApiError("invalid_attachments")
            content["attachments"] = args["attachments"]
        text = args.get("text")
        if text is not None:
            text = str(text)
            if len(text) > blockkit.MAX_MESSAGE_TEXT:
                text = text[: blockkit.MAX_MESSAGE_TEXT]
                warnings.append("message_truncated")
            content["text"] = text
        if require and not content.get("text") and not content.get("blocks") and not content.get("attachments"):
            raise _ApiError("no_text")
        if warnings:
            content["_warnings"] = warnings
        return content

    def _bot_message(self, ts: str, content: Mapping[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "text": content.get("text", ""),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "ts": ts,
            "team": self.team_id,
        }
        for key in ("blocks", "attachments", "metadata", "thread_ts", "files"):
            if content.get(key) is not None:
                msg[key] = content[key]
        return msg

    def _store(self, channel: str, msg: dict[str, Any]) -> None:
        with self._cond:
            self._messages[(channel, msg["ts"])] = {**msg, "channel": channel}
            self._cond.notify_all()

    # Web API methods: each takes the parsed args and returns the ok answer or raises _ApiError.

    def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        if "error" in args:
            raise _ApiError(str(args["error"]), args=args)
        return {"ok": True, "args": args}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Sandbox",
            "user": "svcbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        content = self._message_content(args, require=True)
        warnings = content.pop("_warnings", None)
        if args.get("metadata"):
            content["metadata"] = args["metadata"]
        if args.get("thread_ts"):
            content["thread_ts"] = str(args["thread_ts"])
        ts = self._next_ts()
        msg = self._bot_message(ts, content)
        self._store(channel, msg)
        answer: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": msg}
        if warnings:
            answer["warning"] = ",".join(warnings)
            answer["response_metadata"] = {"warnings": warnings}
        return answer

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        content = self._message_content(args, require=False)
        content.pop("_warnings", None)
        with self._cond:
            msg = self._messages.get((channel, ts))
            if msg is None:
                raise _ApiError("message_not_found")
            if msg.get("bot_id") != self.bot_id:
                raise _ApiError("cant_update_message")
            for key in ("text", "blocks", "attachments"):
                if key in content:
                    msg[key] = content[key]
            if isinstance(msg.get("blocks"), list) and not msg["blocks"]:
                del msg["blocks"]
            msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            self._cond.notify_all()
            public = {k: v for k, v in msg.items() if k != "channel"}
        return {"ok": True, "channel": channel, "ts": ts, "text": public.get("text", ""), "message": public}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        with self._cond:
            if self._messages.pop((channel, ts), None) is None:
                raise _ApiError("message_not_found")
            self._cond.notify_all()
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        user = args.get("user")
        if not user:
            raise _ApiError("user_not_found")
        content = self._message_content(args, require=True)
        content.pop("_warnings", None)
        ts = self._next_ts()
        with self._cond:
            self._ephemerals.append(
                {
                    "channel": channel,
                    "user": str(user),
                    "ts": ts,
                    "thread_ts": args.get("thread_ts"),
                    "via": "chat.postEphemeral",
                    **content,
                }
            )
            self._cond.notify_all()
        return {"ok": True, "message_ts": ts}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        with self._cond:
            if not group or group not in self._usergroups:
                raise _ApiError("no_such_subteam")
            return {"ok": True, "users": list(self._usergroups[group])}

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except (TypeError, ValueError):
            raise _ApiError("invalid_arguments") from None
        if not filename or length < 0:
            raise _ApiError("invalid_arguments")
        file_id = f"F0SANDBOX{next(self._file_ids):04d}"
        with self._cond:
            self._files[file_id] = UploadedFile(
                id=file_id,
                filename=str(filename),
                length=length,
                alt_txt=args.get("alt_txt"),
                snippet_type=args.get("snippet_type"),
            )
        return {"ok": True, "upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, raw: bytes, content_type: str, args: dict[str, Any]) -> tuple[int, Any]:
        content = raw
        if content_type.lower().startswith("multipart/form-data"):
            parts = _multipart(content_type, raw)
            files = [p for p in parts if p[2] is not None]
            chosen = files[0] if files else (parts[0] if parts else None)
            content = chosen[1] if chosen else b""
        with self._cond:
            f = self._files.get(file_id)
            if f is None:
                return 404, "file_not_found"
            f.content = content
            self._cond.notify_all()
        return 200, f"OK - {len(content)}"

    def _file_object(self, f: UploadedFile, ts: str | None) -> dict[str, Any]:
        mimetype = mimetypes.guess_type(f.filename)[0] or "text/plain"
        ext = f.filename.rsplit(".", 1)[-1].lower() if "." in f.filename else "text"
        now = int(time.time())
        shares: dict[str, Any] = {}
        if f.channels:
            share: dict[str, Any] = {"ts": ts}
            if f.thread_ts:
                share["thread_ts"] = f.thread_ts
            shares = {"public": {c: [dict(share)] for c in f.channels}}
        return {
            "id": f.id,
            "created": now,
            "timestamp": now,
            "name": f.filename,
            "title": f.title or f.filename,
            "mimetype": mimetype,
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "mode": "snippet" if f.snippet_type else "hosted",
            "is_external": False,
            "size": len(f.content or b""),
            "url_private": f"{self.base_url}/files/{f.id}/{f.filename}",
            "url_private_download": f"{self.base_url}/files/{f.id}/{f.filename}",
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{f.id}/{f.filename}",
            "channels": list(f.channels),
            "groups": [],
            "ims": [],
            "shares": shares,
        }

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise _ApiError("invalid_arguments")
        targets: list[str] = []
        if args.get("channel_id"):
            targets.append(self._resolve_channel(args["channel_id"]))
        if args.get("channels"):
            targets.extend(self._resolve_channel(c.strip()) for c in str(args["channels"]).split(",") if c.strip())
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts and not targets:
            raise _ApiError("invalid_arguments")
        with self._cond:
            chosen: list[UploadedFile] = []
            for item in items:
                f = self._files.get(str(item.get("id"))) if isinstance(item, dict) else None
                if f is None or not f.uploaded:
                    raise _ApiError("file_not_found")
                chosen.append(f)
            for f, item in zip(chosen, items, strict=True):
                f.title = item.get("title") or f.filename
                f.completed = True
                f.channels = list(targets)
                f.thread_ts = thread_ts
                f.initial_comment = args.get("initial_comment")
        ts = self._next_ts() if targets else None
        objects = [self._file_object(f, ts) for f in chosen]
        if ts is not None:
            for channel in targets:
                content: dict[str, Any] = {"text": args.get("initial_comment") or "", "files": objects}
                if thread_ts:
                    content["thread_ts"] = thread_ts
                self._store(channel, {**self._bot_message(ts, content), "upload": True})
        return {"ok": True, "files": objects}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_mode.issue_url()}

    # response_url and files

    def _response_post(self, rid: str, args: dict[str, Any]) -> tuple[int, Any]:
        with self._cond:
            ctx = self._response_urls.setdefault(rid, _ResponseUrl(None, None, None))
            ctx.uses += 1
            if self.response_url_limit is not None and ctx.uses > self.response_url_limit:
                return 404, "used_url"
        if args.get("blocks") not in (None, "") and blockkit.validate_blocks(args["blocks"]):
            return 400, "invalid_blocks"
        if args.get("delete_original") in (True, "true"):
            if ctx.channel_id and ctx.message_ts:
                with self._cond:
                    self._messages.pop((ctx.channel_id, ctx.message_ts), None)
                    self._cond.notify_all()
            return 200, "ok"
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return 400, "no_text"
        content = {k: args[k] for k in ("text", "blocks", "attachments") if args.get(k) is not None}
        if args.get("replace_original") in (True, "true") and ctx.channel_id and ctx.message_ts:
            with self._cond:
                msg = self._messages.get((ctx.channel_id, ctx.message_ts))
                if msg is not None:
                    msg.pop("blocks", None)
                    msg.pop("attachments", None)
                    msg.update(content)
                    msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
                    self._cond.notify_all()
            return 200, "ok"
        if args.get("response_type") == "in_channel" and ctx.channel_id:
            if args.get("thread_ts"):
                content["thread_ts"] = str(args["thread_ts"])
            self._store(ctx.channel_id, {**self._bot_message(self._next_ts(), content), "response_url": rid})
            return 200, "ok"
        with self._cond:
            self._ephemerals.append(
                {
                    "channel": ctx.channel_id,
                    "user": ctx.user_id,
                    "ts": self._next_ts(),
                    "thread_ts": args.get("thread_ts"),
                    "via": "response_url",
                    "response_url": rid,
                    **content,
                }
            )
            self._cond.notify_all()
        return 200, "ok"

    def _serve_file(self, h: BaseHTTPRequestHandler, path: str) -> None:
        parts = path.split("/")
        with self._cond:
            f = self._files.get(parts[2]) if len(parts) > 2 else None
            content = f.content if f is not None else None
        if content is None:
            _write(h, 404, "file_not_found")
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(content)))
        h.end_headers()
        h.wfile.write(content)

    # control endpoints, so a bot in another process can be driven (used by `svcbot sandbox`)

    def _control(self, h: BaseHTTPRequestHandler, http_method: str, action: str, raw: bytes) -> None:
        try:
            body = json.loads(raw) if raw else {}
            if http_method == "GET" and action == "calls":
                calls = [
                    {"method": c.method, "status": c.status, "args": c.args, "response": c.response}
                    for c in self.calls()
                ]
                _write(h, 200, {"ok": True, "calls": calls})
            elif http_method == "GET" and action == "messages":
                _write(h, 200, {"ok": True, "messages": self.messages(), "ephemerals": self.ephemerals()})
            elif http_method == "GET" and action == "acks":
                acks = [{"envelope_id": a.envelope_id, "payload": a.payload, "latency": a.latency} for a in self.acks()]
                _write(h, 200, {"ok": True, "acks": acks})
            elif http_method == "POST" and action == "slash_command":
                envelope_id = self.send_slash_command(
                    str(body.get("text", "")),
                    user_id=str(body.get("user_id", "U01AAA")),
                    channel_id=str(body.get("channel_id", "C0SANDBOX")),
                    command=str(body.get("command", "/svc")),
                    wait=float(body.get("wait", 5.0)),
                )
                _write(h, 200, {"ok": True, "envelope_id": envelope_id})
            elif http_method == "POST" and action == "block_actions":
                envelope_id = self.send_block_actions(
                    str(body["action_id"]),
                    body.get("value"),
                    user_id=str(body.get("user_id", "U01AAA")),
                    channel_id=str(body.get("channel_id", "C0SANDBOX")),
                    message_ts=body.get("message_ts"),
                    wait=float(body.get("wait", 5.0)),
                )
                _write(h, 200, {"ok": True, "envelope_id": envelope_id})
            elif http_method == "POST" and action == "reset":
                self.reset()
                _write(h, 200, {"ok": True})
            else:
                _write(h, 404, {"ok": False, "error": "unknown_control"})
        except (TimeoutError, ValueError, KeyError) as e:
            _write(h, 400, {"ok": False, "error": str(e)})


_METHODS: dict[str, Callable[[SlackSandbox, dict[str, Any]], dict[str, Any]]] = {
    "api.test": SlackSandbox._api_test,
    "auth.test": SlackSandbox._auth_test,
    "chat.postMessage": SlackSandbox._chat_post_message,
    "chat.update": SlackSandbox._chat_update,
    "chat.delete": SlackSandbox._chat_delete,
    "chat.postEphemeral": SlackSandbox._chat_post_ephemeral,
    "usergroups.users.list": SlackSandbox._usergroups_users_list,
    "files.getUploadURLExternal": SlackSandbox._files_get_upload_url_external,
    "files.completeUploadExternal": SlackSandbox._files_complete_upload_external,
    "apps.connections.open": SlackSandbox._apps_connections_open,
}
"""The Web API methods the sandbox answers."""

SUPPORTED_METHODS = tuple(_METHODS)


class _Handler(BaseHTTPRequestHandler):
    sandbox: SlackSandbox
    server_version = "SlackSandbox/1.0"

    def do_GET(self) -> None:
        self.sandbox.handle(self, "GET")

    def do_POST(self) -> None:
        self.sandbox.handle(self, "POST")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("slack sandbox http: " + format, *args)


def _write(h: BaseHTTPRequestHandler, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    if isinstance(body, dict | list):
        data = json.dumps(body).encode("utf-8")
        ctype = "application/json; charset=utf-8"
    else:
        data = str(body).encode("utf-8")
        ctype = "text/plain; charset=utf-8"
    try:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
    except OSError:
        return  # the client went away; nothing to tell it


def _multipart(content_type: str, raw: bytes) -> list[tuple[str | None, bytes, str | None]]:
    """Parts of a multipart/form-data body as (field name, bytes, filename)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    out: list[tuple[str | None, bytes, str | None]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        out.append((part.get_param("name", header="content-disposition"), data, part.get_filename()))  # type: ignore[arg-type]
    return out


def _parse_args(query: str, content_type: str, raw: bytes, headers: Any) -> tuple[dict[str, Any], str | None]:
    """Merge query string and body (form, JSON or multipart) into one dict; pull the token out."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if raw:
        if ctype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                raise _ApiError("invalid_json") from None
            if not isinstance(body, dict):
                raise _ApiError("invalid_json")
            args.update(body)
        elif ctype == "multipart/form-data":
            for name, data, filename in _multipart(content_type, raw):
                if name and filename is None:
                    args[name] = data.decode("utf-8", "replace")
        elif ctype in ("application/x-www-form-urlencoded", ""):
            with contextlib.suppress(UnicodeDecodeError):
                args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    if "payload" in args and isinstance(args["payload"], str) and ctype != "application/json":
        # response_url posts may come as payload=<json>
        try:
            inner = json.loads(args["payload"])
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            del args["payload"]
            args.update(inner)
    for key in JSON_FIELDS:
        if isinstance(args.get(key), str) and args[key] != "":
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                raise _ApiError("invalid_blocks_format" if key == "blocks" else "invalid_arguments") from None
    token = args.pop("token", None)
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[len("bearer ") :].strip()
    return args, token
