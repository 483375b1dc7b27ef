"""The Slack Web API and response_url, wrapped: slack_sdk errors never leave this module.

Delivery rules (DESIGN.md): simple answers go to the command's response_url (in_channel for public
answers, ephemeral otherwise); a message that must be updated or threaded later goes through
chat.postMessage (which returns its ts), falling back to response_url with a hint to invite the bot when the
bot is not in the channel; a long output goes as a file (files.getUploadURLExternal + completeUploadExternal,
via files_upload_v2). Rate limits are retried after Retry-After by slack_sdk's retry handler.

One poster per process, with one rate limit per channel (`ChannelPace`): every message posted in a channel
(answers, approval messages, deploy progress and outcomes, and later watch incidents) takes the channel's next
slot, about one a second (Slack's rule for chat.postMessage); updates of a message (chat.update, Tier 3, not
limited per channel) go at once. A 429 that outlasts slack_sdk's retries holds every post and update to that
channel for its Retry-After.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot.clients import deadlines, lanes
from bot.core.errors import BackendUnavailable
from bot.render.slack import SlackMessage

log = structlog.get_logger("svcbot.slack")
T = TypeVar("T")

DEFAULT_API_URL = "https://slack.com/api/"
TIMEOUT_SECONDS = 10  # each wait for bytes (slack_sdk's timeout)
# Each Web API or response_url call ends within this, whatever the server does: slack_sdk reads with urllib,
# whose timeout bounds each wait for bytes only, so a server dripping a byte a second would hold a delivery
# for ever. The call runs on the "slack" lane and is abandoned at this deadline (the lane's thread ends when
# the connection does). Long enough for slack_sdk's retries after a short Retry-After.
CALL_DEADLINE = 20.0
NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived"}
CHANNEL_INTERVAL = 1.0  # seconds between two messages (posted or updated) in one channel
INVITE_HINT = "I can't post in this channel: invite me with `/invite @svcbot` to get threaded progress and files."


def api_url(environ: Mapping[str, str] | None = None) -> str:
    url = (os.environ if environ is None else environ).get("SVCBOT_SLACK_API_URL") or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def retry_handlers() -> list[Any]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=1),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=1),
    ]


def make_web_client(token: str | None, base_url: str | None = None) -> WebClient:
    return WebClient(token=token, base_url=base_url or api_url(), timeout=TIMEOUT_SECONDS,
                     retry_handlers=retry_handlers())


@dataclass(frozen=True)
class Destination:
    """Where a command's answer goes."""

    channel: str
    user: str
    response_url: str | None = None
    thread_ts: str | None = None


def within(seconds: float, what: str, call: Callable[[], T]) -> T:
    """Run a Slack call on the slack lane and wait at most `seconds` for it (BackendUnavailable after), or
    less inside a command whose deadline is closer (a user-group lookup by the policy)."""
    seconds = deadlines.remaining(seconds)
    if seconds <= 0:
        raise BackendUnavailable(f"Slack {what}: no time left before the command's deadline")
    future = lanes.lane("slack").submit(contextvars.copy_context().run, call)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        future.cancel()
        raise BackendUnavailable(f"Slack {what}: no whole answer within {seconds:g}s") from None


class RateLimited(BackendUnavailable):
    """Slack answered 429 even after the retries; `retry_after` is what it asked for (seconds)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelPace:
    """One rate limit per channel: each message takes the channel's next slot, `interval` seconds apart; a
    Retry-After pushes the next slot back. Thread-safe; shared by everything that posts through the poster."""

    def __init__(self, interval: float = CHANNEL_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._next: dict[str, float] = {}  # the channel's next free slot for a post
        self._held: dict[str, float] = {}  # nothing goes to the channel before this (a Retry-After)
        self._lock = threading.Lock()

    def ready_in(self, channel: str) -> float:
        """Seconds until the channel's next slot is free (0 when it is)."""
        with self._lock:
            return max(0.0, self._next.get(channel, 0.0) - self.clock(), self._held.get(channel, 0.0) - self.clock())

    def held_for(self, channel: str) -> float:
        """Seconds the channel is still held by a Retry-After (0 when it is not)."""
        with self._lock:
            return max(0.0, self._held.get(channel, 0.0) - self.clock())

    def reserve(self, channel: str) -> float:
        """Take the channel's next slot; how long to wait before using it."""
        with self._lock:
            now = self.clock()
            at = max(now, self._next.get(channel, 0.0), self._held.get(channel, 0.0))
            self._next[channel] = at + self.interval
            if len(self._next) > 10_000:  # forget channels whose slots are long past
                self._next = {key: value for key, value in self._next.items() if value > now}
                self._held = {key: value for key, value in self._held.items() if value > now}
            return at - now

    def back_off(self, channel: str, seconds: float) -> None:
        """Slack said wait `seconds` (Retry-After): nothing more goes to the channel before then."""
        with self._lock:
            self._held[channel] = max(self._held.get(channel, 0.0), self.clock() + seconds)


class SlackPoster:
    def __init__(self, client: WebClient, usergroup_ttl: float = 300.0,
                 call_deadline: float = CALL_DEADLINE, interval: float = CHANNEL_INTERVAL) -> None:
        self.client = client
        self.call_deadline = call_deadline
        self.pace = ChannelPace(interval)
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._groups_lock = threading.Lock()
        self._usergroup_ttl = usergroup_ttl

    # --- answers --------------------------------------------------------------------------------------

    def deliver(self, message: SlackMessage, to: Destination) -> str | None:
        """Send a rendered reply; returns the message ts when it was posted with chat.postMessage."""
        ts: str | None = None
        if message.delivery.post or to.response_url is None:
            try:
                ts = self.post(to.channel, message, thread_ts=to.thread_ts)
            except _NotAMember:
                if to.response_url is None:
                    raise BackendUnavailable("cannot post in this channel: invite the bot first") from None
                self.respond(to.response_url, message)
                self._respond_text(to.response_url, INVITE_HINT)
                return None
            except BackendUnavailable as exc:
                # Slack refused the post even after retries: the answer still reaches the person who asked.
                if to.response_url is None:
                    raise
                log.warning("slack.post_failed_using_response_url", reason=exc.message)
                self.respond(to.response_url, message)
                return None
        else:
            self.respond(to.response_url, message)
        if message.attachment is not None:
            self.upload(to, message)
        return ts

    def respond(self, response_url: str, message: SlackMessage, replace_original: bool = False) -> None:
        webhook = WebhookClient(response_url, timeout=TIMEOUT_SECONDS, retry_handlers=retry_handlers())
        try:
            response = within(self.call_deadline, "response_url", lambda: webhook.send(
                text=message.text, blocks=message.blocks,
                response_type="in_channel" if message.public else "ephemeral",
                replace_original=replace_original,
            ))
        except (SlackClientError, OSError) as exc:
            raise BackendUnavailable(f"Slack response_url failed: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise BackendUnavailable(f"Slack response_url answered {response.status_code}")

    def _respond_text(self, response_url: str, text: str) -> None:
        webhook = WebhookClient(response_url, timeout=TIMEOUT_SECONDS, retry_handlers=retry_handlers())
        try:
            within(self.call_deadline, "response_url", lambda: webhook.send(text=text, response_type="ephemeral"))
        except (SlackClientError, OSError, BackendUnavailable):
            log.warning("slack.hint_failed")

    def post(self, channel: str, message: SlackMessage, thread_ts: str | None = None) -> str:
        self._wait_turn(channel)
        response = self._call("chat_postMessage", channel=channel, text=message.text, blocks=message.blocks,
                              thread_ts=thread_ts)
        return str(response["ts"])

    def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        held = self.pace.held_for(channel)
        if held > 0:
            time.sleep(held)
        self._call("chat_update", channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    def post_ephemeral(self, channel: str, user: str, message: SlackMessage) -> None:
        self._call("chat_postEphemeral", channel=channel, user=user, text=message.text, blocks=message.blocks)

    def post_text(self, channel: str, text: str, thread_ts: str | None = None) -> str:
        self._wait_turn(channel)
        response = self._call("chat_postMessage", channel=channel, text=text, thread_ts=thread_ts)
        return str(response["ts"])

    def _wait_turn(self, channel: str) -> None:
        delay = self.pace.reserve(channel)
        if delay > 0:
            time.sleep(delay)

    def upload(self, to: Destination, message: SlackMessage) -> None:
        attachment = message.attachment
        assert attachment is not None
        try:
            self._call("files_upload_v2", channel=to.channel, content=attachment.content,
                       filename=attachment.filename, title=attachment.title or attachment.filename,
                       thread_ts=to.thread_ts)
        except _NotAMember:
            if to.response_url:
                self._respond_text(to.response_url, INVITE_HINT)

    # --- channels (/svc watch posts only where the bot is a member) ------------------------------------

    def channel_member(self, channel: str) -> bool | None:
        """Whether the bot is a member of `channel` (conversations.info's is_member; a DM counts as one).
        False for a channel Slack does not show the bot (private, archived, unknown); None when Slack
        cannot say now."""
        try:
            response = self._call("conversations_info", channel=channel)
        except _NotAMember:
            return False
        except BackendUnavailable as exc:
            log.warning("slack.membership_unknown", channel=channel, reason=exc.message)
            return None
        info = response.get("channel") or {}
        if info.get("is_im"):
            return True
        if info.get("is_archived"):
            return False
        return bool(info.get("is_member"))

    # --- user groups (approvers may be Slack user groups) ---------------------------------------------

    def usergroup_members(self, group_id: str) -> frozenset[str]:
        """Members of a Slack user group, cached for a few minutes; empty when Slack cannot say."""
        now = time.monotonic()
        with self._groups_lock:
            cached = self._groups.get(group_id)
            if cached and now - cached[0] < self._usergroup_ttl:
                return cached[1]
        try:
            response = self._call("usergroups_users_list", usergroup=group_id)
        except (BackendUnavailable, _NotAMember):
            log.warning("slack.usergroup_unresolved", usergroup=group_id)
            return cached[1] if cached else frozenset()
        members = frozenset(str(user) for user in response.get("users", []))
        with self._groups_lock:
            self._groups[group_id] = (now, members)
        return members

    # --- plumbing -------------------------------------------------------------------------------------

    def _call(self, method: str, **kwargs: Any) -> Any:
        arguments = {key: value for key, value in kwargs.items() if value is not None}
        try:
            return within(self.call_deadline, method.replace("_", ".", 1),
                          lambda: getattr(self.client, method)(**arguments))
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            if error in NOT_A_MEMBER:
                raise _NotAMember(error) from exc
            if exc.response is not None and exc.response.status_code == 429:
                retry_after = _retry_after(exc.response.headers)
                channel = kwargs.get("channel")
                if isinstance(channel, str) and channel:
                    self.pace.back_off(channel, retry_after)
                raise RateLimited(f"Slack {method.replace('_', '.', 1)} rate-limited: retry after "
                                  f"{retry_after:g}s", retry_after) from exc
            raise BackendUnavailable(f"Slack {method.replace('_', '.', 1)} failed: {error or 'error'}") from exc
        except (SlackClientError, OSError) as exc:
            raise BackendUnavailable(f"Slack {method} failed: {type(exc).__name__}") from exc


def _retry_after(headers: Mapping[str, Any] | None) -> float:
    """Retry-After in seconds (1 when absent or unreadable)."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(str(raw)))
            except ValueError:
                break
    return 1.0


class _NotAMember(Exception):
    """The bot cannot post in that channel (not invited, archived, or no such channel)."""


NotAMember = _NotAMember  # what callers outside this module catch (bot/slack/incidents.py)
