"""Which texts in replies came from a backend, and how they are cleaned before anyone sees them.

A verb puts what a backend said into its reply: a cluster's error in `status`, a pod's answer in `probe`, why
Loki's count failed in `logs`, a Kubernetes event's message. Such text is untrusted like an error a command
answers with: it may hold a secret (`password=hunter2` in a driver's error) or Slack syntax (a proxy's HTML page).
`UNTRUSTED` names those fields, in one table, and `clean_reply` passes every one of them through the function
the dispatcher gives it (`bot/dispatch/dispatcher.py` `untrusted_error`: the catalog's secret masking, no live
Slack syntax), whatever verb built the reply. Log lines are not listed: bot/insight/logs.py masks them as it
reads them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from bot.insight.kube_facts import DeployLock, EventLine, PodDiagnosis, RolloutState
from bot.insight.logs import LevelSeries, LogLine
from bot.insight.probes import DependencyCheck, Finding, Verdict
from bot.replies.approvals import ApprovalMessageReply, ApprovalReply
from bot.replies.deploy import (
    CancelReply,
    DeployPendingReply,
    DeployPlanReply,
    DeployRunReply,
    HistoryEntry,
    HistoryReply,
    RunStepFact,
)
from bot.replies.diff import DiffReply
from bot.replies.logs import LogsReply
from bot.replies.probe import HttpCheck, PodProbe
from bot.replies.status import EnvStatus, StatusAllReply

# class -> its fields that carry backend text (a str, or tuples of them at any depth).
UNTRUSTED: dict[type, tuple[str, ...]] = {
    EnvStatus: ("problem", "alerts"),  # a cluster's error; "rollout failed: <the Deployment's message>"
    StatusAllReply: ("unreachable",),  # (env, the cluster's error)
    RolloutState: ("message",),
    PodDiagnosis: ("waiting_message", "last_reason"),
    EventLine: ("message", "reason"),
    DeployLock: ("holder",),
    HttpCheck: ("error", "excerpt"),  # per pod: why the pod did not answer; what it answered
    PodProbe: ("skipped",),
    DependencyCheck: ("detail",),
    Finding: ("why",),
    Verdict: ("detail",),  # "no pod answers (no answer (<why>))"
    LogsReply: ("series_problem",),  # why Loki's count query failed
    DiffReply: ("notes",),  # "prod: drift not checked: <the cluster's error>"
    DeployPlanReply: ("note",),  # why the current image is unknown
    DeployPendingReply: ("reason",),
    HistoryReply: ("notes",),  # "prod: revisions not read (<the cluster's error>)"
    HistoryEntry: ("detail",),
    RunStepFact: ("error", "output_tail"),
    DeployRunReply: ("reason", "failure", "rollback"),
    CancelReply: ("detail",),
    ApprovalReply: ("not_started", "superseded"),
    ApprovalMessageReply: ("not_started", "reason"),
}
# Already masked where they were made (bot/insight/logs.py), and many: not walked.
_MASKED_ALREADY: tuple[type, ...] = (LogLine, LevelSeries)

T = TypeVar("T")


def clean_reply(reply: T, clean: Callable[[str], str]) -> T:
    """`reply` with every UNTRUSTED field, at any depth, passed through `clean` (the same object when nothing
    changed)."""
    return _walk(reply, clean, untrusted=False)  # type: ignore[no-any-return]


def _walk(value: Any, clean: Callable[[str], str], *, untrusted: bool) -> Any:
    if isinstance(value, str):
        return clean(value) if untrusted and value else value
    if isinstance(value, tuple):
        if not value or isinstance(value[0], _MASKED_ALREADY):
            return value
        items = tuple(_walk(item, clean, untrusted=untrusted) for item in value)
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and not isinstance(value, _MASKED_ALREADY):
        listed = UNTRUSTED.get(type(value), ())
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            if isinstance(old, str) and field.name not in listed and not untrusted:
                continue
            new = _walk(old, clean, untrusted=untrusted or field.name in listed)
            if new is not old:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value
