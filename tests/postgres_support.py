"""The test PostgreSQL (SVCBOT_TEST_DATABASE_URL, set by .ci/run): its URL, or a skip with the reason
(a failure under CI, where PostgreSQL must be there), and a fresh schema per test."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import pytest

DATABASE_VARIABLE = "SVCBOT_TEST_DATABASE_URL"


def postgres_base_url() -> str:
    """The test PostgreSQL's URL, or skip (fail under CI) with the reason."""
    url = os.environ.get(DATABASE_VARIABLE, "")
    reason = ""
    if not url:
        reason = f"{DATABASE_VARIABLE} is not set (.ci/run starts a PostgreSQL on loopback and sets it)"
    else:
        try:
            import psycopg  # noqa: F401, PLC0415
            import psycopg_pool  # noqa: F401, PLC0415
        except ImportError as exc:
            reason = (f"{exc.name} is not installed "
                      "(pip install 'psycopg[binary]>=3.2,<4' 'psycopg-pool>=3.2,<4')")
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test the PostgreSQL store: {reason}")
        pytest.skip(f"PostgreSQL store not tested: {reason}")
    return url


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A store URL on a new empty schema (the connection's search_path), dropped afterwards."""
    url = postgres_base_url()
    import psycopg  # noqa: PLC0415 - only when PostgreSQL is there

    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
