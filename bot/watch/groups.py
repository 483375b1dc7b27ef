"""Trouble bigger than one service: a cluster that went away, and a storm (one kind of trouble in many services of
one environment at once). Each is one incident (service `*`), not one per service.

- A cluster none of whose watch streams has answered for `watch.cluster_gone` is one incident for the cluster
  (env = the cluster's name, kind `cluster-unreachable`); while it lasts, the services on it are not judged
  (their cached state is stale) and nothing about them opens or resolves.
- When `watch.storm` services or more of one environment show the same kind at once, the ones not yet open go
  into one storm incident (env = the environment) listing them; services that join later, and those that leave
  it, are lines in its thread and its message is updated in place. Incidents already open for a single service
  stay as they are.
- A cluster's incident lists the services watched on it; one watched or unwatched during the outage is a line
  in its thread (and a newly subscribed channel gets its message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.insight.kube_facts import human_age
from bot.watch import detect
from bot.watch.book import ALL, Book, Incident
from bot.watch.streams import ObjectStream


@dataclass(frozen=True)
class Gone:
    cluster: str
    since: float


def clusters_gone(streams: Mapping[tuple[str, str, str], ObjectStream], threshold: float,
                  now: float) -> dict[str, Gone]:
    """Clusters every stream of which has failed for `threshold` seconds or more."""
    by_cluster: dict[str, list[ObjectStream]] = {}
    for (cluster, _namespace, _resource), stream in streams.items():
        by_cluster.setdefault(cluster, []).append(stream)
    out = {}
    for cluster, members in by_cluster.items():
        failing = [stream.failing_since for stream in members]
        if members and all(since is not None for since in failing):
            since = min(since for since in failing if since is not None)
            if now - since >= threshold:
                out[cluster] = Gone(cluster, since)
    return out


def cluster_finding(gone: Gone, watched: Sequence[tuple[str, str]], now: float) -> detect.Finding:
    """The cluster's incident; its fingerprint is what is watched on it ('payment in prod,...'), so a service
    watched or unwatched during the outage is a change (bot/watch/watcher.py)."""
    names = sorted({f"{service} in {env}" for service, env in watched})
    summary = f"cluster {gone.cluster} does not answer (for {human_age(now - gone.since)})"
    lines = (f"not watched until it answers: {', '.join(names)}",) if names else ()
    return detect.Finding(detect.CLUSTER_GONE, summary, lines, (), ",".join(names), gone.since)


def storm_finding(env: str, kind: str, members: Mapping[str, detect.Finding]) -> detect.Finding:
    names = sorted(members)
    title = detect.TITLES.get(kind, kind)
    lines = tuple(f"{name}: {members[name].summary}" for name in names)
    pods = tuple(pod for name in names for pod in members[name].pods)
    since = min((finding.since for finding in members.values() if finding.since is not None), default=None)
    return detect.Finding(kind, f"{title} in {len(names)} services in {env}: {', '.join(names)}", lines, pods,
                          ",".join(names), since)


@dataclass(frozen=True)
class Change:
    """What an open group incident becomes: its new facts, and the line its thread gets ('' when silenced)."""

    facts: dict[str, Any]
    fingerprint: str
    line: str
    joined: tuple[str, ...]
    left: tuple[str, ...]


def storm_change(storm: Incident, members: Mapping[str, detect.Finding], now: float) -> Change | None:
    """A storm follows its members: who joins and who leaves are lines in its thread, and its message (services,
    counts, pods) is updated in place. None when nothing it shows changed, or no member is left (it resolves)."""
    if not members:
        return None
    finding = storm_finding(storm.env, storm.kind, members)
    facts = {**finding.facts(), "log_lines": list(storm.facts.get("log_lines") or [])}
    if same_facts(storm.facts, facts):
        return None
    before = set(filter(None, storm.fingerprint.split(",")))
    joined, left = tuple(sorted(set(members) - before)), tuple(sorted(before - set(members)))
    title = detect.TITLES.get(storm.kind, storm.kind)
    said = [f"{name} joined: {members[name].summary}" for name in joined]
    said += [f"{name} no longer shows {title}" for name in left]
    return Change(facts, finding.fingerprint, "" if storm.silenced(now) else "\n".join(said), joined, left)


def cluster_change(incident: Incident, finding: detect.Finding, now: float) -> Change | None:
    """A cluster's incident follows what is watched on it: a service watched during the outage joins it, one no
    longer watched leaves it. Its summary's growing age alone is no change (the message shows since when)."""
    before = set(filter(None, incident.fingerprint.split(",")))
    after = set(filter(None, finding.fingerprint.split(",")))
    if before == after:
        return None
    joined, left = tuple(sorted(after - before)), tuple(sorted(before - after))
    said = [f"not watched until it answers, now also: {', '.join(joined)}"] if joined else []
    said += [f"no longer watched: {', '.join(left)}"] if left else []
    if any(" in " not in name for name in before):
        said = []  # opened by an svcbot whose fingerprint was the cluster's name: its list is not known
    facts = {**finding.facts(), "log_lines": list(incident.facts.get("log_lines") or [])}
    return Change(facts, finding.fingerprint, "" if incident.silenced(now) else "\n".join(said), joined, left)


def same_facts(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """What an incident's message shows is the same (its log lines are read once, at opening)."""
    return all(_plain(old.get(key)) == _plain(new.get(key)) for key in ("summary", "lines", "pods"))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value  # facts read back from the store hold lists


def is_group(incident: Incident) -> bool:
    return incident.service == ALL


def group_incidents(book: Book) -> list[Incident]:
    return [incident for incident in book.incidents() if is_group(incident)]
