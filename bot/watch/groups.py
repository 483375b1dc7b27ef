"""Trouble bigger than one service: a cluster that went away, and a storm (one kind of trouble in many services of
one environment at once). Each is one incident (service `*`), not one per service.

- A cluster none of whose watch streams has answered for `watch.cluster_gone` is one incident for the cluster
  (env = the cluster's name, kind `cluster-unreachable`); while it lasts, the services on it are not judged
  (their cached state is stale) and nothing about them opens or resolves.
- When `watch.storm` services or more of one environment show the same kind at once, the ones not yet open go
  into one storm incident (env = the environment) listing them; services that join later are lines in its
  thread. Incidents already open for a single service stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def cluster_finding(gone: Gone, envs: Sequence[str], now: float) -> detect.Finding:
    summary = f"cluster {gone.cluster} does not answer (for {human_age(now - gone.since)})"
    lines = (f"not watched until it answers: {', '.join(envs)}",) if envs else ()
    return detect.Finding(detect.CLUSTER_GONE, summary, lines, (), gone.cluster, gone.since)


def storm_finding(env: str, kind: str, members: Mapping[str, detect.Finding]) -> detect.Finding:
    names = sorted(members)
    title = detect.TITLES.get(kind, kind)
    lines = tuple(f"{name}: {members[name].summary}" for name in names)
    pods = tuple(pod for name in names for pod in members[name].pods)
    since = min((finding.since for finding in members.values() if finding.since is not None), default=None)
    return detect.Finding(kind, f"{title} in {len(names)} services in {env}: {', '.join(names)}", lines, pods,
                          ",".join(names), since)


def is_group(incident: Incident) -> bool:
    return incident.service == ALL


def group_incidents(book: Book) -> list[Incident]:
    return [incident for incident in book.incidents() if is_group(incident)]
