"""The Slack side misbehaving: a ratelimited answer is sent again after Retry-After, a 500 is retried, a delivery
that keeps failing is logged without costing the worker, and a deploy request is kept in the store whatever
happens to the message announcing it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from load_world import DEADLINE, HttpBot, message_text, wait_until
from structlog.testing import capture_logs

from bot.deploys.store import State
from sandbox.slack import Call, SlackSandbox

ALICE = "U0ALICE"  # on-call in the sandbox catalog: prod deploys need an approval


@pytest.fixture(name="logs")
def _logs() -> Iterator[list[dict[str, object]]]:
    with capture_logs() as captured:
        yield captured


def statuses(calls: list[Call]) -> list[int]:
    return [call.status for call in calls]


def test_ratelimited_answer_sent_after_retry_after(slack: SlackSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """A response_url answering 429 with Retry-After: 1 gets the same answer again no sooner than 1 s later."""
    bot = start_bot()
    slack.set_fault("response_url", mode="ratelimited", retry_after=1, times=1)
    sent = bot.send("help")
    bot.wait_answer(sent)
    posts = slack.response_posts(sent.response_id)
    assert statuses(posts) == [429, 200]
    assert posts[1].at - posts[0].at >= 1.0
    assert posts[1].args["text"] == posts[0].args["text"]


def test_server_error_retried(slack: SlackSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """A response_url answering 500 once is tried again and the answer arrives."""
    bot = start_bot()
    slack.set_fault("response_url", mode="error500", times=1)
    sent = bot.send("help")
    text, seconds = bot.answer_text(sent)
    assert "/svc help [verb]" in text
    assert statuses(slack.response_posts(sent.response_id)) == [500, 200]
    assert seconds < DEADLINE


def test_failed_delivery_logged_and_worker_survives(slack: SlackSandbox, start_bot: Callable[..., HttpBot],
                                                    logs: list[dict[str, object]]) -> None:
    """A response_url that keeps answering 500 is logged as a failed delivery; the only worker answers the next one."""
    bot = start_bot(workers=1)
    slack.set_fault("response_url", mode="error500", times=None)
    lost = bot.send("help")
    slack.wait_for("response_url", count=2, predicate=lambda call: call.target == lost.response_id)
    slack.clear_faults()
    text, _ = bot.answer_text(bot.send("help"))
    assert "/svc help [verb]" in text
    failures = [entry for entry in logs if entry["event"] == "slack.delivery_failed"]
    assert len(failures) == 1
    assert "500" in str(failures[0]["reason"])
    assert not [entry for entry in logs if entry["event"] == "worker.job_failed"]
    assert bot.answers(lost) == []


def test_deploy_request_posted_after_ratelimit(slack: SlackSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """A deploy request's message, ratelimited once, is posted after Retry-After and the store keeps its thread."""
    bot = start_bot()
    slack.set_fault("chat.postMessage", mode="ratelimited", retry_after=1, times=1)
    bot.send("deploy payment prod 1.4.2", user=ALICE)
    posted = slack.wait_for("chat.postMessage", timeout=DEADLINE + 5, predicate=lambda call: call.status == 200)[0]
    attempts = slack.calls("chat.postMessage")
    assert statuses(attempts) == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0
    store = bot.running.bot.runtime.deploys.store()
    [request] = store.requests(service="payment", env="prod")
    assert request.state is State.PENDING
    assert request.id in message_text(posted.args)
    wait_until(lambda: store.request(request.id).thread_ts == posted.response["ts"], timeout=5,
               what="the request's thread stored")


def test_deploy_request_survives_slack_500(slack: SlackSandbox, start_bot: Callable[..., HttpBot],
                                           logs: list[dict[str, object]]) -> None:
    """A deploy request whose message Slack refuses (500) stays PENDING in the store and shows in history."""
    bot = start_bot()
    slack.set_fault("chat.postMessage", mode="error500", times=None)
    bot.send("deploy payment prod 1.4.2", user=ALICE)
    wait_until(lambda: any(entry["event"] == "slack.post_failed_using_response_url" for entry in logs),
               timeout=DEADLINE + 5, what="the failed post logged")
    assert len(slack.calls("chat.postMessage")) >= 2  # tried, and tried again
    store = bot.running.bot.runtime.deploys.store()
    [request] = store.requests(service="payment", env="prod")
    assert request.state is State.PENDING
    slack.clear_faults()
    text, _ = bot.answer_text(bot.send("history payment prod", user=ALICE))
    assert request.id in text
    assert "PENDING" in text.upper()


def test_deploy_requester_told_when_posting_fails(slack: SlackSandbox, start_bot: Callable[..., HttpBot]) -> None:
    """When Slack refuses the deploy request's message, the requester still gets it at the command's response_url."""
    bot = start_bot()
    slack.set_fault("chat.postMessage", mode="error500", times=None)
    sent = bot.send("deploy payment prod 1.4.2", user=ALICE)
    text, _ = bot.answer_text(sent, timeout=DEADLINE)
    [request] = bot.running.bot.runtime.deploys.store().requests(service="payment", env="prod")
    assert request.id in text
