"""Where the store is (SVCBOT_DB) and which engine opens it."""

from __future__ import annotations

import os
from pathlib import Path

from bot.core.errors import UsageError
from bot.deploys.store.database import Database
from bot.deploys.store.postgres import PostgresDatabase
from bot.deploys.store.sqlite import SqliteDatabase


def default_path() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "svcbot" / "svcbot.db"


def open_database(location: str | None = None) -> Database:
    """SVCBOT_DB: a file path or sqlite:///path (default under the user's data directory), or a
    postgresql:// URL (postgres:// too)."""
    location = location or os.environ.get("SVCBOT_DB") or ""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(location)
    if location.startswith("sqlite:///"):
        location = "/" + location.removeprefix("sqlite://").lstrip("/")  # sqlite:////abs and sqlite:///abs alike
    elif "://" in location:
        raise UsageError(f"SVCBOT_DB: unsupported store URL scheme in {location.split('://')[0]!r}")
    return SqliteDatabase(Path(location).expanduser() if location else default_path())
