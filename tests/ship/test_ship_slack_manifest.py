"""The Slack app manifests: /svc with a usage hint, interactivity, Socket Mode vs request URLs, and exactly
the bot scopes the Web API methods svcbot calls need (read from the code, and recorded by the sandbox
Slack while the real app answered commands)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ship_chart import ROOT
from ship_scopes import (
    METHOD_SCOPES,
    compare_scopes,
    manifest_bot_scopes,
    methods_in_source,
    scopes_for,
)

from bot.slack import serving as bot_app
from sandbox.slack import SlackSandbox

SOCKET = ROOT / "slack" / "manifest.yaml"
HTTP = ROOT / "slack" / "manifest-http.yaml"
SOURCE = sorted((ROOT / "bot").rglob("*.py"))


def manifest(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


class TestManifests:
    @pytest.mark.parametrize("path", [SOCKET, HTTP], ids=["socket", "http"])
    def test_svc_command_with_usage_hint_and_interactivity(self, path: Path) -> None:
        """Both manifests declare /svc with a usage hint naming the main verbs, and buttons (interactivity)."""
        loaded = manifest(path)
        command = loaded["features"]["slash_commands"][0]
        assert command["command"] == "/svc"
        for verb in ("status", "logs", "deploy", "help"):
            assert verb in command["usage_hint"]
        assert loaded["settings"]["interactivity"]["is_enabled"] is True
        assert loaded["features"]["bot_user"]["display_name"]

    def test_socket_mode_has_no_urls(self) -> None:
        """manifest.yaml: Socket Mode on, and no request URL anywhere (nothing to expose)."""
        loaded = manifest(SOCKET)
        assert loaded["settings"]["socket_mode_enabled"] is True
        assert "url" not in loaded["features"]["slash_commands"][0]
        assert "request_url" not in loaded["settings"]["interactivity"]

    def test_http_mode_points_both_urls_at_slack_events(self) -> None:
        """manifest-http.yaml: Socket Mode off, the command and interactivity URLs are the /slack/events
        placeholder the chart's Ingress serves."""
        loaded = manifest(HTTP)
        assert loaded["settings"]["socket_mode_enabled"] is False
        urls = {loaded["features"]["slash_commands"][0]["url"], loaded["settings"]["interactivity"]["request_url"]}
        assert urls == {"https://svcbot.example.com/slack/events"}

    def test_both_manifests_ask_the_same_scopes(self) -> None:
        """HTTP or Socket Mode, the bot needs the same scopes."""
        assert manifest_bot_scopes(SOCKET) == manifest_bot_scopes(HTTP)

    def test_every_scope_is_justified_in_a_comment(self) -> None:
        """Each scope line in manifest.yaml is explained by a comment naming the methods that need it."""
        text = SOCKET.read_text(encoding="utf-8")
        for scope in manifest_bot_scopes(SOCKET) - {"commands"}:
            methods = [m for m, scopes in METHOD_SCOPES.items() if scope in scopes]
            assert any(method in text for method in methods), scope

    def test_scopes_match_the_methods_in_the_code(self) -> None:
        """The manifest's scopes are exactly those the Web API methods named in bot/ need, plus commands."""
        methods = methods_in_source(SOURCE)
        assert methods, "no Web API method found in bot/"
        result = compare_scopes(methods, manifest_bot_scopes(SOCKET))
        assert result.exact, result.describe()


class TestScopeTable:
    def test_unknown_method_is_reported(self) -> None:
        """A method missing from the table is reported instead of silently needing no scope."""
        result = compare_scopes(["chat.postMessage", "reactions.add"], {"commands", "chat:write"})
        assert result.unknown_methods == {"reactions.add"}
        assert not result.exact

    def test_extra_and_missing_scopes(self) -> None:
        """A scope nothing needs and a scope a method needs but lacks are both named."""
        result = compare_scopes(["files.completeUploadExternal"], {"commands", "chat:write"})
        assert result.missing == {"files:write"}
        assert result.unused == {"chat:write"}
        assert "files:write" in result.describe()

    def test_recorded_non_api_calls_need_nothing(self) -> None:
        """response_url posts, upload-URL posts and the app-token connection need no bot scope."""
        needed, unknown = scopes_for(["response_url", "upload", "apps.connections.open", "auth.test"])
        assert needed == unknown == frozenset()

    def test_source_reader_finds_string_dispatch(self, tmp_path: Path) -> None:
        """Method names passed as strings (SlackPoster._call("chat_update")) and helpers are found."""
        module = tmp_path / "poster.py"
        module.write_text("def f(c):\n    c._call('chat_update')\n    c.files_upload_v2(content='x')\n"
                          "    c.api_call('usergroups.users.list')\n")
        assert methods_in_source([module]) == {"chat.update", "files.getUploadURLExternal",
                                               "files.completeUploadExternal", "usergroups.users.list"}


# --- the real app against the sandbox Slack ----------------------------------------------------------

@pytest.fixture(name="slack", scope="module")
def _slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture(name="scripted_catalog", scope="module")
def _scripted_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example catalog, with `status` open only to a Slack user group (so svcbot must look it up) and
    payment's profiles far apart (so the diff is long enough to arrive as a file)."""
    raw = yaml.safe_load((ROOT / "examples" / "catalog.yaml").read_text(encoding="utf-8"))
    raw["settings"]["command_deadline"] = "5s"
    raw["access"]["rules"] = [
        {"verbs": ["status"], "envs": ["*"], "who": ["sre-leads"]},
        {"verbs": ["diff"], "envs": ["*"], "who": ["*"]},
    ]
    tmp_path = tmp_path_factory.mktemp("scopes")
    profiles = tmp_path / "configs" / "payment"
    profiles.mkdir(parents=True)
    for env, scale in (("staging", 1), ("prod", 7)):
        body = {f"key{i:03d}": {"timeout": f"{i * scale}ms", "endpoint": f"https://{env}.example.com/{i}"}
                for i in range(250)}
        (profiles / f"application-{env}.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    raw["services"]["payment"]["config"] = {"dir": "configs/payment", "pattern": "application-{profile}.yaml"}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture(name="recorded_methods", scope="module")
def _recorded_methods(slack: SlackSandbox, scripted_catalog: Path) -> set[str]:
    slack.reset()
    environ = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret,
               "SVCBOT_SLACK_API_URL": slack.api_url}
    running = bot_app.start(scripted_catalog, port=0, health_port=0, environ=environ)
    try:
        assert running.events_server is not None
        url = f"http://127.0.0.1:{running.events_server.port}/slack/events"
        script = [("help", "U01AAA"), ("status payment", "U02CCC"), ("diff payment staging prod", "U01AAA")]
        for text, user in script:
            body, headers = slack.slash_command_request(text, user_id=user)
            status, _ = slack.post(url, body, headers)
            assert status == 200, text
        slack.wait_for("usergroups.users.list", timeout=10)
        slack.wait_for("files.completeUploadExternal", timeout=10)
    finally:
        running.stop(grace=2)
    return {call.method for call in slack.calls()}


class TestRecordedCalls:
    def test_recorded_methods_are_covered_by_the_manifest(self, recorded_methods: set[str]) -> None:
        """Every Web API method the app called while answering the script needs only scopes the manifest has."""
        needed, unknown = scopes_for(recorded_methods)
        assert unknown == frozenset(), f"add these to METHOD_SCOPES: {sorted(unknown)}"
        assert needed <= manifest_bot_scopes(SOCKET)

    def test_script_exercised_the_optional_scopes(self, recorded_methods: set[str]) -> None:
        """The script reached the user-group lookup and the file upload, so the check above covered them."""
        needed, _ = scopes_for(recorded_methods)
        assert {"usergroups:read", "files:write"} <= needed
