"""The status command's own pieces: parallel calls under one deadline, the selector memory, env validation."""

from __future__ import annotations

import argparse

import pytest

from bot.core.catalog import parse_catalog
from bot.core.errors import NotFound
from commands import status as status_command


def test_selector_memory() -> None:
    """A remembered selector is known to the next look; a changed one replaces it; None forgets it."""
    key = ("cluster-x", "ns", "deploy-selector-test")
    assert status_command._known_selector(*key) is None
    status_command._remember_selector(*key, "app=a")
    assert status_command._known_selector(*key) == "app=a"
    status_command._remember_selector(*key, "app=b")
    assert status_command._known_selector(*key) == "app=b"
    status_command._remember_selector(*key, None)
    assert status_command._known_selector(*key) is None


CATALOG = """
clusters: {c: {context: c}}
environments: {dev: {cluster: c, namespace: dev}, prod: {cluster: c, namespace: prod}}
services: {payment: {}}
"""


def test_envs_validates_names() -> None:
    """`status` touches every environment unless one is named; unknown names are NotFound with the known ones."""
    catalog = parse_catalog(CATALOG)
    parser = status_command.build_parser()
    assert status_command.envs(parser.parse_args(["payment"]), catalog) == ("dev", "prod")
    assert status_command.envs(parser.parse_args(["all", "prod"]), catalog) == ("prod",)
    with pytest.raises(NotFound, match=r"unknown environment 'qa' \(known: dev, prod\)"):
        status_command.envs(argparse.Namespace(service="payment", env="qa"), catalog)
    with pytest.raises(NotFound, match=r"unknown service 'nope' \(known: payment\)"):
        status_command.envs(argparse.Namespace(service="nope", env=None), catalog)
