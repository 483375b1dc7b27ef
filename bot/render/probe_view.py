"""View of /svc probe: verdict, per-pod answers, what the bodies say, probe configuration, findings."""

from __future__ import annotations

from bot.core.tone import Tone
from bot.render.document import Document, Element, Heading, Lines, Note, Paragraph, Table
from bot.render.status_view import event_words
from bot.render.views import view
from bot.replies.probe import HttpCheck, ProbeReply

MAX_BODY_LINES = 4


def _answer(check: HttpCheck | None) -> str:
    if check is None:
        return "-"
    if check.status is None:
        return "no answer"
    mark = "" if check.ok else " ✗"
    return f"{check.status} {check.latency * 1000:.0f}ms{mark}"


@view(ProbeReply)
def probe_view(reply: ProbeReply) -> Document:
    verdict = reply.verdict
    elements: list[Element] = [
        Heading(f"{reply.service} probes in {reply.env}"),
        Paragraph(f"{verdict.word}: {verdict.detail}", tone=verdict.tone, strong=True),
    ]
    kinds = ("liveness", "readiness")
    paths = {check.kind: check.path for pod in reply.pods for check in pod.checks}
    columns = ("pod", "status", *(f"{kind} {paths.get(kind, '')}".strip() for kind in kinds))
    rows: list[tuple[str, ...]] = []
    for pod in reply.pods:
        by_kind = {check.kind: check for check in pod.checks}
        pod_status = pod.status + (f" ({pod.restarts} restarts)" if pod.restarts else "")
        if pod.skipped:
            rows.append((pod.pod, pod_status, f"not asked: {pod.skipped}", ""))
        else:
            rows.append((pod.pod, pod_status, *(_answer(by_kind.get(kind)) for kind in kinds)))
    if rows:
        elements.append(Table(columns=columns, rows=tuple(rows)))

    # What the bodies say, once per distinct answer rather than once per pod and endpoint.
    answers: dict[tuple[int | None, str, str], tuple[list[str], set[str]]] = {}
    dependencies: dict[tuple[str, bool, str], int] = {}
    for pod in reply.pods:
        for check in pod.checks:
            answered_kinds, answered_pods = answers.setdefault((check.status, check.excerpt, check.error),
                                                               ([], set()))
            if check.kind not in answered_kinds:
                answered_kinds.append(check.kind)
            answered_pods.add(pod.pod)
            if check.kind == "readiness" or not check.ok:
                for dep in check.dependencies:
                    dep_key = (dep.name, dep.ok, dep.detail)
                    dependencies[dep_key] = dependencies.get(dep_key, 0) + 1
    if dependencies:
        lines = tuple(
            (Tone.OK if ok else Tone.BAD, f"{name}: {'ok' if ok else detail or 'failing'}"
             + (f" ({count} answers)" if count > 1 else ""))
            for (name, ok, detail), count in sorted(dependencies.items(), key=lambda item: item[0][1])
        )
        elements.append(Paragraph("Dependency checks", strong=True))
        elements.append(Lines(lines))
    body_lines: list[tuple[Tone | None, str]] = []
    failed_first = sorted(answers.items(), key=lambda item: item[0][0] is not None and item[0][0] < 400)
    for (status, text, error), (answered_kinds, answered_pods) in failed_first:
        if not text and not error:
            continue
        count = f" ({len(answered_pods)} pods)" if len(answered_pods) > 1 else ""
        what = f"{' and '.join(answered_kinds)} {status if status is not None else 'no answer'}"
        body_lines.append((Tone.OK if status is not None and 200 <= status < 400 else Tone.BAD,
                           f"{what}{count}: {error or text}"))
    if body_lines:
        elements.append(Lines(tuple(body_lines[:MAX_BODY_LINES])))

    if reply.probes:
        elements.append(Table(
            columns=("probe", "target", "delay", "period", "timeout", "failures"),
            rows=tuple((spec.kind, spec.target, f"{spec.initial_delay}s", f"{spec.period}s", f"{spec.timeout}s",
                        str(spec.failure_threshold)) for spec in reply.probes),
            right_align=(2, 3, 4, 5),
        ))
    else:
        elements.append(Paragraph(f"container {reply.container} defines no probes", tone=Tone.WARN))
    if reply.findings:
        elements.append(Paragraph("Checks", strong=True))
        elements.append(Lines(tuple((finding.tone, f"{finding.title}: {finding.why}")
                                    for finding in reply.findings)))
    if reply.events:
        elements.append(Paragraph("Latest probe failures", strong=True))
        elements.append(Lines(tuple((Tone.WARN, event_words(event, reply.now)) for event in reply.events)))
    sampled = f" · {len(reply.pods)} of {reply.pods_total} pods shown" if reply.pods_total > len(reply.pods) else ""
    elements.append(Note(f"deployment {reply.deployment} · container {reply.container} · namespace "
                         f"{reply.namespace} · asked through the API server's pod proxy{sampled}"))
    summary = f"{reply.service} in {reply.env}: {verdict.word} ({verdict.detail})"
    return Document(summary=summary, elements=tuple(elements), public=reply.public, tone=verdict.tone)
