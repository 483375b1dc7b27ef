"""The pretend Slack workspace every surface of the Slack sandbox reads and writes: who the bot is, which
channels it is in, users and user groups, the messages, ephemerals and files it made, and the record of
every call answered. One condition variable, ``cond``, guards it all: whoever changes a message or a file
does it holding ``cond`` and notifies it, so tests can wait for any change.

The Web API (web_api.py), response_urls (response_url.py) and the HTTP front (front.py) each get this
object; SlackSandbox (server.py) is a Workspace plus the servers and the driver methods tests call.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.slack import blocks as blockkit
from sandbox.slack import payloads

logger = logging.getLogger("sandbox.slack")

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


class ApiError(Exception):
    """A Web API method's ``{"ok": false, "error": ...}`` answer (``extra`` joins the answer)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class Workspace:
    """``channels`` are the channels the bot is a member of (id -> name); posting elsewhere answers
    ``not_in_channel``, and ids starting with one of ``not_found_prefixes`` (or listed in
    ``missing_channels``) answer ``channel_not_found``. User ids (U.../W...) and DM ids (D...) are
    accepted as direct messages.
    """

    def __init__(
        self,
        *,
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
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
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
        # Reentrant (Condition's default lock): a ts is minted inside other locked updates.
        self.cond = threading.Condition()
        self._calls: list[Call] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._files: dict[str, UploadedFile] = {}
        self._ts = FIRST_TS - 100  # the first message gets FIRST_TS
        self._file_ids = itertools.count(1)

    # -- membership --------------------------------------------------------------------------------

    def join(self, channel_id: str, name: str | None = None) -> None:
        """Make the bot a member of ``channel_id``."""
        with self.cond:
            self._channels[channel_id] = name or self._channels.get(channel_id) or channel_id.lower()

    def leave(self, channel_id: str) -> None:
        """Remove the bot from ``channel_id`` (posts there then answer not_in_channel)."""
        with self.cond:
            self._channels.pop(channel_id, None)

    @property
    def channels(self) -> dict[str, str]:
        """Channels the bot is a member of (id -> name)."""
        with self.cond:
            return dict(self._channels)

    def set_usergroup(self, usergroup_id: str, users: Iterable[str]) -> None:
        with self.cond:
            self._usergroups[usergroup_id] = list(users)

    def usergroup_members(self, usergroup_id: Any) -> list[str]:
        with self.cond:
            if not usergroup_id or usergroup_id not in self._usergroups:
                raise ApiError("no_such_subteam")
            return list(self._usergroups[usergroup_id])

    def set_user(self, user_id: str, name: str) -> None:
        with self.cond:
            self._users[user_id] = name

    def user_name(self, user_id: str) -> str:
        with self.cond:
            return self._users.get(user_id, user_id.lower())

    def channel_name(self, channel_id: str) -> str:
        with self.cond:
            return self._channels.get(channel_id, channel_id.lower())

    def resolve_channel(self, channel: Any) -> str:
        """The channel id a post to ``channel`` lands in, or the error Slack answers."""
        if not isinstance(channel, str) or not channel:
            raise ApiError("channel_not_found")
        with self.cond:
            if channel.startswith("#"):
                by_name = {name: cid for cid, name in self._channels.items()}
                if channel[1:] in by_name:
                    return by_name[channel[1:]]
                raise ApiError("channel_not_found")
            if channel in self.missing_channels or channel.startswith(self.not_found_prefixes):
                raise ApiError("channel_not_found")
            if channel in self._channels:
                return channel
        if channel[0] in "UW":
            return "D" + channel[1:]
        if channel[0] == "D":
            return channel
        raise ApiError("not_in_channel")

    # -- content -----------------------------------------------------------------------------------

    def next_ts(self) -> str:
        with self.cond:
            self._ts += 100
            v = self._ts
        return f"{v // 1_000_000}.{v % 1_000_000:06d}"

    def bot_message(self, ts: str, content: Mapping[str, Any]) -> dict[str, Any]:
        """A message as the bot's post looks in Slack's answers and history."""
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

    def stored(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The live stored message (change it only while holding ``cond``, then notify)."""
        with self.cond:
            return self._messages.get((channel, ts))

    def latest_with_button(self, channel: str, action_id: str, value: str | None) -> str | None:
        """The ts of the newest message in ``channel`` with a button ``action_id`` (and ``value``)."""
        with self.cond:
            for (ch, _), m in sorted(self._messages.items(), key=lambda kv: kv[1]["ts"], reverse=True):
                if ch == channel and blockkit.find_button(m.get("blocks"), action_id, value):
                    return str(m["ts"])
        return None

    def delete_message(self, channel: str, ts: str) -> bool:
        with self.cond:
            if self._messages.pop((channel, ts), None) is None:
                return False
            self.cond.notify_all()
            return True

    def store_message(self, channel: str, msg: dict[str, Any]) -> None:
        with self.cond:
            self._messages[(channel, msg["ts"])] = {**msg, "channel": channel}
            self.cond.notify_all()

    def add_ephemeral(self, ephemeral: dict[str, Any]) -> None:
        with self.cond:
            self._ephemerals.append(ephemeral)
            self.cond.notify_all()

    def announce_file(self, filename: str, length: int, alt_txt: str | None, snippet_type: str | None
                      ) -> UploadedFile:
        f = UploadedFile(id=f"F0SANDBOX{next(self._file_ids):04d}", filename=filename, length=length,
                         alt_txt=alt_txt, snippet_type=snippet_type)
        with self.cond:
            self._files[f.id] = f
        return f

    def file(self, file_id: str) -> UploadedFile | None:
        """The live file record (change it only while holding ``cond``, then notify)."""
        with self.cond:
            return self._files.get(file_id)

    def record(self, call: Call) -> None:
        with self.cond:
            self._calls.append(call)
            self.cond.notify_all()
        logger.debug("slack sandbox %s -> %s", call.method, call.status)

    # -- what happened -----------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded call (Web API, response_url, upload), oldest first; filtered by method."""
        with self.cond:
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

        with self.cond:
            if not self.cond.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                seen = [f"{c.method}:{c.status}" for c in self._calls]
                raise TimeoutError(
                    f"expected {count} matching {method or 'any'} call(s), got {len(matching())} "
                    f"after {timeout}s; calls so far: {seen}"
                )
            return matching()

    def uploaded_files(self) -> list[UploadedFile]:
        """Files in the order they were announced (copies)."""
        with self.cond:
            return [dataclasses.replace(f, channels=list(f.channels)) for f in self._files.values()]

    def messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Messages currently in channels (after updates and deletes), oldest first, each with ``channel``.

        Includes chat.postMessage posts, in_channel response_url posts and file shares.
        """
        with self.cond:
            out = [
                json.loads(json.dumps(m))
                for (ch, _), m in self._messages.items()
                if (channel is None or ch == channel) and (thread_ts is None or m.get("thread_ts") == thread_ts)
            ]
        return sorted(out, key=lambda m: m["ts"])

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self.cond:
            m = self._messages.get((channel, ts))
            return json.loads(json.dumps(m)) if m is not None else None

    def ephemerals(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages (chat.postEphemeral and ephemeral response_url posts), oldest first."""
        with self.cond:
            return [dict(e) for e in self._ephemerals if channel is None or e.get("channel") == channel]

    def forget_content(self) -> None:
        """Drop calls, messages, ephemerals and files (membership and users stay)."""
        with self.cond:
            self._calls.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._files.clear()
