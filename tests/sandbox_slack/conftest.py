"""Fixtures for the sandbox Slack tests: a running sandbox, a WebClient on it, Socket Mode clients."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient

from sandbox.slack import SlackSandbox


@pytest.fixture(name="slack")
def fixture_slack() -> Iterator[SlackSandbox]:
    """A started sandbox, stopped after the test."""
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture(name="web")
def fixture_web(slack: SlackSandbox) -> WebClient:
    """slack_sdk's WebClient with the bot token, pointed at the sandbox."""
    return WebClient(token=slack.bot_token, base_url=slack.api_url)


@pytest.fixture(name="socket_client")
def fixture_socket_client(slack: SlackSandbox) -> Iterator[Callable[..., SocketModeClient]]:
    """A factory of slack_sdk SocketModeClients on the sandbox (app token, WebClient on api_url)."""
    clients: list[SocketModeClient] = []

    def make(**kwargs: Any) -> SocketModeClient:
        kwargs.setdefault("ping_interval", 1)
        kwargs.setdefault("logger", logging.getLogger("tests.sandbox_slack.socket_mode_client"))
        client = SocketModeClient(app_token=slack.app_token, web_client=WebClient(base_url=slack.api_url), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        slack.close_socket_mode_client(client)
