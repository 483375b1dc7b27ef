"""Fault switches: rate limits, server errors, Slack errors and slow answers."""

from __future__ import annotations

import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from sandbox.slack import SlackSandbox


def test_ratelimited_is_retried_by_the_sdk_handler(slack: SlackSandbox) -> None:
    """A 429 with Retry-After is retried by RateLimitErrorRetryHandler after waiting, and then succeeds."""
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    slack.set_fault("chat.postMessage", "ratelimited", retry_after=1, times=1)
    started = time.monotonic()
    resp = client.chat_postMessage(channel="C0SANDBOX", text="after the limit")
    elapsed = time.monotonic() - started
    assert resp["ok"]
    first, second = slack.calls("chat.postMessage")
    assert (first.status, first.response["error"], second.status) == (429, "ratelimited", 200)
    assert elapsed >= 1.0  # the SDK honoured Retry-After
    assert len(slack.messages()) == 1


def test_ratelimited_without_retry_surfaces_retry_after(slack: SlackSandbox, web: WebClient) -> None:
    """Without a retry handler the SDK raises ratelimited and exposes the Retry-After header."""
    slack.set_fault("chat.update", "ratelimited", retry_after=7)
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_update(channel="C0SANDBOX", ts="1700000000.000100", text="x")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response["error"] == "ratelimited"
    assert excinfo.value.response.headers["Retry-After"] == "7"


def test_error500_answers_http_500(slack: SlackSandbox, web: WebClient) -> None:
    """mode=error500 answers HTTP 500, which the SDK raises as an error."""
    slack.set_fault("chat.postMessage", "error500")
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C0SANDBOX", text="x")
    assert excinfo.value.response.status_code == 500
    assert slack.messages() == []


def test_times_limits_the_fault_and_none_matches_every_method(slack: SlackSandbox, web: WebClient) -> None:
    """A fault for method None hits any method, and only `times` calls."""
    slack.set_fault(None, "error500", times=2)
    for call in (web.auth_test, web.auth_test):
        with pytest.raises(SlackApiError):
            call()
    assert web.auth_test()["ok"]


def test_clear_faults(slack: SlackSandbox, web: WebClient) -> None:
    """clear_faults removes faults that had no limit."""
    slack.set_fault("auth.test", "ratelimited", times=None)
    with pytest.raises(SlackApiError):
        web.auth_test()
    slack.clear_faults()
    assert web.auth_test()["ok"]


def test_error_mode_answers_a_slack_error(slack: SlackSandbox, web: WebClient) -> None:
    """mode=error answers HTTP 200 with the given Slack error code."""
    slack.set_fault("chat.postMessage", "error", error="msg_blocks_too_long")
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C0SANDBOX", text="x")
    assert (excinfo.value.response.status_code, excinfo.value.response["error"]) == (200, "msg_blocks_too_long")


def test_delay_mode_answers_late_but_normally(slack: SlackSandbox, web: WebClient) -> None:
    """mode=delay sleeps before answering normally."""
    slack.set_fault("auth.test", "delay", delay=0.3)
    started = time.monotonic()
    assert web.auth_test()["ok"]
    assert time.monotonic() - started >= 0.3


def test_faults_apply_to_response_url_posts(slack: SlackSandbox) -> None:
    """The pseudo-method "response_url" rate-limits response_url posts."""
    slack.set_fault("response_url", "ratelimited", retry_after=2)
    status, _ = slack.post(slack.response_url(), '{"text": "x"}', {"Content-Type": "application/json"})
    assert status == 429
    assert slack.response_posts()[0].status == 429


def test_unknown_fault_mode_is_refused(slack: SlackSandbox) -> None:
    """A misspelt mode is an error, not a silent no-op."""
    with pytest.raises(ValueError, match="mode"):
        slack.set_fault("auth.test", "rate_limited")
