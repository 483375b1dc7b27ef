"""The HTTP front of the Slack sandbox: one loopback port (sandbox.httpserver) serving ``/api/<method>``
(web_api.py), ``/response/<id>`` (response_url.py), ``/upload/v1/<file id>`` and ``/files/<id>/<name>``
(the files.* flow) and ``/_sandbox/<action>`` (control.py).

It reads arguments the way Slack does (query string plus a form, JSON or multipart body; the token from
the body or a Bearer header), applies the faults tests set, records every call in the workspace and
writes the answer. It speaks HTTP/1.0, one request per connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.httpserver import LOOPBACK, Handler, HttpServer
from sandbox.slack.response_url import ResponseUrls
from sandbox.slack.web_api import WebApi, multipart
from sandbox.slack.workspace import ApiError, Call, Workspace

logger = logging.getLogger("sandbox.slack")

JSON_FIELDS = ("blocks", "attachments", "files", "metadata")
FAULT_MODES = ("ratelimited", "error500", "error", "delay")

Control = Callable[[str, str, bytes], tuple[int, Any]]
"""Answers ``/_sandbox/<action>``: (HTTP method, action, body) -> (status, JSON answer)."""


@dataclass
class Fault:
    method: str | None
    mode: str
    retry_after: int
    times: int | None
    error: str
    delay: float


class Faults:
    """Faults set for coming calls; see SlackSandbox.set_fault for the modes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}, not {fault.mode!r}")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str) -> Fault | None:
        """The first fault that applies to a call of ``method`` (using up one of its ``times``)."""
        with self._lock:
            for fault in self._faults:
                if fault.method is not None and fault.method != method:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return dataclasses.replace(fault)
        return None


class SlackHttpFront:
    def __init__(self, workspace: Workspace, web_api: WebApi, response_urls: ResponseUrls, control: Control, *,
                 host: str = LOOPBACK, port: int = 0) -> None:
        self.ws = workspace
        self.web_api = web_api
        self.response_urls = response_urls
        self.control = control
        self.faults = Faults()
        self.http = HttpServer(type("_BoundHandler", (_Handler,), {"front": self}), name="slack-sandbox-http",
                               host=host, port=port)

    @property
    def base_url(self) -> str:
        return self.http.url

    def handle(self, h: Handler, http_method: str) -> None:
        parts = urlsplit(h.path)
        raw = h.read_body()
        headers = {k: v for k, v in h.headers.items() if k.lower() != "authorization"}
        path = parts.path
        if path.startswith("/api/"):
            method = path[len("/api/") :]
        elif path.startswith("/response/"):
            method = "response_url"
        elif path.startswith("/upload/"):
            method = "upload"
        elif path.startswith("/_sandbox/"):
            write(h, *self.control(http_method, path[len("/_sandbox/") :], raw))
            return
        elif path.startswith("/files/") and http_method == "GET":
            content = self.web_api.download(path)
            if content is None:
                write(h, 404, "file_not_found")
            else:
                h.send_body(200, content, "application/octet-stream")
            return
        else:
            write(h, 404, {"ok": False, "error": "not_found"})
            return

        status: int
        answer: Any
        extra_headers: dict[str, str] = {}
        args: dict[str, Any] = {}
        try:
            if method == "upload":  # raw bytes (or multipart), never form fields
                args, token = {"length": len(raw)}, None
            else:
                args, token = parse_args(parts.query, h.headers.get("Content-Type", ""), raw, h.headers)
        except ApiError as e:
            token = None
            status, answer = 200, {"ok": False, "error": e.error}
        else:
            fault = self.faults.take(method)
            if fault is not None and fault.mode == "delay":
                time.sleep(fault.delay)
                fault = None
            if fault is None:
                status, answer = self._answer(method, args, token, raw, h.headers.get("Content-Type", ""), path)
            elif fault.mode == "ratelimited":
                status, answer = 429, {"ok": False, "error": "ratelimited"}
                extra_headers["Retry-After"] = str(fault.retry_after)
            elif fault.mode == "error500":
                status, answer = 500, {"ok": False, "error": "internal_error"}
            else:
                status, answer = 200, {"ok": False, "error": fault.error}
        self.ws.record(
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
        write(h, status, answer, extra_headers)

    def _answer(self, method: str, args: dict[str, Any], token: str | None, raw: bytes, content_type: str,  # noqa: PLR0917
                path: str) -> tuple[int, Any]:
        target = path.rstrip("/").rsplit("/", 1)[-1]
        if method == "response_url":
            return self.response_urls.post(target, args)
        if method == "upload":
            return self.web_api.upload(target, raw, content_type)
        return 200, self.web_api.answer(method, args, token)


class _Handler(Handler):
    front: SlackHttpFront
    server_version = "SlackSandbox/1.0"
    request_log = logger
    log_prefix = "slack sandbox http: "

    def do_GET(self) -> None:
        self.front.handle(self, "GET")

    def do_POST(self) -> None:
        self.front.handle(self, "POST")


def write(h: Handler, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    """Answer with JSON (a dict or list) or plain text."""
    if isinstance(body, dict | list):
        data = json.dumps(body).encode("utf-8")
        ctype = "application/json; charset=utf-8"
    else:
        data = str(body).encode("utf-8")
        ctype = "text/plain; charset=utf-8"
    try:
        h.send_body(status, data, ctype, (headers or {}).items())
    except OSError:
        return  # the client went away; nothing to tell it


def parse_args(query: str, content_type: str, raw: bytes, headers: Any) -> tuple[dict[str, Any], str | None]:
    """Merge query string and body (form, JSON or multipart) into one dict; pull the token out."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if raw:
        if ctype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError("invalid_json") from None
            if not isinstance(body, dict):
                raise ApiError("invalid_json")
            args.update(body)
        elif ctype == "multipart/form-data":
            for name, data, filename in multipart(content_type, raw):
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
                raise ApiError("invalid_blocks_format" if key == "blocks" else "invalid_arguments") from None
    token = args.pop("token", None)
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[len("bearer ") :].strip()
    return args, token
