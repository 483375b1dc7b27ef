"""Views of approvals: the approval message (buttons while PENDING, the decision once made) and the
answers of /svc approve, reject and cancel.

Every message about a request names its id and the exact commands that decide it. The buttons carry only
the request id; the Approve button asks for confirmation (Slack's confirm object). People are shown as
Slack mentions (svcbot's own words, so `markup=True`); reasons people typed are untrusted and always
escaped, in elements of their own.
"""

from __future__ import annotations

import datetime as dt
import re

from bot.core.tone import Tone
from bot.deploys.approvals import ConfigSummary, Decision
from bot.deploys.plan import SUPERSEDED
from bot.deploys.progress import rollback_target
from bot.insight.kube_facts import image_tag
from bot.render.document import Button, Buttons, Code, Delivery, Document, Element, Fields, Lines, Note, Paragraph
from bot.render.views import to_document, view
from bot.replies.approvals import ApprovalMessageReply, ApprovalReply, WithdrawnReply
from bot.replies.deploy import PlanLine

NOT_STARTED = "not started"  # the reason of an approved request whose run never began (bot/deploys/background.py)
APPROVE_ACTION = "svc_approve"  # bot/slack/app.py's ACTIONS map these to the verbs
REJECT_ACTION = "svc_reject"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
RUN_STATES = frozenset({"RUNNING", "SUCCEEDED", "FAILED", "ROLLED_BACK", "INTERRUPTED"})
RUN_TONES = {"RUNNING": Tone.INFO, "SUCCEEDED": Tone.OK, "FAILED": Tone.BAD, "ROLLED_BACK": Tone.WARN,
             "INTERRUPTED": Tone.BAD, "CANCELLED": Tone.WARN}


def mention(who: str) -> str:
    """A user, Slack user group or catalog group as Slack shows it (the terminal shows @name)."""
    if _USER_ID.match(who):
        return f"<@{who}>"
    if _GROUP_ID.match(who):
        return f"<!subteam^{who}>"
    if re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", who):
        return who if ":" in who or who == "svcbot" else f"@{who}"
    return "someone"  # never put odd text where mentions are let through


def clock(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def what(action: str, service: str, env: str, version: str, target_image: str = "") -> str:
    if action == "deploy":
        return f"deploy of {service} {version} to {env}"
    return f"rollback of {service} in {env}" + (f" to {rollback_target(target_image, version)}" if version else "")


def commands_note(request_id: str) -> Note:
    return Note(f"/svc approve {request_id} · /svc reject {request_id} [reason] · "
                f"/svc cancel {request_id} withdraws it (requester)")


def _version_change(reply: ApprovalMessageReply) -> str:
    current = image_tag(reply.current_image) if reply.current_image else "?"
    if reply.action == "deploy":
        target = image_tag(reply.target_image) if reply.target_image else reply.version
    else:
        target = rollback_target(reply.target_image, reply.version)
    return f"{current} → {target}"


def _plan(steps: tuple[PlanLine, ...]) -> Code:
    lines: list[str] = []
    target = None
    for index, step in enumerate(steps, start=1):
        if step.target != target:
            target = step.target
            lines.append(f"{target}:" + ("  (on failure: rollback)" if step.rollback_on_failure else ""))
        lines.append(f"  {index}. {step.line}")
    return Code("\n".join(lines))


def config_line(summary: ConfigSummary, service: str) -> str:
    """'config staging → prod: 2 changed, 1 only in prod (db.pool.max, log.level)'."""
    head = f"config {summary.base_env} → {summary.env}: "
    if summary.note:
        return head + summary.note
    if not summary.differs:
        return head + f"the profiles match ({summary.unchanged} keys)"
    counts = [f"{summary.changed} changed"]
    if summary.only_env:
        counts.append(f"{summary.only_env} only in {summary.env}")
    if summary.only_base:
        counts.append(f"{summary.only_base} only in {summary.base_env}")
    keys = ", ".join(summary.keys) + (f", +{summary.more} more" if summary.more else "")
    return head + ", ".join(counts) + (f" ({keys})" if keys else "") + \
        f" · /svc diff {service} {summary.base_env} {summary.env} shows them"


def _approvers_line(reply: ApprovalMessageReply) -> str:
    who = ", ".join(mention(principal) for principal in reply.approvers) or "nobody"
    rule = f"{reply.quorum} approval{'s' if reply.quorum > 1 else ''} needed"
    if reply.self_approval is False:
        rule += ", not the requester's own"
    return f"Approvers: {who} ({rule})"


def _headline(reply: ApprovalMessageReply) -> tuple[str, Tone]:
    asked = what(reply.action, reply.service, reply.env, reply.version, reply.target_image)
    state = reply.state
    if state == "PENDING":
        return f"approval required: {reply.env} {reply.action}s need approval · {asked}", Tone.WARN
    if state == "APPROVED":
        return f"approved: {asked}", Tone.WARN if reply.not_started else Tone.INFO
    if state in RUN_STATES:
        suffix = "running" if state == "RUNNING" else f"ended {state}"
        return f"approved: {asked}, {suffix}", RUN_TONES.get(state, Tone.INFO)
    if state == "REJECTED":
        return f"rejected: {asked}", Tone.BAD
    if state == "EXPIRED":
        return f"expired: {asked} was not approved in time", Tone.WARN
    if state == "CANCELLED" and reply.reason.startswith(SUPERSEDED):
        return f"superseded: {asked}", Tone.WARN
    if state == "CANCELLED" and reply.reason.startswith(NOT_STARTED):
        return f"not started: {asked}", Tone.WARN
    if state == "CANCELLED":
        return f"withdrawn: {asked}", Tone.WARN
    return f"{state.lower()}: {asked}", Tone.UNKNOWN


def _decision(reply: ApprovalMessageReply) -> list[Element]:
    """The line(s) that replace the buttons once the request is decided."""
    state = reply.state
    when = clock(reply.decided_at)
    if state == "APPROVED" or state in RUN_STATES:
        approvers = ", ".join(f"{mention(vote.approver)} at {clock(vote.at)}" for vote in reply.approvals)
        lines = [(Tone.OK, f"approved by {approvers or mention(reply.decided_by)}")]
        if state == "APPROVED" and reply.not_started:
            lines.append((Tone.WARN, f"the run has not started: /svc approve {reply.request_id} starts it"))
        elif state == "APPROVED":
            lines.append((Tone.INFO, "the run is starting: progress in this thread"))
        elif state == "RUNNING":
            lines.append((Tone.INFO, "the deploy is running: progress in this thread"))
        else:
            lines.append((RUN_TONES.get(state, Tone.INFO), f"the run ended {state}: details in this thread"))
        elements: list[Element] = [Lines(tuple(lines), markup=True)]
        if state == "APPROVED" and reply.not_started:
            elements.append(Paragraph(f"why: {reply.not_started}"))  # backend text: escaped
        return elements
    if state == "REJECTED":
        rejection = reply.rejection
        by = mention(rejection.approver) if rejection is not None else mention(reply.decided_by)
        elements = [Lines(((Tone.BAD, f"rejected by {by} at {when}"),), markup=True)]
        if rejection is not None and rejection.reason:
            elements.append(Paragraph(f"why: {rejection.reason}"))  # typed by a person: escaped
        elif rejection is not None:
            elements.append(Note("no reason given"))
        return elements
    if state == "EXPIRED":
        return [Lines(((Tone.WARN, f"expired at {clock(reply.expires_at)} with {len(reply.approvals)} of "
                                   f"{reply.quorum} approvals; nothing was deployed"),), markup=True)]
    if state == "CANCELLED" and reply.reason.startswith((SUPERSEDED, NOT_STARTED)):
        # svcbot's own words, with image tags from the cluster: escaped like any backend text
        return [Lines(((Tone.WARN, f"not run at {when}: nothing was deployed"),)), Paragraph(reply.reason)]
    if state == "CANCELLED":
        by = mention(reply.decided_by) if reply.decided_by else "its requester"
        return [Lines(((Tone.WARN, f"withdrawn by {by} at {when}; nothing was deployed"),), markup=True)]
    return []


def _buttons(reply: ApprovalMessageReply) -> Buttons:
    asked = what(reply.action, reply.service, reply.env, reply.version, reply.target_image)
    confirm = ("Approve this request?",
               f"Approve {reply.request_id}: {asked}. It runs the plan shown in the message.",
               "Approve", "Not yet")
    return Buttons((
        Button("Approve", APPROVE_ACTION, reply.request_id, style="primary", confirm=confirm),
        Button("Reject", REJECT_ACTION, reply.request_id, style="danger"),
    ), block_id=f"approval-{reply.request_id}")


@view(ApprovalMessageReply)
def approval_message_view(reply: ApprovalMessageReply) -> Document:
    headline, tone = _headline(reply)
    elements: list[Element] = [
        Paragraph(headline, tone=tone, strong=True),
        Fields((("Request", reply.request_id), ("Service", f"{reply.service} in {reply.env}"),
                ("Version", _version_change(reply)), *((("Pipeline", reply.pipeline),) if reply.pipeline else ()),
                ("Expires", clock(reply.expires_at) if reply.expires_at is not None else "never"))),
        Lines(((None, f"Requested by {mention(reply.requester)}"), (None, _approvers_line(reply))), markup=True),
    ]
    if reply.config is not None:
        elements.append(Paragraph(config_line(reply.config, reply.service)))
    if reply.current_traffic:
        elements.append(Paragraph(reply.current_traffic))
    elements.append(_plan(reply.steps))
    if reply.state == "PENDING":
        if reply.approvals:
            done = ", ".join(mention(vote.approver) for vote in reply.approvals)
            elements.append(Lines(((Tone.OK, f"approved so far by {done} ({len(reply.approvals)} of "
                                             f"{reply.quorum})"),), markup=True))
        elements.append(_buttons(reply))
        elements.append(commands_note(reply.request_id))
    else:
        elements.extend(_decision(reply))
        elements.append(Note(f"request {reply.request_id} · /svc history {reply.service} {reply.env}"))
    delivery = (Delivery(post=True, request_id=reply.request_id, channel=reply.channel)
                if reply.state == "PENDING" else Delivery())
    return Document(summary=f"{reply.service} {reply.env}: {headline} (request {reply.request_id})",
                    elements=tuple(elements), public=reply.public, tone=tone, delivery=delivery)


@view(ApprovalReply)
def approval_reply_view(reply: ApprovalReply) -> Document:
    asked = what(reply.action, reply.service, reply.env, reply.version, reply.target_image)
    tally = f"{reply.approvals} of {reply.quorum} approvals"
    if reply.decision is Decision.VOTED:
        missing = reply.quorum - reply.approvals
        title = (f"you approved {reply.request_id} ({asked}): {tally}; waiting for {missing} more "
                 f"approver{'s' if missing > 1 else ''}")
        tone = Tone.INFO
    elif reply.superseded:
        title, tone = f"{reply.request_id} was not run ({asked}): {reply.superseded}", Tone.BAD
    elif reply.decision in (Decision.APPROVED, Decision.STARTED):
        verb = reply.decision.value
        title = f"you {verb} {reply.request_id}: {asked}"
        tone = Tone.OK if not reply.not_started else Tone.WARN
    elif reply.decision is Decision.REJECTED:
        title, tone = f"you rejected {reply.request_id}: {asked}; nothing will be deployed", Tone.WARN
    else:
        title, tone = f"{reply.decision.value}: {reply.request_id} ({asked})", Tone.INFO
    elements: list[Element] = [Paragraph(title, tone=tone, strong=True)]
    if reply.reason:
        elements.append(Paragraph(f"reason: {reply.reason}"))  # as typed: escaped
    if reply.superseded:
        elements.append(Note(f"{reply.request_id} is CANCELLED; nothing was deployed"))
    if reply.not_started:
        elements.append(Paragraph(f"the run did not start: {reply.not_started}", tone=Tone.WARN))
        elements.append(Note(f"it stays approved: /svc approve {reply.request_id} starts it once the lock is "
                             f"free, /svc cancel {reply.request_id} withdraws it"))
    if reply.run is not None and reply.run.waited:
        elements.extend(to_document(reply.run).elements)
    elif reply.run is not None:
        elements.append(Note(f"the {reply.action} is running: progress in the request message's thread · "
                             f"/svc cancel {reply.request_id} stops it"))
    elif reply.decision is Decision.VOTED:
        elements.append(commands_note(reply.request_id))
    document_tone = tone
    if reply.run is not None and reply.run.waited:
        document_tone = RUN_TONES.get(reply.run.state, tone)
    # The approval message shows the decision too: the Slack wiring updates it after this answer.
    return Document(summary=title, elements=tuple(elements), public=reply.public, tone=document_tone,
                    delivery=Delivery(refreshes=reply.request_id))


@view(WithdrawnReply)
def withdrawn_view(reply: WithdrawnReply) -> Document:
    asked = what(reply.action, reply.service, reply.env, reply.version)
    title = f"{reply.request_id} withdrawn: {asked}; nothing will be deployed"
    return Document(summary=title, elements=(Paragraph(title, tone=Tone.WARN, strong=True),), public=reply.public,
                    tone=Tone.WARN, delivery=Delivery(refreshes=reply.request_id))
