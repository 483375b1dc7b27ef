"""What a storm or a cluster incident becomes while it lasts (groups.py, pure): who joins and who leaves in its
thread's line, nothing when only what it already shows is found again, no line while silenced."""

from __future__ import annotations

from typing import Any

from bot.watch import detect, groups
from bot.watch.book import ALL, OPEN, Incident

NOW = 1_800_000_000.0


def incident(kind: str, env: str, finding: detect.Finding, **fields: Any) -> Incident:
    values: dict[str, Any] = {
        "id": "i1", "service": ALL, "env": env, "kind": kind, "state": OPEN, "facts": finding.facts(),
        "fingerprint": finding.fingerprint, "opened_at": NOW - 60, "updated_at": NOW - 60, "resolved_at": None,
        "silenced_until": None, "silenced_by": "", "reopened": 0, "version": 1, **fields}
    return Incident(**values)


def pulling(service: str) -> detect.Finding:
    return detect.Finding(detect.IMAGE_PULL, "1 pod cannot pull its image", (f"{service}-1: ErrImagePull",),
                          (f"{service}-1",), "ErrImagePull", NOW - 30)


def test_a_storm_says_who_joins_and_who_leaves() -> None:
    members = {name: pulling(name) for name in ("gateway", "inventory", "orders")}
    storm = incident(detect.IMAGE_PULL, "dev", groups.storm_finding("dev", detect.IMAGE_PULL, members))
    assert groups.storm_change(storm, members, NOW) is None
    change = groups.storm_change(storm, {**members, "payment": pulling("payment")}, NOW)
    assert change is not None
    assert change.joined == ("payment",)
    assert change.line == "payment joined: 1 pod cannot pull its image"
    assert "payment-1" in change.facts["pods"]
    left = groups.storm_change(storm, {"inventory": members["inventory"], "orders": members["orders"]}, NOW)
    assert left is not None
    assert left.line == "gateway no longer shows image pull failure"
    silenced = incident(detect.IMAGE_PULL, "dev", groups.storm_finding("dev", detect.IMAGE_PULL, members),
                        silenced_until=NOW + 3600)
    quiet = groups.storm_change(silenced, {**members, "payment": pulling("payment")}, NOW)
    assert quiet is not None
    assert quiet.line == ""
    assert quiet.joined == ("payment",)
    assert groups.storm_change(storm, {}, NOW) is None  # nobody left: it resolves, not changes


def test_a_cluster_incident_follows_what_is_watched_on_it() -> None:
    gone = groups.Gone("prod", NOW - 120)
    opened = incident(detect.CLUSTER_GONE, "prod", groups.cluster_finding(gone, [("payment", "prod")], NOW - 60))
    assert groups.cluster_change(opened, groups.cluster_finding(gone, [("payment", "prod")], NOW), NOW) is None
    both = groups.cluster_finding(gone, [("payment", "prod"), ("gateway", "prod")], NOW)
    change = groups.cluster_change(opened, both, NOW)
    assert change is not None
    assert change.line == "not watched until it answers, now also: gateway in prod"
    assert change.facts["lines"] == ["not watched until it answers: gateway in prod, payment in prod"]
    # An incident opened by an svcbot whose fingerprint was the cluster's name: updated, nothing said.
    older = incident(detect.CLUSTER_GONE, "prod", groups.cluster_finding(gone, [], NOW - 60), fingerprint="prod")
    quiet = groups.cluster_change(older, both, NOW)
    assert quiet is not None
    assert quiet.line == ""
