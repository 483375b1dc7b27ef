"""Views of /svc deploy, rollback, history and cancel: plans like `make -n`, runs step by step."""

from __future__ import annotations

from bot.core.tone import Tone
from bot.deploys.progress import rollback_target
from bot.insight.kube_facts import human_age, image_tag
from bot.render.approvals_view import approval_message_view
from bot.render.document import Code, Delivery, Document, Element, Fields, Heading, Lines, Note, Paragraph, Table
from bot.render.views import view
from bot.replies.approvals import ApprovalMessageReply
from bot.replies.deploy import (
    CancelReply,
    DeployPendingReply,
    DeployPlanReply,
    DeployRunReply,
    HistoryEntry,
    HistoryReply,
    PlanLine,
)

STATE_TONES = {
    "SUCCEEDED": Tone.OK, "RUNNING": Tone.INFO, "APPROVED": Tone.INFO, "PENDING": Tone.INFO,
    "FAILED": Tone.BAD, "ROLLED_BACK": Tone.WARN, "INTERRUPTED": Tone.BAD, "CANCELLED": Tone.WARN,
    "REJECTED": Tone.WARN, "EXPIRED": Tone.WARN,
}
STEP_TONES = {"SUCCEEDED": Tone.OK, "FAILED": Tone.BAD, "RUNNING": Tone.INFO, "CANCELLED": Tone.WARN,
              "INTERRUPTED": Tone.BAD}
TAIL_LINES_SHOWN = 15


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 120 else human_age(value)


def _tag(image: str) -> str:
    return image_tag(image) if image else "?"


def _plan_elements(steps: tuple[PlanLine, ...]) -> list[Element]:
    lines: list[str] = []
    target = None
    for index, step in enumerate(steps, start=1):
        if step.target != target:
            target = step.target
            lines.append(f"{target}:" + ("  (on failure: rollback)" if step.rollback_on_failure else ""))
        lines.append(f"  {index}. {step.line}")
    return [Code("\n".join(lines))]


@view(DeployPlanReply)
def plan_view(reply: DeployPlanReply) -> Document:
    what = (f"deploy {reply.service} {reply.version} to {reply.env}" if reply.action == "deploy"
            else f"rollback of {reply.service} in {reply.env}")
    current = _tag(reply.current_image) if reply.current_image else f"unknown ({reply.note})"
    if reply.action == "rollback":
        target = rollback_target(reply.target_image, reply.version)
    else:
        target = _tag(reply.target_image) if reply.target_image else reply.version
    elements: list[Element] = [
        Heading(f"dry run: {what}"),
        Fields((("Pipeline", reply.pipeline), ("Deployment", f"{reply.deployment} in namespace {reply.namespace}"),
                ("Version", f"{current} → {target}"), ("Steps", str(len(reply.steps))))),
        *_plan_elements(reply.steps),
        Note("dry run: nothing was changed; the same command without --dry-run does it"),
    ]
    return Document(summary=f"dry run: {what} ({len(reply.steps)} steps)", elements=tuple(elements),
                    public=reply.public, tone=Tone.INFO)


@view(DeployPendingReply)
def pending_view(reply: DeployPendingReply) -> Document:
    """The approval message as the request was made (the Slack wiring posts the store's fuller version)."""
    return approval_message_view(ApprovalMessageReply(
        request_id=reply.request_id, action=reply.action, service=reply.service, env=reply.env,
        version=reply.version, requester=reply.requester, current_image=reply.current_image,
        target_image=reply.target_image, pipeline="", steps=reply.steps, approvers=reply.approvers,
        quorum=reply.quorum, self_approval=None, expires_at=reply.expires_at, state="PENDING",
        public=reply.public))


def _mention(user: str) -> str:
    """Slack user ids as mentions; terminal users and svcbot as they are."""
    return f"<@{user}>" if user[:1] in "UW" and user.isalnum() and user.isupper() else user


def _threaded(request_id: str) -> Delivery:
    """Post with chat.postMessage (its ts is the thread progress goes to), and tie it to the request."""
    return Delivery(post=True, request_id=request_id)


@view(DeployRunReply)
def run_view(reply: DeployRunReply) -> Document:
    tone = STATE_TONES.get(reply.state, Tone.UNKNOWN)
    what = f"{reply.action} {reply.request_id}: {reply.service} in {reply.env}"
    if not reply.finished:
        headline = (f"{what} started ({reply.change})" if not reply.waited
                    else f"{what} still running after the command's time ran out ({reply.change})")
        where = ("progress follows in this thread" if not reply.waited
                 else f"it goes on; /svc history {reply.service} {reply.env} shows how it ends")
        elements: list[Element] = [
            Paragraph(headline, tone=tone, strong=True),
            Lines(tuple((None, f"{step.seq + 1}. {step.target}: {step.description}") for step in reply.steps)),
            Note(f"{where} · /svc cancel {reply.request_id} stops it"),
        ]
        return Document(summary=headline, elements=tuple(elements), public=reply.public, tone=tone,
                        delivery=_threaded(reply.request_id) if not reply.waited else Delivery())
    duration = f" in {_seconds(reply.duration)}" if reply.duration is not None else ""
    headline = f"{what} {reply.state}{duration}: {reply.change}"
    elements = [Paragraph(headline, tone=tone, strong=True)]
    if reply.failure:
        elements.append(Paragraph(f"failed: {reply.failure}", tone=Tone.BAD))
    if reply.rollback:
        restored = not reply.rollback.startswith("failed")
        elements.append(Paragraph(reply.rollback, tone=Tone.OK if restored else Tone.BAD))
    elements.append(Table(
        columns=("", "step", "state", "took"),
        rows=tuple((f"{step.seq + 1}", f"{step.target}: {step.description}", step.state.lower(),
                    _seconds(step.duration)) for step in reply.steps),
        right_align=(3,)))
    failed = reply.failed_step
    if failed is not None and failed.output_tail.strip():
        tail = "\n".join(failed.output_tail.splitlines()[-TAIL_LINES_SHOWN:])
        elements.append(Paragraph(f"output of step {failed.seq + 1} ({failed.kind}), last lines:"))
        elements.append(Code(tail))
    approved = f" · approved by {', '.join(_mention(user) for user in reply.approved_by)}" if reply.approved_by else ""
    elements.append(Note(f"requested by {_mention(reply.requester)}{approved} · /svc history {reply.service} "
                         f"{reply.env}", markup=True))
    return Document(summary=headline, elements=tuple(elements), public=reply.public, tone=tone)


def _history_row(entry: HistoryEntry, now: float) -> tuple[str, ...]:
    when = f"{human_age(now - entry.when)} ago" if entry.when is not None else "?"
    outcome = entry.outcome.lower().replace("_", " ") if entry.outcome else ""
    marker = "▶ " if entry.current else ""
    return (when, entry.env, f"{marker}{entry.version or '?'}", str(entry.revision or "-"), entry.action,
            entry.who, outcome, _seconds(entry.duration), entry.request_id or "-")


@view(HistoryReply)
def history_view(reply: HistoryReply) -> Document:
    scope = f"{reply.service} in {reply.env}" if reply.env else reply.service
    elements: list[Element] = [Heading(f"history of {scope}")]
    if reply.entries:
        elements.append(Table(
            columns=("when", "env", "version", "rev", "action", "who", "outcome", "took", "id"),
            rows=tuple(_history_row(entry, reply.now) for entry in reply.entries), right_align=(3, 7),
            optional=(7, 3, 1)))  # in a narrow terminal: took, rev and env go first
        details = [(STATE_TONES.get(entry.outcome, Tone.INFO), f"{entry.request_id}: {entry.detail}")
                   for entry in reply.entries if entry.detail and entry.request_id]
        if details:
            elements.append(Lines(tuple(details[:8])))
    else:
        elements.append(Paragraph("no deploys recorded yet", tone=Tone.INFO))
    if reply.notes:
        elements.append(Lines(tuple((Tone.WARN, note) for note in reply.notes)))
    elements.append(Note("▶ marks the revision running now; revisions made outside svcbot come from the "
                         "cluster's ReplicaSets"))
    newest = reply.entries[0] if reply.entries else None
    summary = f"history of {scope}: {len(reply.entries)} entries" + (
        f", latest {newest.version} in {newest.env} ({newest.outcome.lower() or newest.action})" if newest else "")
    return Document(summary=summary, elements=tuple(elements), public=reply.public, tone=Tone.INFO)


@view(CancelReply)
def cancel_view(reply: CancelReply) -> Document:
    tone = Tone.WARN if reply.state in ("CANCELLED", "RUNNING") else STATE_TONES.get(reply.state, Tone.INFO)
    title = (f"{reply.request_id} ({reply.service} in {reply.env}): "
             + ("stopping" if reply.state == "RUNNING" else reply.state))
    elements: list[Element] = [Paragraph(title, tone=tone, strong=True)]
    if reply.detail:
        elements.append(Paragraph(reply.detail))
    return Document(summary=title, elements=tuple(elements), public=reply.public, tone=tone)
