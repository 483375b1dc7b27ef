"""The response_url endpoint of the Slack sandbox: URLs minted for each slash command and button click,
and what a post to one does, as Slack does it: ephemeral by default, ``in_channel`` posts a message,
``replace_original`` / ``delete_original`` act on the clicked message, and a URL takes at most
``limit`` posts (then ``used_url``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack import blocks as blockkit
from sandbox.slack.workspace import Workspace


@dataclass
class _Context:
    """Where a response_url's posts go: the command's channel and user, the clicked message."""

    channel_id: str | None
    user_id: str | None
    message_ts: str | None
    uses: int = 0


class ResponseUrls:
    def __init__(self, workspace: Workspace, base_url: Callable[[], str], limit: int | None = 5) -> None:
        self.ws = workspace
        self.limit = limit
        self._base_url = base_url
        self._contexts: dict[str, _Context] = {}

    def mint(
        self,
        id: str | None = None,
        *,
        channel_id: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        rid = id or uuid.uuid4().hex[:16]
        with self.ws.cond:
            self._contexts[rid] = _Context(channel_id=channel_id, user_id=user_id, message_ts=message_ts)
        return f"{self._base_url()}/response/{rid}"

    def forget(self) -> None:
        with self.ws.cond:
            self._contexts.clear()

    def post(self, rid: str, args: dict[str, Any]) -> tuple[int, str]:
        """A post to /response/<rid>: (HTTP status, text answered)."""
        ws = self.ws
        with ws.cond:
            # an id this sandbox did not mint is accepted, with no channel or message to act on
            ctx = self._contexts.setdefault(rid, _Context(None, None, None))
            ctx.uses += 1
            if self.limit is not None and ctx.uses > self.limit:
                return 404, "used_url"
        if args.get("blocks") not in (None, "") and blockkit.validate_blocks(args["blocks"]):
            return 400, "invalid_blocks"
        if args.get("delete_original") in (True, "true"):
            if ctx.channel_id and ctx.message_ts:
                ws.delete_message(ctx.channel_id, ctx.message_ts)
            return 200, "ok"
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return 400, "no_text"
        content = {k: args[k] for k in ("text", "blocks", "attachments") if args.get(k) is not None}
        if args.get("replace_original") in (True, "true") and ctx.channel_id and ctx.message_ts:
            with ws.cond:
                msg = ws.stored(ctx.channel_id, ctx.message_ts)
                if msg is not None:
                    msg.pop("blocks", None)
                    msg.pop("attachments", None)
                    msg.update(content)
                    msg["edited"] = {"user": ws.bot_user_id, "ts": ws.next_ts()}
                    ws.cond.notify_all()
            return 200, "ok"
        if args.get("response_type") == "in_channel" and ctx.channel_id:
            if args.get("thread_ts"):
                content["thread_ts"] = str(args["thread_ts"])
            ws.store_message(ctx.channel_id, {**ws.bot_message(ws.next_ts(), content), "response_url": rid})
            return 200, "ok"
        ws.add_ephemeral(
            {
                "channel": ctx.channel_id,
                "user": ctx.user_id,
                "ts": ws.next_ts(),
                "thread_ts": args.get("thread_ts"),
                "via": "response_url",
                "response_url": rid,
                **content,
            }
        )
        return 200, "ok"
