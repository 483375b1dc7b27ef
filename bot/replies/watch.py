"""Replies of /svc watch, unwatch and watches, and the incident message the watcher posts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.replies.base import Reply
from bot.watch import detect
from bot.watch.book import ALL, Incident, Subscription


@dataclass(frozen=True)
class WatchesReply(Reply):
    """A channel's subscriptions and the incidents open for what it watches."""

    channel: str
    subscriptions: tuple[Subscription, ...]
    incidents: tuple[Incident, ...]
    now: float
    changed: str = ""  # what the command just did ("now watching payment in every environment")


@dataclass(frozen=True)
class IncidentReply(Reply):
    """One incident's top-level message: what is wrong, since when, which pods, the diagnosis, the last error
    lines, and the buttons (while open)."""

    id: str
    service: str
    env: str
    kind: str
    title: str
    summary: str
    lines: tuple[str, ...]
    pods: tuple[str, ...]
    log_lines: tuple[str, ...]
    open: bool
    opened_at: float
    since: float | None
    resolved_at: float | None
    reopened: int
    silenced_until: float | None
    silenced_by: str
    now: float


def incident_reply(incident: Incident, now: float) -> IncidentReply:
    facts = incident.facts
    since = facts.get("since")
    return IncidentReply(
        id=incident.id, service=incident.service, env=incident.env, kind=incident.kind,
        title=detect.TITLES.get(incident.kind, incident.kind), summary=str(facts.get("summary", "")),
        lines=tuple(str(line) for line in facts.get("lines") or ()),
        pods=tuple(str(pod) for pod in facts.get("pods") or ()),
        log_lines=tuple(str(line) for line in facts.get("log_lines") or ()),
        open=incident.open, opened_at=incident.opened_at, since=float(since) if since is not None else None,
        resolved_at=incident.resolved_at, reopened=incident.reopened, silenced_until=incident.silenced_until,
        silenced_by=incident.silenced_by, now=now, public=True)


def scope(service: str, env: str) -> str:
    """'payment in every environment', 'every service in prod'."""
    who = "every service" if service == ALL else service
    where = "every environment" if env == ALL else env
    return f"{who} in {where}"
