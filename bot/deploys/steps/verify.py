"""`verify`: the new version's metrics pass their checks, every `interval` for `duration`.

Checks are `error_rate <= 1%`, `p99 <= 500ms` (error_rate, p50, p90, p99; `<=` or `<`). Each evaluation asks
Prometheus (queries from bot/insight/promql.py) about the new version's pods only: the pod-name regex of the
deployment's current ReplicaSet (`<replicaset>-<suffix>`, the pod-template-hash in its name). The baseline is
the old version's pods over `baseline` seconds before the image changed (old pods go away during a rollout,
so it is read at that moment, not now).

A check fails an evaluation when its value breaks its limit AND is worse than the baseline: a version no worse
than the one it replaces is not blamed for the service's old trouble (the progress says so). An error rate
over its limit on fewer than MIN_ERRORS failed requests in the window is not judged either (too few to mean
anything: one failure among 150 requests is 0.7 %). An evaluation
fails when any check fails; `failures` failed evaluations fail the step, naming the check, and the target's
`on_failure: rollback` runs. An evaluation without data (no traffic yet, Prometheus briefly unreachable) counts
neither way; a step that never had data fails with why.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from bot.core.catalog import parse_verify_check
from bot.core.errors import BackendError, BotError
from bot.deploys.steps.base import TRANSIENT, Args, StepContext, StepFailed, Workload, duration_text, seconds
from bot.deploys.steps.cluster import read_revision
from bot.insight import kube_facts as rollout
from bot.insight import promql
from bot.insight.metrics import Source

DEFAULT_INTERVAL = 30.0
DEFAULT_DURATION = 300.0
DEFAULT_WINDOW = 60.0
DEFAULT_BASELINE = 300.0
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
# An error rate over the limit on fewer failed requests than this is not judged: with a few hundred requests a
# window, one or two failures of a healthy version already read as 1 % (Kayenta and Argo Rollouts also ask for
# a minimum of data before they judge).
MIN_ERRORS = 3.0


@dataclass(frozen=True)
class Check:
    text: str  # as written in the catalog
    metric: str  # error_rate, p50, p90, p99
    op: str  # <= or <
    limit: float  # a ratio (0..1) or seconds

    def breaks(self, value: float) -> bool:
        return value > self.limit if self.op == "<=" else value >= self.limit

    def show(self, value: float) -> str:
        if not math.isfinite(value):
            return "n/a"
        return f"{value * 100:.2f}%" if self.metric == "error_rate" else f"{value * 1000:.0f}ms"


def checks_of(args: Args) -> list[Check]:
    out = []
    for text in args.get("checks") or []:
        try:
            metric, op, limit = parse_verify_check(text)
        except ValueError as exc:
            raise StepFailed(f"verify: {exc}") from None
        out.append(Check(str(text), metric, op, limit))
    if not out:
        raise StepFailed("verify: no checks (add e.g. 'error_rate <= 1%' under checks)")
    return out


def query_of(check: Check, scope: promql.Scope, window: float, names: promql.MetricNames) -> str:
    if check.metric == "error_rate":
        return promql.error_ratio(scope, window, names)
    return promql.latency_quantile(scope, window, QUANTILES[check.metric], names)


def _value(source: Source, query: str, at: float | None, deadline: float) -> float:
    samples = source.client.query(query, at=at, deadline=deadline)
    values = [sample.last for sample in samples if math.isfinite(sample.last)]
    return values[0] if values else math.nan


def _errors(source: Source, scope: promql.Scope, window: float, ratio: float, deadline: float) -> float | None:
    """About how many requests failed in the window (ratio x rate x window); None when it cannot be read."""
    try:
        rate = _value(source, promql.request_rate(scope, window, source.names), None, deadline)
    except BackendError:
        return None
    return ratio * rate * window if math.isfinite(rate) else None


def _scope(source: Source, pod_regex: str) -> promql.Scope:
    base = source.scope
    return promql.Scope(namespace=base.namespace, service=base.service, namespace_label=base.namespace_label,
                        service_label=base.service_label, pod_label=base.pod_label,
                        cluster_label=base.cluster_label, cluster=base.cluster, pod_regex=pod_regex)


def _old_replicaset(replicasets: list[dict[str, Any]], current: dict[str, Any] | None,
                    from_revision: int | None) -> dict[str, Any] | None:
    """The ReplicaSet the run replaced: the one at the revision recorded before the change, else the newest
    other one."""
    others = [rs for rs in replicasets if rs is not current and rs != current]
    if from_revision is not None:
        match = [rs for rs in others if rollout.revision(rs) == from_revision]
        if match:
            return match[0]
    return max(others, key=rollout.revision, default=None)


def _settle_seconds(pods: list[dict[str, Any]], window: float) -> float:
    """How long until the newest of the new pods has been running for `window` seconds."""
    starts = [moment for pod in pods
              if (moment := rollout.parse_time((pod.get("status") or {}).get("startTime")
                                               or (pod.get("metadata") or {}).get("creationTimestamp")))]
    return max(0.0, max(starts, default=0.0) + window - time.time())


def execute(args: Args, ctx: StepContext) -> str:
    checks = checks_of(args)
    interval = seconds(args.get("interval"), DEFAULT_INTERVAL)
    duration = seconds(args.get("duration"), DEFAULT_DURATION)
    window = seconds(args.get("window"), DEFAULT_WINDOW)
    baseline_window = seconds(args.get("baseline"), DEFAULT_BASELINE)
    allowed = int(args.get("failures") or 2)
    if ctx.metrics_for is None:
        raise StepFailed("verify: no Prometheus is configured for this environment's cluster")
    try:
        source = ctx.metrics_for(ctx.workload)
    except BotError as exc:  # no Prometheus holds this cluster
        raise StepFailed(f"verify: {exc.message}") from None
    started = time.monotonic()
    deadline = started + window + duration + interval + 30.0
    revision = read_revision(ctx, deadline)
    if revision.current is None:
        raise StepFailed("verify: the deployment has no current ReplicaSet yet (did the rollout start?)")
    settle = _settle_seconds(revision.pods, window)
    if settle > 0:
        # rate() over a window reaching back before a series began extrapolates from the pods' first scrapes:
        # the first evaluation waits until the newest pod has a whole window of its own.
        ctx.note(f"verify: waiting {duration_text(round(settle))} until the newest pod has {duration_text(window)} "
                 "of metrics")
        ctx.sleep(settle, deadline)
    new_rs = str((revision.current.get("metadata") or {}).get("name", ""))
    new_scope = _scope(source, promql.pods_of_replicaset(new_rs))
    old = _old_replicaset(revision.replicasets, revision.current, ctx.facts.from_revision)
    changed_at = ctx.facts.changed_at or time.time()
    baselines: dict[str, float] = {}
    if old is not None:
        old_scope = _scope(source, promql.pods_of_replicaset(str((old.get("metadata") or {}).get("name", ""))))
        for check in checks:
            try:
                baselines[check.text] = _value(source, query_of(check, old_scope, baseline_window, source.names),
                                               changed_at, deadline)
            except TRANSIENT as exc:
                ctx.output.add(f"baseline of {check.metric} not read: {exc.message}")
                baselines[check.text] = math.nan
    said = ", ".join(f"{check.metric} {check.show(baselines.get(check.text, math.nan))}" for check in checks)
    ctx.note(f"verify: new pods {new_rs}-*; baseline (old version, {duration_text(baseline_window)} before the "
             f"change): {said if old is not None else 'none (no old version)'}")
    ctx.output.add(f"baseline: {said}")
    rounds = max(1, int(duration // interval))
    failed = 0
    with_data = 0
    last_problem = ""
    for number in range(1, rounds + 1):
        ctx.sleep(interval, deadline)
        parts: list[str] = []
        failing: list[str] = []
        missing = False
        for check in checks:
            try:
                value = _value(source, query_of(check, new_scope, window, source.names), None, deadline)
            except TRANSIENT as exc:
                parts.append(f"{check.metric} not read ({exc.message})")
                last_problem = exc.message
                missing = True
                continue
            except BackendError as exc:
                raise StepFailed(f"verify: {exc.message}") from None
            base = baselines.get(check.text, math.nan)
            if math.isnan(value):
                parts.append(f"{check.metric} no data yet")
                missing = True
                continue
            verdict = "ok"
            if check.breaks(value):
                errors = _errors(source, new_scope, window, value, deadline) if check.metric == "error_rate" else None
                if math.isfinite(base) and value <= base:
                    verdict = "over the limit but no worse than the old version"
                elif errors is not None and errors < MIN_ERRORS:
                    verdict = f"over the limit on {errors:.1f} failed request(s) only: too few to judge"
                else:
                    verdict = "FAIL"
                    failing.append(f"{check.text} (was {check.show(value)}"
                                   + (f", old version {check.show(base)})" if math.isfinite(base) else ")"))
            parts.append(f"{check.metric} {check.show(value)} (limit {check.op} {check.show(check.limit)}"
                         + (f", baseline {check.show(base)}" if math.isfinite(base) else "") + f") {verdict}")
        if not missing or failing:
            with_data += 1
        if failing:
            failed += 1
        line = f"verify {number}/{rounds}: " + " · ".join(parts)
        ctx.note(line)
        ctx.output.add(line)
        if failed >= allowed:
            raise StepFailed(f"verify failed {failed} of {number} checks: {'; '.join(failing)}")
    if with_data == 0:
        why = last_problem or (f"no {source.names.requests} / {source.names.duration}_bucket series for the new "
                               f"pods ({new_rs}-*) in the window: no traffic, or the service exposes no such metric")
        raise StepFailed(f"verify: no data in {rounds} evaluation(s): {why}")
    return f"verify passed: {with_data} evaluation(s) with data, {failed} failed (allowed {allowed - 1})"


def describe(args: Args, workload: Workload) -> str:
    checks = ", ".join(str(check) for check in args.get("checks") or [])
    interval = seconds(args.get("interval"), DEFAULT_INTERVAL)
    duration = seconds(args.get("duration"), DEFAULT_DURATION)
    return (f"verify {checks} on {workload.deployment}'s new pods every {duration_text(interval)} for "
            f"{duration_text(duration)} ({int(args.get('failures') or 2)} failed checks fail it)")
