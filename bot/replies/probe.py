"""Replies of /svc probe: what each pod's health endpoints answered, the probe configuration, findings."""

from __future__ import annotations

from dataclasses import dataclass

from bot.insight.kube_facts import EventLine
from bot.insight.probes import DependencyCheck, Finding, ProbeSpec, Verdict
from bot.replies.base import Reply


@dataclass(frozen=True)
class HttpCheck:
    """One GET of a health path on one pod, through the API server's pod proxy."""

    kind: str  # liveness | readiness
    path: str
    port: int
    status: int | None  # None: the pod did not answer (see error)
    latency: float  # seconds
    excerpt: str = ""  # first characters of the body, secrets masked
    error: str = ""
    dependencies: tuple[DependencyCheck, ...] = ()

    @property
    def ok(self) -> bool:
        """The kubelet's rule for HTTP probes: 200 <= status < 400."""
        return self.status is not None and 200 <= self.status < 400

    @property
    def failed_dependencies(self) -> tuple[DependencyCheck, ...]:
        return tuple(check for check in self.dependencies if not check.ok)


@dataclass(frozen=True)
class PodProbe:
    pod: str
    status: str  # kubectl's STATUS column
    ready: bool
    restarts: int
    checks: tuple[HttpCheck, ...]
    skipped: str = ""  # why the pod was not asked (e.g. not running)


@dataclass(frozen=True)
class ProbeReply(Reply):
    service: str
    env: str
    namespace: str
    deployment: str
    container: str
    verdict: Verdict
    pods: tuple[PodProbe, ...]
    probes: tuple[ProbeSpec, ...]  # from the deployment's pod template
    findings: tuple[Finding, ...]
    events: tuple[EventLine, ...]  # latest Unhealthy events of the service's pods
    now: float
    pods_total: int = 0  # pods of the deployment (more than `pods` when the list was capped)
