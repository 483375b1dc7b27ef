"""response_url posts, sent with slack_sdk's WebhookClient (what Bolt's respond() uses)."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from sandbox.slack import SlackSandbox


def test_ephemeral_answer_is_recorded(slack: SlackSandbox) -> None:
    """A response_url post is recorded with its JSON body and shown to the command's user only."""
    url = slack.response_url(channel_id="C0SANDBOX", user_id="U01AAA")
    resp = WebhookClient(url).send(text="usage: /svc status <service>", response_type="ephemeral")
    assert (resp.status_code, resp.body) == (200, "ok")
    (post,) = slack.response_posts()
    assert post.args == {"text": "usage: /svc status <service>", "response_type": "ephemeral"}
    assert post.target == url.rsplit("/", 1)[-1]
    (eph,) = slack.ephemerals()
    assert (eph["user"], eph["channel"], eph["via"]) == ("U01AAA", "C0SANDBOX", "response_url")


def test_in_channel_answer_becomes_a_channel_message(slack: SlackSandbox) -> None:
    """An in_channel response_url post appears as a message in the command's channel."""
    url = slack.response_url(channel_id="C0SANDBOX", user_id="U01AAA")
    WebhookClient(url).send(text="payment: 3/3 ready", response_type="in_channel")
    (msg,) = slack.messages("C0SANDBOX")
    assert msg["text"] == "payment: 3/3 ready"


def test_replace_original_updates_the_clicked_message(slack: SlackSandbox, web: WebClient) -> None:
    """replace_original on a button's response_url replaces that message's text and blocks."""
    ts = web.chat_postMessage(channel="C0SANDBOX", text="approve?", blocks=[{"type": "divider"}])["ts"]
    url = slack.response_url(channel_id="C0SANDBOX", user_id="U02CCC", message_ts=ts)
    WebhookClient(url).send(text="approved by <@U02CCC>", replace_original=True)
    msg = slack.message("C0SANDBOX", ts)
    assert msg is not None
    assert msg["text"] == "approved by <@U02CCC>"
    assert "blocks" not in msg


def test_delete_original_removes_the_message(slack: SlackSandbox, web: WebClient) -> None:
    """delete_original on a button's response_url deletes the message."""
    ts = web.chat_postMessage(channel="C0SANDBOX", text="approve?")["ts"]
    url = slack.response_url(channel_id="C0SANDBOX", message_ts=ts)
    assert WebhookClient(url).send_dict({"delete_original": True}).status_code == 200
    assert slack.message("C0SANDBOX", ts) is None


def test_a_response_url_works_five_times(slack: SlackSandbox) -> None:
    """The sixth post to one response_url is refused (Slack allows 5 uses)."""
    client = WebhookClient(slack.response_url())
    statuses = [client.send(text=str(i)).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]


def test_invalid_blocks_are_refused(slack: SlackSandbox) -> None:
    """Blocks over Slack's limits are refused with HTTP 400 invalid_blocks."""
    resp = WebhookClient(slack.response_url()).send(text="x", blocks=[{"type": "divider"}] * 51)
    assert (resp.status_code, resp.body) == (400, "invalid_blocks")


def test_any_path_under_response_is_accepted(slack: SlackSandbox) -> None:
    """A response_url the sandbox did not mint is still accepted and recorded."""
    resp = WebhookClient(f"{slack.base_url}/response/T0/123/abc").send(text="hello")
    assert resp.status_code == 200
    assert slack.response_posts()[0].target == "abc"
