"""Do the Slack app manifests ask for exactly the bot scopes svcbot's Web API calls need?

Which method needs which scope comes from Slack's method reference (api.slack.com/methods/<method>, "Bot
tokens" row). A method svcbot starts to call that is not in METHOD_SCOPES fails the tests until it is added
here with its scopes, so a new scope is always a decision, never an accident.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from slack_sdk import WebClient

COMMANDS_SCOPE = "commands"  # the slash command itself: no Web API method, always needed
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "api.test": frozenset(),
    "auth.test": frozenset(),  # Bolt checks the bot token at start-up
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.delete": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "usergroups.users.list": frozenset({"usergroups:read"}),
    # /svc watch checks membership; channels:read for public channels, groups:read for private ones.
    "conversations.info": frozenset({"channels:read", "groups:read"}),
    "usergroups.list": frozenset({"usergroups:read"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
}
# Called with the app-level token (connections:write, granted when the token is made), not the bot's.
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
# What the sandbox records besides Web API methods: posts to response_urls and to upload URLs need no scope.
NOT_WEB_API = frozenset({"response_url", "upload"})
# slack_sdk helpers that call several methods.
PYTHON_HELPERS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}


def scopes_for(methods: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(bot scopes the methods need, methods missing from METHOD_SCOPES)."""
    needed: set[str] = set()
    unknown: set[str] = set()
    for method in methods:
        if method in NOT_WEB_API or method in APP_TOKEN_METHODS:
            continue
        if method not in METHOD_SCOPES:
            unknown.add(method)
            continue
        needed |= METHOD_SCOPES[method]
    return frozenset(needed), frozenset(unknown)


@dataclass(frozen=True)
class ScopeComparison:
    missing: frozenset[str]  # needed by a method svcbot calls, not in the manifest
    unused: frozenset[str]  # in the manifest, needed by nothing svcbot calls
    unknown_methods: frozenset[str]  # called, but not in METHOD_SCOPES

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unused or self.unknown_methods)

    def describe(self) -> str:
        parts = [f"{label}: {', '.join(sorted(items))}" for label, items in (
            ("scopes missing", self.missing), ("scopes not needed", self.unused),
            ("methods without a known scope (add them to METHOD_SCOPES)", self.unknown_methods)) if items]
        return "; ".join(parts) or "exact"


def compare_scopes(methods: Iterable[str], granted: Iterable[str]) -> ScopeComparison:
    needed, unknown = scopes_for(methods)
    needed = needed | {COMMANDS_SCOPE}
    granted_set = frozenset(granted)
    return ScopeComparison(missing=needed - granted_set, unused=granted_set - needed, unknown_methods=unknown)


def manifest_bot_scopes(path: Path) -> frozenset[str]:
    manifest: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


def web_client_method_names() -> frozenset[str]:
    """WebClient's per-method functions (chat_postMessage, files_upload_v2...)."""
    return frozenset(name for name in dir(WebClient)
                     if not name.startswith("_") and "_" in name and callable(getattr(WebClient, name))
                     and name not in {"api_call"})


def api_methods_for(python_name: str) -> tuple[str, ...]:
    if python_name in PYTHON_HELPERS:
        return PYTHON_HELPERS[python_name]
    return (python_name.replace("_", "."),)


def methods_in_source(paths: Iterable[Path]) -> frozenset[str]:
    """Web API methods named in the code: WebClient methods called as attributes or named as strings
    (bot/slack/webapi.py dispatches through `_call("chat_postMessage", ...)`), and api_call("x.y") literals."""
    names = web_client_method_names()
    found: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in names:
                found.update(api_methods_for(node.attr))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.update(api_methods_for(node.value))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "api_call"
                  and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return frozenset(found)
