"""Backend clients, created lazily on first use so a down or misconfigured backend never stops the bot
from starting or answering the verbs that do not need it.

Each backend's section below is owned by its client module's author; commands reach clients only
through here (`invocation.backends.<name>(...)`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.catalog import Catalog


class Backends:
    """Holds the clients one process shares between commands (one per cluster, one Loki, one store)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()

    # --- Kubernetes (bot/kube.py) ------------------------------------------------------------------

    # --- Loki (bot/loki.py) ------------------------------------------------------------------------

    # --- store (bot/store.py) ----------------------------------------------------------------------

    def close(self) -> None:
        """Release connections; safe to call twice."""
