"""Replies of /svc status: facts about deployments, no layout (bot/render/status_view.py lays them out)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.tone import Tone
from bot.insight.kube_facts import DeployLock, EventLine, HpaSummary, PodDiagnosis, RolloutState
from bot.insight.metrics import Numbers
from bot.replies.base import Reply


@dataclass(frozen=True)
class EnvStatus:
    """One service in one environment. `problem` is set (and the rest empty) when nothing could be read."""

    env: str
    namespace: str
    cluster: str
    deployment: str
    tone: Tone
    problem: str = ""  # "cluster prod unreachable: ...", "no deployment payment-api in prod (namespace prod)"
    unreachable: bool = False
    ready: int = 0
    desired: int = 0
    image: str = ""  # tag of the current revision
    old_images: tuple[str, ...] = ()  # tags of older revisions still running (a rollout in flight)
    new_ready: int | None = None  # during a rollout in flight: ready pods of the current revision (the new one)
    revision: int = 0
    rollout: RolloutState | None = None
    last_rollout: float | None = None  # epoch seconds the current revision started
    lock: DeployLock | None = None
    alerts: tuple[str, ...] = ()
    # Detail (status <service> <env>) only:
    pods: tuple[PodDiagnosis, ...] = ()
    events: tuple[EventLine, ...] = ()
    hpa: HpaSummary | None = None
    # From Prometheus, when the catalog has one for the cluster: traffic over the last 5 minutes.
    traffic: Numbers | None = None
    traffic_problem: str = ""  # why there are no numbers (Prometheus down, no series)


@dataclass(frozen=True)
class StatusReply(Reply):
    """`status <service>` (every environment, compact) or `status <service> <env>` (detailed)."""

    service: str
    envs: tuple[EnvStatus, ...]
    detailed: bool
    now: float  # epoch seconds the answer describes (ages are computed from it)

    @property
    def tone(self) -> Tone:
        return worst_tone(env.tone for env in self.envs)


@dataclass(frozen=True)
class ServiceRow:
    """One catalog service in `status all`: one cell per environment asked."""

    service: str
    cells: tuple[EnvStatus, ...]

    @property
    def tone(self) -> Tone:
        return worst_tone(cell.tone for cell in self.cells)


@dataclass(frozen=True)
class StatusAllReply(Reply):
    """`status all [env]`: every catalog service, problems first."""

    envs: tuple[str, ...]
    rows: tuple[ServiceRow, ...]
    unreachable: tuple[tuple[str, str], ...]  # (env, why) for environments that did not answer
    now: float
    api_requests: int = 0  # Kubernetes API requests this answer took
    prometheus_queries: int = 0  # Prometheus queries this answer took (one per environment)
    traffic_problems: tuple[tuple[str, str], ...] = ()  # (env, why) where Prometheus gave no numbers


TONE_ORDER = (Tone.BAD, Tone.WARN, Tone.UNKNOWN, Tone.INFO, Tone.OK)


def worst_tone(tones: Iterable[Tone]) -> Tone:
    seen = set(tones)
    for tone in TONE_ORDER:
        if tone in seen:
            return tone
    return Tone.UNKNOWN
