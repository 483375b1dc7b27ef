"""Fixtures for several replicas (helpers in replica_world.py): a fresh PostgreSQL schema per test, and
replica processes stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from postgres_support import postgres_schema
from replica_world import Replica


@pytest.fixture(name="pg_url")
def _pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture(name="replicas")
def _replicas() -> Iterator[Callable[..., Replica]]:
    """Start replicas with `replicas("serve", url, ...)`; every one is stopped after the test."""
    started: list[Replica] = []

    def start(*args: str) -> Replica:
        replica = Replica(*args)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()
