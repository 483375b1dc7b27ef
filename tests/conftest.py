"""Shared test set-up: every test starts with a clean environment (no tokens, no catalog path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CATALOG = ROOT / "examples" / "catalog.yaml"

settings.register_profile("svcbot", deadline=None, max_examples=100)
settings.load_profile("svcbot")

_ENV_PREFIXES = ("SLACK_", "SVCBOT_")
# Set by `make test` / CI for the tests themselves (tool paths, a test database): kept.
_TEST_SETTINGS = ("SVCBOT_HELM_PYTHON", "SVCBOT_HADOLINT", "SVCBOT_TEST_DATABASE_URL", "SVCBOT_TEST_PROMETHEUS")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tokens and paths from the developer's shell never leak into a test; each test has its own store."""
    for key in list(os.environ):
        if (key.startswith(_ENV_PREFIXES) and key not in _TEST_SETTINGS) or key == "KUBECONFIG":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SVCBOT_HISTORY", str(tmp_path / "history"))
    monkeypatch.setenv("SVCBOT_DB", str(tmp_path / "svcbot.db"))


@pytest.fixture(name="example_catalog_path")
def _example_catalog_path() -> Path:
    return EXAMPLE_CATALOG
