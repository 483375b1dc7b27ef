"""The Web API methods the Slack sandbox answers (``SUPPORTED_METHODS``), in Slack's shapes: api.test,
auth.test, chat.postMessage/update/delete/postEphemeral, conversations.info, usergroups.users.list, the
files.* upload flow (files.getUploadURLExternal, the upload URL it hands out, files.completeUploadExternal,
and downloads of the stored bytes) and apps.connections.open.

Each method takes the parsed arguments and returns the ``ok`` answer or raises ApiError, which the HTTP
front turns into ``{"ok": false, "error": ...}``. Tokens are checked here: ``bot_token`` for everything
except apps.connections.open, which wants ``app_token``.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable, Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from sandbox.slack import blocks as blockkit
from sandbox.slack.socket_mode import SocketModeEndpoint
from sandbox.slack.workspace import ApiError, UploadedFile, Workspace

NO_AUTH_METHODS = ("api.test",)
APP_TOKEN_METHODS = ("apps.connections.open",)


class WebApi:
    """The methods, bound to one workspace. ``base_url`` gives the HTTP front's address (upload and
    download URLs point there); apps.connections.open hands out ``socket_mode`` URLs."""

    def __init__(self, workspace: Workspace, socket_mode: SocketModeEndpoint, base_url: Callable[[], str]) -> None:
        self.ws = workspace
        self.socket_mode = socket_mode
        self._base_url = base_url

    def answer(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        """The JSON answer to one call (HTTP 200 either way, as Slack does)."""
        handler = _METHODS.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        try:
            if method not in NO_AUTH_METHODS:
                self._authorize(method, token)
            return handler(self, args)
        except ApiError as e:
            return {"ok": False, "error": e.error, **e.extra}

    def _authorize(self, method: str, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        if token not in (self.ws.bot_token, self.ws.app_token):
            raise ApiError("invalid_auth")
        wants_app = method in APP_TOKEN_METHODS
        if (token == self.ws.app_token) != wants_app:
            raise ApiError("not_allowed_token_type")

    @staticmethod
    def _message_content(args: Mapping[str, Any], *, require: bool) -> dict[str, Any]:
        """text/blocks/attachments of a message, checked the way Slack checks them."""
        content: dict[str, Any] = {}
        warnings: list[str] = []
        if "blocks" in args and args["blocks"] not in (None, ""):
            problems = blockkit.validate_blocks(args["blocks"])
            if problems:
                raise ApiError(
                    "invalid_blocks",
                    errors=problems,
                    response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
                )
            content["blocks"] = args["blocks"]
        if "attachments" in args and args["attachments"] not in (None, ""):
            if not isinstance(args["attachments"], list):
                raise ApiError("invalid_attachments")
            content["attachments"] = args["attachments"]
        text = args.get("text")
        if text is not None:
            text = str(text)
            if len(text) > blockkit.MAX_MESSAGE_TEXT:
                text = text[: blockkit.MAX_MESSAGE_TEXT]
                warnings.append("message_truncated")
            content["text"] = text
        if require and not content.get("text") and not content.get("blocks") and not content.get("attachments"):
            raise ApiError("no_text")
        if warnings:
            content["_warnings"] = warnings
        return content

    # -- api.*, auth.*, apps.* ---------------------------------------------------------------------

    def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        if "error" in args:
            raise ApiError(str(args["error"]), args=args)
        return {"ok": True, "args": args}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.ws.team_domain}.slack.com/",
            "team": "Sandbox",
            "user": "svcbot",
            "team_id": self.ws.team_id,
            "user_id": self.ws.bot_user_id,
            "bot_id": self.ws.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_mode.issue_url()}

    # -- chat.* ------------------------------------------------------------------------------------

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.ws.resolve_channel(args.get("channel"))
        content = self._message_content(args, require=True)
        warnings = content.pop("_warnings", None)
        if args.get("metadata"):
            content["metadata"] = args["metadata"]
        if args.get("thread_ts"):
            content["thread_ts"] = str(args["thread_ts"])
        ts = self.ws.next_ts()
        msg = self.ws.bot_message(ts, content)
        self.ws.store_message(channel, msg)
        answer: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": msg}
        if warnings:
            answer["warning"] = ",".join(warnings)
            answer["response_metadata"] = {"warnings": warnings}
        return answer

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.ws.resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        content = self._message_content(args, require=False)
        content.pop("_warnings", None)
        with self.ws.cond:
            msg = self.ws.stored(channel, ts)
            if msg is None:
                raise ApiError("message_not_found")
            if msg.get("bot_id") != self.ws.bot_id:
                raise ApiError("cant_update_message")
            for key in ("text", "blocks", "attachments"):
                if key in content:
                    msg[key] = content[key]
            if isinstance(msg.get("blocks"), list) and not msg["blocks"]:
                del msg["blocks"]
            msg["edited"] = {"user": self.ws.bot_user_id, "ts": self.ws.next_ts()}
            self.ws.cond.notify_all()
            public = {k: v for k, v in msg.items() if k != "channel"}
        return {"ok": True, "channel": channel, "ts": ts, "text": public.get("text", ""), "message": public}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.ws.resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        if not self.ws.delete_message(channel, ts):
            raise ApiError("message_not_found")
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.ws.resolve_channel(args.get("channel"))
        user = args.get("user")
        if not user:
            raise ApiError("user_not_found")
        content = self._message_content(args, require=True)
        content.pop("_warnings", None)
        ts = self.ws.next_ts()
        self.ws.add_ephemeral(
            {
                "channel": channel,
                "user": str(user),
                "ts": ts,
                "thread_ts": args.get("thread_ts"),
                "via": "chat.postEphemeral",
                **content,
            }
        )
        return {"ok": True, "message_ts": ts}

    # -- conversations.* ---------------------------------------------------------------------------

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """Slack's conversations.info: the channel object with ``is_member`` for the calling bot. Public
        channels (C...) the bot is not in are still shown (is_member false); a private channel (G...) the bot is
        not in, or an unknown id, answers channel_not_found; a DM (D..., or a user id) is an IM."""
        channel = args.get("channel")
        if not isinstance(channel, str) or not channel:
            raise ApiError("channel_not_found")
        members = self.ws.channels
        if channel in self.ws.missing_channels or channel.startswith(self.ws.not_found_prefixes):
            raise ApiError("channel_not_found")
        if channel[0] in "DUW":
            dm = "D" + channel[1:] if channel[0] != "D" else channel
            return {"ok": True, "channel": {"id": dm, "created": 0, "is_im": True, "is_channel": False,
                                            "is_group": False, "is_private": True, "is_archived": False,
                                            "is_member": True, "user": channel}}
        if channel not in members and channel[0] != "C":
            raise ApiError("channel_not_found")
        name = members.get(channel, self.ws.channel_name(channel))
        return {"ok": True, "channel": {
            "id": channel, "name": name, "name_normalized": name, "created": 0, "creator": "",
            "is_channel": True, "is_group": False, "is_im": False, "is_mpim": False, "is_private": False,
            "is_archived": False, "is_general": False, "is_shared": False, "is_ext_shared": False,
            "is_org_shared": False, "is_member": channel in members,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }}

    # -- usergroups.* ------------------------------------------------------------------------------

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "users": self.ws.usergroup_members(args.get("usergroup"))}

    # -- files.* and the URLs they hand out --------------------------------------------------------

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except (TypeError, ValueError):
            raise ApiError("invalid_arguments") from None
        if not filename or length < 0:
            raise ApiError("invalid_arguments")
        f = self.ws.announce_file(str(filename), length, args.get("alt_txt"), args.get("snippet_type"))
        return {"ok": True, "upload_url": f"{self._base_url()}/upload/v1/{f.id}", "file_id": f.id}

    def upload(self, file_id: str, raw: bytes, content_type: str) -> tuple[int, str]:
        """A POST to an upload URL: the raw bytes, or the first file part of a multipart body."""
        content = raw
        if content_type.lower().startswith("multipart/form-data"):
            parts = multipart(content_type, raw)
            files = [p for p in parts if p[2] is not None]
            chosen = files[0] if files else (parts[0] if parts else None)
            content = chosen[1] if chosen else b""
        with self.ws.cond:
            f = self.ws.file(file_id)
            if f is None:
                return 404, "file_not_found"
            f.content = content
            self.ws.cond.notify_all()
        return 200, f"OK - {len(content)}"

    def download(self, path: str) -> bytes | None:
        """The bytes of ``/files/<id>/<name>``, or None for an unknown or not yet uploaded file."""
        parts = path.split("/")
        f = self.ws.file(parts[2]) if len(parts) > 2 else None
        return f.content if f is not None else None

    def _file_object(self, f: UploadedFile, ts: str | None) -> dict[str, Any]:
        base_url = self._base_url()
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
            "user": self.ws.bot_user_id,
            "user_team": self.ws.team_id,
            "mode": "snippet" if f.snippet_type else "hosted",
            "is_external": False,
            "size": len(f.content or b""),
            "url_private": f"{base_url}/files/{f.id}/{f.filename}",
            "url_private_download": f"{base_url}/files/{f.id}/{f.filename}",
            "permalink": f"https://{self.ws.team_domain}.slack.com/files/{self.ws.bot_user_id}/{f.id}/{f.filename}",
            "channels": list(f.channels),
            "groups": [],
            "ims": [],
            "shares": shares,
        }

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise ApiError("invalid_arguments")
        targets: list[str] = []
        if args.get("channel_id"):
            targets.append(self.ws.resolve_channel(args["channel_id"]))
        if args.get("channels"):
            targets.extend(self.ws.resolve_channel(c.strip()) for c in str(args["channels"]).split(",") if c.strip())
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts and not targets:
            raise ApiError("invalid_arguments")
        with self.ws.cond:
            chosen: list[UploadedFile] = []
            for item in items:
                f = self.ws.file(str(item.get("id"))) if isinstance(item, dict) else None
                if f is None or not f.uploaded:
                    raise ApiError("file_not_found")
                chosen.append(f)
            for f, item in zip(chosen, items, strict=True):
                f.title = item.get("title") or f.filename
                f.completed = True
                f.channels = list(targets)
                f.thread_ts = thread_ts
                f.initial_comment = args.get("initial_comment")
        ts = self.ws.next_ts() if targets else None
        objects = [self._file_object(f, ts) for f in chosen]
        if ts is not None:
            for channel in targets:
                content: dict[str, Any] = {"text": args.get("initial_comment") or "", "files": objects}
                if thread_ts:
                    content["thread_ts"] = thread_ts
                self.ws.store_message(channel, {**self.ws.bot_message(ts, content), "upload": True})
        return {"ok": True, "files": objects}


_METHODS: dict[str, Callable[[WebApi, dict[str, Any]], dict[str, Any]]] = {
    "api.test": WebApi._api_test,
    "auth.test": WebApi._auth_test,
    "chat.postMessage": WebApi._chat_post_message,
    "chat.update": WebApi._chat_update,
    "chat.delete": WebApi._chat_delete,
    "chat.postEphemeral": WebApi._chat_post_ephemeral,
    "usergroups.users.list": WebApi._usergroups_users_list,
    "conversations.info": WebApi._conversations_info,
    "files.getUploadURLExternal": WebApi._files_get_upload_url_external,
    "files.completeUploadExternal": WebApi._files_complete_upload_external,
    "apps.connections.open": WebApi._apps_connections_open,
}
"""The Web API methods the sandbox answers."""

SUPPORTED_METHODS = tuple(_METHODS)


def multipart(content_type: str, raw: bytes) -> list[tuple[str | None, bytes, str | None]]:
    """Parts of a multipart/form-data body as (field name, bytes, filename)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    out: list[tuple[str | None, bytes, str | None]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        out.append((part.get_param("name", header="content-disposition"), data, part.get_filename()))  # type: ignore[arg-type]
    return out
