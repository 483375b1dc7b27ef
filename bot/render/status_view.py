"""Views of /svc status: compact per environment, detailed for one, and one row per service for `all`."""

from __future__ import annotations

from bot.core.tone import Tone
from bot.insight.kube_facts import DeployLock, EventLine, HpaSummary, RolloutState, human_age
from bot.insight.metrics import traffic_text
from bot.render.document import Document, Element, Fields, Heading, Lines, Note, Paragraph, Table
from bot.render.text import MARKERS
from bot.render.views import view
from bot.replies.status import EnvStatus, StatusAllReply, StatusReply

BAR_WIDTH = 10
MAX_PROBLEM_LINES = 12


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """'▓▓▓▓▓▓░░░░' for 3 of 5."""
    if total <= 0:
        return "░" * width
    filled = round(width * min(done, total) / total)
    return "▓" * filled + "░" * (width - filled)


def rollout_words(state: RolloutState | None) -> str:
    if state is None:
        return "?"
    if state.phase == "complete":
        return "complete"
    if state.phase == "failed":
        return "failed: progress deadline exceeded"
    if state.phase == "pending":
        return "spec change not yet observed"
    word = "paused" if state.phase == "paused" else "progressing"
    if state.updated < state.desired:
        return f"{word}: {state.updated} of {state.desired} updated"
    if state.total > state.updated:
        return f"{word}: {state.total - state.updated} old pending termination"
    return f"{word}: {state.available} of {state.updated} available"


def image_words(status: EnvStatus) -> str:
    if status.old_images:
        return f"{', '.join(status.old_images)} → {status.image}"
    return status.image or "?"


def ago(now: float, moment: float | None) -> str:
    return f"{human_age(now - moment)} ago" if moment is not None else "?"


def lock_words(lock: DeployLock, now: float) -> str:
    since = f" for {human_age(now - lock.acquired)}" if lock.acquired is not None else ""
    expires = f", expires in {human_age(lock.expires - now)}" if lock.expires is not None else ""
    return f"deploy lock held by {lock.holder}{since}{expires}"


def hpa_words(hpa: HpaSummary) -> str:
    metrics = f" · {', '.join(hpa.metrics)}" if hpa.metrics else ""
    return f"{hpa.current} running (min {hpa.min_replicas}, max {hpa.max_replicas}){metrics}"


def event_words(event: EventLine, now: float) -> str:
    count = f" ×{event.count}" if event.count > 1 else ""
    objects = event.objects[0] + (f" +{len(event.objects) - 1} more" if len(event.objects) > 1 else "")
    return f"{ago(now, event.last_seen)}  {event.reason}{count} on {objects}: {event.message}"


def _alert_tone(status: EnvStatus) -> Tone:
    return Tone.BAD if status.tone is Tone.BAD else Tone.WARN


def ready_words(status: EnvStatus, *, long: bool = False) -> str:
    """'3/3'; during a rollout in flight also how many pods of the new version are ready, since the ready
    count alone may be all old pods: '1/1 (0 of 1.4.3)'."""
    words = f"{status.ready}/{status.desired}"
    if status.new_ready is None:
        return words
    if long:
        return f"{words} ready ({status.new_ready} of the new version {status.image})"
    return f"{words} ({status.new_ready} of {status.image})"


def traffic_words(status: EnvStatus) -> str:
    """'0.31 % errors · p99 180 ms · 12.3 req/s' (Prometheus, last 5 minutes); '' without numbers."""
    return traffic_text(status.traffic) if status.traffic is not None else ""


def _traffic_lines(status: EnvStatus) -> list[tuple[Tone | None, str]]:
    if status.traffic is not None:
        return [(None, f"{status.env}: {traffic_words(status)} (last 5m)")]
    if status.traffic_problem:
        return [(Tone.UNKNOWN, f"{status.env}: no traffic numbers ({status.traffic_problem})")]
    return []


def _overview_cells(status: EnvStatus, now: float) -> tuple[str, ...]:
    if status.problem:
        return (MARKERS[status.tone], status.env, "-", "-", status.problem, "")
    return (MARKERS[status.tone], status.env, ready_words(status), image_words(status),
            rollout_words(status.rollout), ago(now, status.last_rollout))


def _summary_part(status: EnvStatus) -> str:
    if status.problem:
        return f"{status.env} {'unreachable' if status.unreachable else status.problem}"
    alert = f" ({status.alerts[0]})" if status.alerts else ""
    new = f" ({status.new_ready} of {status.image})" if status.new_ready is not None else ""
    return f"{status.env} {status.ready}/{status.desired} ready{new}{alert}"


@view(StatusReply)
def status_view(reply: StatusReply) -> Document:
    if reply.detailed and reply.envs and not reply.envs[0].problem:
        return _detail(reply, reply.envs[0])
    elements: list[Element] = [
        Heading(f"{reply.service}: status"),
        Table(columns=("", "env", "ready", "image", "rollout", "last rollout"),
              rows=tuple(_overview_cells(status, reply.now) for status in reply.envs), right_align=(2,),
              optional=(5,)),
    ]
    lines: list[tuple[Tone | None, str]] = []
    for status in reply.envs:
        lines.extend((_alert_tone(status), f"{status.env}: {alert}") for alert in status.alerts)
        if status.lock is not None:
            lines.append((Tone.INFO, f"{status.env}: {lock_words(status.lock, reply.now)}"))
        lines.extend(_traffic_lines(status))
    if lines:
        elements.append(Lines(tuple(lines)))
    where = [", ".join(f"{status.env}: {status.namespace}@{status.cluster}" for status in reply.envs)]
    if not reply.detailed:
        where.append(f"/svc status {reply.service} <env> shows pods, events and the autoscaler")
    elements.append(Note(" · ".join(where)))
    summary = f"{reply.service}: " + ", ".join(_summary_part(status) for status in reply.envs)
    return Document(summary=summary, elements=tuple(elements), public=reply.public, tone=reply.tone)


def _detail(reply: StatusReply, status: EnvStatus) -> Document:
    state = status.rollout
    headline = f"{ready_words(status, long=True) if status.new_ready is not None else ready_words(status) + ' ready'}" \
        f" · rollout {rollout_words(state)}"
    elements: list[Element] = [
        Heading(f"{reply.service} in {status.env}"),
        Paragraph(headline, tone=status.tone, strong=True),
    ]
    fields = [
        ("Image", image_words(status)),
        ("Revision", f"{status.revision} · rolled out {ago(reply.now, status.last_rollout)}"),
    ]
    if state is not None:
        fields.append(("Replicas", f"{state.desired} desired · {state.updated} updated · {state.ready} ready · "
                                   f"{state.available} available · {state.total} total"))
        fields.append(("Generation", f"{state.generation} (observed {state.observed_generation})"))
    if status.hpa is not None:
        fields.append(("Autoscaler", hpa_words(status.hpa)))
    if status.lock is not None:
        fields.append(("Deploy lock", lock_words(status.lock, reply.now).removeprefix("deploy lock ")))
    if status.traffic is not None or status.traffic_problem:
        fields.append(("Traffic (5m)", traffic_words(status) or f"n/a ({status.traffic_problem})"))
    elements.append(Fields(tuple(fields)))
    if state is not None and state.phase in ("progressing", "paused") and state.desired:
        elements.append(Paragraph(f"{progress_bar(state.updated, state.desired)} {state.updated}/{state.desired} "
                                  f"updated · {state.available} available"))
    if status.alerts:
        elements.append(Lines(tuple((_alert_tone(status), alert) for alert in status.alerts)))
    if status.pods:
        rows = tuple(
            (pod.name, f"{pod.ready_containers}/{pod.containers}", pod.describe_status(), str(pod.restarts)
             + (f" ({ago(reply.now, pod.last_finished)})" if pod.last_finished is not None else ""),
             human_age(reply.now - pod.created) if pod.created is not None else "?", pod.node or "-")
            for pod in status.pods
        )
        elements.append(Table(columns=("pod", "ready", "status", "restarts", "age", "node"), rows=rows,
                              optional=(5, 4)))
    else:
        elements.append(Paragraph("no pods", tone=Tone.WARN if status.desired else Tone.INFO))
    if status.events:
        elements.append(Paragraph("Recent warnings", strong=True))
        elements.append(Lines(tuple((Tone.WARN, event_words(event, reply.now)) for event in status.events)))
    elements.append(Note(f"deployment {status.deployment} · namespace {status.namespace} · "
                         f"cluster {status.cluster}"))
    summary = f"{reply.service} in {status.env}: {headline}" + (f" ({status.alerts[0]})" if status.alerts else "")
    return Document(summary=summary, elements=tuple(elements), public=reply.public, tone=status.tone)


def _cell(status: EnvStatus) -> str:
    if status.problem:
        return f"{MARKERS[status.tone]} {'unreachable' if status.unreachable else status.problem}"
    numbers = f" · {traffic_words(status)}" if status.traffic is not None else ""
    return f"{MARKERS[status.tone]} {status.ready}/{status.desired} {image_words(status)}{numbers}"


@view(StatusAllReply)
def status_all_view(reply: StatusAllReply) -> Document:
    single = len(reply.envs) == 1
    title = f"All services in {reply.envs[0]}" if single else "All services"
    if single:
        rows = []
        for row in reply.rows:
            cell = row.cells[0]
            if cell.problem:
                rows.append((MARKERS[cell.tone], row.service, "-", "-",
                             "unreachable" if cell.unreachable else cell.problem))
            else:
                rows.append((MARKERS[cell.tone], row.service, f"{cell.ready}/{cell.desired}", image_words(cell),
                             rollout_words(cell.rollout)))
        table = Table(columns=("", "service", "ready", "image", "rollout"), rows=tuple(rows), right_align=(2,))
        if any(row.cells[0].traffic is not None for row in reply.rows):
            table = Table(columns=(*table.columns, "traffic (5m)"), right_align=(2,), optional=(5,),
                          rows=tuple((*cells, traffic_words(row.cells[0])) for cells, row in zip(rows, reply.rows,
                                                                                               strict=True)))
    else:
        table = Table(columns=("service", *reply.envs),
                      rows=tuple((row.service, *(_cell(cell) for cell in row.cells)) for row in reply.rows))
    elements: list[Element] = [Heading(title), table]
    problems: list[tuple[Tone | None, str]] = []
    for row in reply.rows:
        for cell in row.cells:
            where = row.service if single else f"{row.service} ({cell.env})"
            problems.extend((_alert_tone(cell), f"{where}: {alert}") for alert in cell.alerts)
            if cell.lock is not None:
                problems.append((Tone.INFO, f"{where}: {lock_words(cell.lock, reply.now)}"))
    if len(problems) > MAX_PROBLEM_LINES:
        extra = len(problems) - MAX_PROBLEM_LINES
        problems = [*problems[:MAX_PROBLEM_LINES], (None, f"… and {extra} more")]
    problems.extend((Tone.UNKNOWN, f"{env}: {why}") for env, why in reply.unreachable)
    problems.extend((Tone.UNKNOWN, f"{env}: no traffic numbers ({why})") for env, why in reply.traffic_problems)
    if problems:
        elements.append(Lines(tuple(problems)))
    bad = sum(1 for row in reply.rows if row.tone in (Tone.BAD, Tone.WARN))
    count = reply.prometheus_queries
    queries = f" · {count} Prometheus quer{'y' if count == 1 else 'ies'}" if count else ""
    elements.append(Note(f"{len(reply.rows)} services · {bad} need attention · {reply.api_requests} API requests"
                         f"{queries}"))
    unreachable = f", unreachable: {', '.join(env for env, _ in reply.unreachable)}" if reply.unreachable else ""
    summary = f"{title}: {len(reply.rows)} services, {bad} need attention{unreachable}"
    tone = Tone.BAD if any(row.tone is Tone.BAD for row in reply.rows) else (Tone.WARN if bad else Tone.OK)
    return Document(summary=summary, elements=tuple(elements), public=reply.public, tone=tone)
