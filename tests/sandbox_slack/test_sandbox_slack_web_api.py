"""The sandbox's Web API, driven by slack_sdk's real WebClient."""

from __future__ import annotations

import threading

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.slack import SlackSandbox

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*payment* is healthy"}}


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


class TestAuth:
    def test_auth_test_answers_the_bot_identity(self, slack: SlackSandbox, web: WebClient) -> None:
        """auth.test with the bot token answers ok with the team, bot user and bot id."""
        resp = web.auth_test()
        assert (resp["ok"], resp["team_id"], resp["user_id"], resp["bot_id"]) == (
            True,
            slack.team_id,
            slack.bot_user_id,
            slack.bot_id,
        )

    def test_wrong_token_is_invalid_auth(self, slack: SlackSandbox) -> None:
        """A token the sandbox does not know answers invalid_auth."""
        with pytest.raises(SlackApiError) as excinfo:
            WebClient(token="xoxb-wrong", base_url=slack.api_url).chat_postMessage(channel="C0SANDBOX", text="x")
        assert api_error(excinfo) == "invalid_auth"

    def test_missing_token_is_not_authed(self, slack: SlackSandbox) -> None:
        """A call without any token answers not_authed."""
        with pytest.raises(SlackApiError) as excinfo:
            WebClient(base_url=slack.api_url).auth_test()
        assert api_error(excinfo) == "not_authed"

    def test_app_token_on_a_bot_method_is_refused(self, slack: SlackSandbox) -> None:
        """The app-level token is the wrong kind for chat.postMessage."""
        with pytest.raises(SlackApiError) as excinfo:
            WebClient(token=slack.app_token, base_url=slack.api_url).chat_postMessage(channel="C0SANDBOX", text="x")
        assert api_error(excinfo) == "not_allowed_token_type"

    def test_calls_are_recorded_without_the_token(self, slack: SlackSandbox, web: WebClient) -> None:
        """A recorded call has its args and headers but neither the token nor the Authorization header."""
        web.chat_postMessage(channel="C0SANDBOX", text="hi")
        (call,) = slack.calls("chat.postMessage")
        assert call.args == {"channel": "C0SANDBOX", "text": "hi"}
        assert "token" not in call.args
        assert all(k.lower() != "authorization" for k in call.headers)
        assert slack.bot_token not in repr(call.headers)
        assert call.ok
        assert call.status == 200

    def test_unknown_method_answers_unknown_method(self, web: WebClient) -> None:
        """A method the sandbox does not implement answers unknown_method rather than pretending."""
        with pytest.raises(SlackApiError) as excinfo:
            web.api_call("conversations.kick", params={"channel": "C0SANDBOX"})
        assert api_error(excinfo) == "unknown_method"


class TestChat:
    def test_post_message_returns_channel_ts_and_message(self, slack: SlackSandbox, web: WebClient) -> None:
        """chat.postMessage answers the channel, a Slack-style ts and the stored message with its blocks."""
        resp = web.chat_postMessage(channel="C0SANDBOX", text="payment ok", blocks=[SECTION])
        assert resp["channel"] == "C0SANDBOX"
        assert resp["ts"] == "1700000000.000100"
        assert resp["message"]["blocks"] == [SECTION]
        assert resp["message"]["bot_id"] == slack.bot_id
        assert slack.messages("C0SANDBOX")[0]["text"] == "payment ok"

    def test_ts_increases_monotonically(self, web: WebClient) -> None:
        """Successive posts get strictly increasing timestamps of the same shape."""
        stamps = [web.chat_postMessage(channel="C0SANDBOX", text=str(i))["ts"] for i in range(3)]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == 3
        assert all(len(ts) == len("1700000000.000100") for ts in stamps)

    def test_json_body_is_accepted(self, slack: SlackSandbox, web: WebClient) -> None:
        """A JSON body (as api_call(json=...) sends it) is parsed like a form body."""
        web.api_call("chat.postMessage", json={"channel": "C0SANDBOX", "text": "json", "blocks": [SECTION]})
        (call,) = slack.calls("chat.postMessage")
        assert call.args["blocks"] == [SECTION]
        assert call.headers["Content-Type"].startswith("application/json")

    def test_thread_reply_is_stored_in_the_thread(self, slack: SlackSandbox, web: WebClient) -> None:
        """A post with thread_ts is a reply in that thread."""
        parent = web.chat_postMessage(channel="C0SANDBOX", text="deploy requested")["ts"]
        web.chat_postMessage(channel="C0SANDBOX", text="step 1 ok", thread_ts=parent)
        assert [m["text"] for m in slack.messages("C0SANDBOX", thread_ts=parent)] == ["step 1 ok"]

    def test_update_replaces_text_and_keeps_blocks(self, slack: SlackSandbox, web: WebClient) -> None:
        """chat.update changes the text and keeps blocks that were not resent, like Slack."""
        ts = web.chat_postMessage(channel="C0SANDBOX", text="pending", blocks=[SECTION])["ts"]
        resp = web.chat_update(channel="C0SANDBOX", ts=ts, text="approved")
        assert (resp["ts"], resp["text"]) == (ts, "approved")
        stored = slack.message("C0SANDBOX", ts)
        assert stored is not None
        assert stored["text"] == "approved"
        assert stored["blocks"] == [SECTION]
        assert "edited" in stored

    def test_update_of_unknown_message_is_message_not_found(self, web: WebClient) -> None:
        """chat.update on a ts that was never posted answers message_not_found."""
        with pytest.raises(SlackApiError) as excinfo:
            web.chat_update(channel="C0SANDBOX", ts="1600000000.000100", text="x")
        assert api_error(excinfo) == "message_not_found"

    def test_post_ephemeral_returns_message_ts(self, slack: SlackSandbox, web: WebClient) -> None:
        """chat.postEphemeral answers message_ts and the message is recorded for that user only."""
        resp = web.chat_postEphemeral(channel="C0SANDBOX", user="U01AAA", text="you may not deploy")
        assert resp["message_ts"]
        (eph,) = slack.ephemerals("C0SANDBOX")
        assert (eph["user"], eph["text"]) == ("U01AAA", "you may not deploy")
        assert slack.messages() == []

    def test_not_in_channel(self, slack: SlackSandbox, web: WebClient) -> None:
        """Posting to a channel the bot is not a member of answers not_in_channel until it joins."""
        with pytest.raises(SlackApiError) as excinfo:
            web.chat_postMessage(channel="C0ELSEWHERE", text="x")
        assert api_error(excinfo) == "not_in_channel"
        slack.join("C0ELSEWHERE")
        assert web.chat_postMessage(channel="C0ELSEWHERE", text="x")["ok"]

    def test_channel_not_found(self, slack: SlackSandbox, web: WebClient) -> None:
        """Ids with a not-found prefix, or listed as missing, answer channel_not_found."""
        slack.missing_channels.add("C0GONE")
        for channel in ("CNOTFOUND1", "C0GONE"):
            with pytest.raises(SlackApiError) as excinfo:
                web.chat_postEphemeral(channel=channel, user="U01AAA", text="x")
            assert api_error(excinfo) == "channel_not_found"

    def test_user_id_posts_a_direct_message(self, web: WebClient) -> None:
        """Posting to a user id delivers a DM, answered with a D... channel."""
        assert web.chat_postMessage(channel="U01AAA", text="your deploy finished")["channel"] == "D01AAA"

    def test_too_many_blocks_is_invalid_blocks(self, slack: SlackSandbox, web: WebClient) -> None:
        """51 blocks answer invalid_blocks with a JSON-pointer detail, and nothing is posted."""
        with pytest.raises(SlackApiError) as excinfo:
            web.chat_postMessage(channel="C0SANDBOX", text="x", blocks=[{"type": "divider"}] * 51)
        assert api_error(excinfo) == "invalid_blocks"
        assert "[json-pointer:/blocks]" in excinfo.value.response["errors"][0]
        assert slack.messages() == []

    def test_long_section_text_is_invalid_blocks(self, web: WebClient) -> None:
        """A section text over 3000 characters is rejected with its JSON pointer."""
        block = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
        with pytest.raises(SlackApiError) as excinfo:
            web.chat_postMessage(channel="C0SANDBOX", text="x", blocks=[block])
        assert excinfo.value.response["errors"] == [
            "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
        ]

    def test_message_without_content_is_no_text(self, web: WebClient) -> None:
        """A post with neither text nor blocks answers no_text."""
        with pytest.raises(SlackApiError) as excinfo:
            web.api_call("chat.postMessage", params={"channel": "C0SANDBOX"})
        assert api_error(excinfo) == "no_text"


class TestUsergroupsAndFiles:
    def test_usergroups_users_list(self, slack: SlackSandbox, web: WebClient) -> None:
        """usergroups.users.list answers the configured members, and no_such_subteam for others."""
        slack.set_usergroup("S0ONCALL", ["U01AAA", "U01BBB"])
        assert web.usergroups_users_list(usergroup="S0ONCALL")["users"] == ["U01AAA", "U01BBB"]
        with pytest.raises(SlackApiError) as excinfo:
            web.usergroups_users_list(usergroup="S0NOPE")
        assert api_error(excinfo) == "no_such_subteam"

    def test_files_upload_v2_into_a_thread(self, slack: SlackSandbox, web: WebClient) -> None:
        """files_upload_v2 goes through getUploadURLExternal, the upload URL and completeUploadExternal."""
        parent = web.chat_postMessage(channel="C0SANDBOX", text="logs")["ts"]
        content = "line\n" * 2000
        resp = web.files_upload_v2(
            channel="C0SANDBOX", thread_ts=parent, content=content, filename="payment.log", title="payment logs"
        )
        assert [c.method for c in slack.calls()][-3:] == [
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal",
        ]
        (f,) = slack.uploaded_files()
        assert (f.filename, f.title, f.text, f.channels, f.thread_ts) == (
            "payment.log",
            "payment logs",
            content,
            ["C0SANDBOX"],
            parent,
        )
        assert resp["file"]["id"] == f.id
        assert resp["file"]["shares"]["public"]["C0SANDBOX"][0]["thread_ts"] == parent
        (share,) = slack.messages("C0SANDBOX", thread_ts=parent)
        assert share["files"][0]["id"] == f.id

    def test_upload_to_a_channel_the_bot_is_not_in(self, slack: SlackSandbox, web: WebClient) -> None:
        """completeUploadExternal checks channel membership like chat.postMessage does."""
        with pytest.raises(SlackApiError) as excinfo:
            web.files_upload_v2(channel="C0ELSEWHERE", content="x", filename="a.txt")
        assert api_error(excinfo) == "not_in_channel"
        assert not slack.uploaded_files()[0].completed

    def test_upload_url_accepts_multipart(self, slack: SlackSandbox, web: WebClient) -> None:
        """The upload URL also takes a multipart/form-data body and stores the file part's bytes."""
        ticket = web.files_getUploadURLExternal(filename="diff.txt", length=5)
        resp = requests.post(ticket["upload_url"], files={"file": ("diff.txt", b"a\x00b\nc")}, timeout=5)
        assert (resp.status_code, resp.text) == (200, "OK - 5")
        assert slack.uploaded_files()[0].content == b"a\x00b\nc"


class TestRecording:
    def test_wait_for_blocks_until_calls_arrive(self, slack: SlackSandbox, web: WebClient) -> None:
        """wait_for returns once a matching call arrives from another thread."""
        timer = threading.Timer(0.2, lambda: web.chat_postMessage(channel="C0SANDBOX", text="late"))
        timer.start()
        try:
            (call,) = slack.wait_for("chat.postMessage", predicate=lambda c: c.args.get("text") == "late")
        finally:
            timer.join()
        assert call.response["ok"]

    def test_wait_for_times_out_with_what_it_saw(self, slack: SlackSandbox, web: WebClient) -> None:
        """wait_for raises TimeoutError naming the calls that did arrive."""
        web.auth_test()
        with pytest.raises(TimeoutError, match=r"auth\.test:200"):
            slack.wait_for("chat.postMessage", timeout=0.1)

    def test_reset_forgets_calls_messages_and_faults(self, slack: SlackSandbox, web: WebClient) -> None:
        """reset clears what was recorded and any fault, but keeps configuration."""
        web.chat_postMessage(channel="C0SANDBOX", text="x")
        slack.set_fault("auth.test", "error500", times=None)
        slack.reset()
        assert slack.calls() == []
        assert slack.messages() == []
        assert web.auth_test()["ok"]
        assert "C0SANDBOX" in slack.channels

    def test_addresses_and_env_point_at_the_sandbox(self, slack: SlackSandbox) -> None:
        """addresses() and env() name the running servers and the sandbox credentials."""
        addresses = slack.addresses()
        assert addresses["slack_api_url"] == slack.api_url
        assert slack.api_url.endswith("/api/")
        assert addresses["socket_mode_url"].startswith("ws://127.0.0.1:")
        assert slack.env()["SVCBOT_SLACK_API_URL"] == slack.api_url
        assert slack.env()["SLACK_APP_TOKEN"].startswith("xapp-")
