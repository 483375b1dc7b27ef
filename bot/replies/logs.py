"""Replies of /svc logs and /svc trace: the lines found and how they were looked up. No layout
(bot/render/logs_view.py lays them out). Every text here is already masked: no secret reaches a reply."""

from __future__ import annotations

from dataclasses import dataclass

from bot.insight.logs import LevelSeries, LogLine
from bot.replies.base import Reply


@dataclass(frozen=True)
class LogLookup:
    """What was asked and how: enough to say what ran over which range, and to link to Grafana."""

    env: str
    namespace: str
    query: str
    start_ns: int
    end_ns: int
    since: str  # as the user wrote it ("15m")
    limit: int
    level: str | None = None
    grep: str | None = None
    trace_id: str | None = None
    explore_url: str = ""  # Grafana Explore showing the same query and range; "" without grafana_url
    notes: tuple[str, ...] = ()  # e.g. "--limit 9000 is more than Loki returns at once: using 5000"


@dataclass(frozen=True)
class LogsReply(Reply):
    """`/svc logs <service> [env] ...`: lines newest first, with lines per level over the range."""

    service: str
    lookup: LogLookup
    lines: tuple[LogLine, ...]  # newest first
    limit_reached: bool  # Loki had more lines than --limit: the oldest were not returned
    series: tuple[LevelSeries, ...] = ()  # most severe level first; empty when the count failed
    bucket_seconds: int = 0
    first_bucket_end_ns: int = 0  # the end of the first bucket; bucket i ends i * bucket_seconds later
    series_problem: str = ""  # why there is no sparkline, when the count query failed

    @property
    def unparsed(self) -> int:
        return sum(1 for line in self.lines if not line.parsed)


@dataclass(frozen=True)
class TraceReply(Reply):
    """`/svc trace <id> [env]`: one timeline, oldest first, across every service of the catalog."""

    trace_id: str
    services: tuple[str, ...]  # every catalog service the query covered
    lookup: LogLookup
    lines: tuple[LogLine, ...]  # oldest first
    limit_reached: bool

    @property
    def services_seen(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(line.service for line in self.lines if line.service))
