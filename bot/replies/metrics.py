"""The reply of /svc metrics: panels of series over a window, what they are compared with, deploys inside it.
No layout (bot/render/metrics_view.py lays it out; bot/render/chart.py draws the PNG)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.insight.metrics import Panel
from bot.replies.base import Reply


@dataclass(frozen=True)
class DeployMark:
    at: float  # unix seconds the run started
    label: str  # "1.5.4 (rolled back)"


@dataclass(frozen=True)
class MetricsReply(Reply):
    """`/svc metrics <service> [env] [--since 1h]`."""

    service: str
    env: str
    since: str  # as written ("1h")
    start: float  # unix seconds
    end: float
    panels: tuple[Panel, ...]
    restarts: int | None = None  # container restarts of the current pods (None: not read)
    deploys: tuple[DeployMark, ...] = ()
    notes: tuple[str, ...] = ()
    prometheus: str = ""  # which Prometheus answered (scheme://host:port)
