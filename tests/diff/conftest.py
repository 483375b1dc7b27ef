"""Fixtures for /svc diff: a catalog in a temporary folder whose `payment` profiles the tests write."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from diff_world import World, make_world


@pytest.fixture(name="world")
def _world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    # render_reply writes the attached full list to a temporary file: keep those in the test's folder
    # (tempfile.tempdir is the module's documented setting for that).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return make_world(tmp_path)


@pytest.fixture(name="world_factory")
def _world_factory() -> Callable[[Path, str | None], World]:
    return make_world
