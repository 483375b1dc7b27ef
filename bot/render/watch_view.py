"""Views of /svc watch: the incident message (buttons while open; resolved with its duration) and the answers of
watch, unwatch and watches.

The diagnosis lines are status's words about cluster objects and the log lines are what pods wrote: both are
backend text, shown escaped (never markup). The buttons carry only the incident id.
"""

from __future__ import annotations

from bot.core.tone import Tone
from bot.insight.kube_facts import human_age
from bot.render.approvals_view import clock, mention
from bot.render.document import Button, Buttons, Code, Document, Element, Fields, Heading, Lines, Note, Paragraph
from bot.render.views import view
from bot.replies.watch import IncidentReply, WatchesReply, scope
from bot.watch.book import ALL
from bot.watch.detect import CLUSTER_GONE

LOGS_ACTION = "svc_incident_logs"  # bot/slack/app.py runs these through the dispatcher as the clicking user
STATUS_ACTION = "svc_incident_status"
ROLLBACK_ACTION = "svc_incident_rollback"
SILENCE_HOUR_ACTION = "svc_incident_silence_1h"
SILENCE_RESOLVED_ACTION = "svc_incident_silence_resolved"
INCIDENT_ACTIONS = (LOGS_ACTION, STATUS_ACTION, ROLLBACK_ACTION, SILENCE_HOUR_ACTION, SILENCE_RESOLVED_ACTION)
SILENCED_FOR_EVER = 1e14


def incident_headline(reply: IncidentReply) -> str:
    state = "RESOLVED" if not reply.open else ("re-opened" if reply.reopened else "incident")
    if reply.service == ALL:
        where = f"cluster {reply.env}" if reply.kind == CLUSTER_GONE else f"storm in {reply.env}"
        return f"{state}: {where}: {reply.title}"
    return f"{state}: {reply.service} in {reply.env}: {reply.title}"


@view(IncidentReply)
def incident_view(reply: IncidentReply) -> Document:
    tone = Tone.OK if not reply.open else Tone.BAD
    elements: list[Element] = [Heading(incident_headline(reply)), Paragraph(reply.summary, tone=tone, strong=True)]
    since = reply.since if reply.since is not None else reply.opened_at
    pairs = [("since", f"{clock(min(since, reply.opened_at))} ({human_age(reply.now - since)} ago)")]
    if reply.pods:
        pairs.append(("pods", ", ".join(reply.pods[:5]) + (f" and {len(reply.pods) - 5} more"
                                                             if len(reply.pods) > 5 else "")))
    if not reply.open and reply.resolved_at is not None:
        pairs.append(("resolved", f"after {human_age(reply.resolved_at - reply.opened_at)}"))
    elements.append(Fields(tuple(pairs)))
    if reply.lines:
        elements.append(Lines(tuple((None, line) for line in reply.lines)))
    if reply.log_lines:
        elements.append(Note("last error lines (Loki):"))
        elements.append(Code("\n".join(reply.log_lines)))
    if reply.silenced_until is not None and reply.silenced_until > reply.now and reply.open:
        forever = reply.silenced_until >= SILENCED_FOR_EVER
        until = "until resolved" if forever else f"until {clock(reply.silenced_until)}"
        elements.append(Note(f"silenced {until} by {mention(reply.silenced_by)}", markup=True))
    if reply.open and reply.service == ALL:
        value = reply.id
        silence = (Button("Silence 1h", SILENCE_HOUR_ACTION, value),
                   Button("Silence until resolved", SILENCE_RESOLVED_ACTION, value))
        status = () if reply.kind == CLUSTER_GONE else (Button("Status", STATUS_ACTION, value),)
        elements.append(Buttons((*status, *silence), block_id=f"incident-{reply.id}"))
        elements.append(Note(f"incident {reply.id}" + ("" if reply.kind == CLUSTER_GONE
                                                        else f" · /svc status all {reply.env}")))
    elif reply.open:
        value = reply.id
        elements.append(Buttons((
            Button("Logs", LOGS_ACTION, value),
            Button("Status", STATUS_ACTION, value),
            Button("Rollback", ROLLBACK_ACTION, value, style="danger",
                   confirm=("Roll back?", f"Roll {reply.service} in {reply.env} back to its previous revision? "
                            "The same rules and approvals as /svc rollback apply.", "Roll back", "Cancel")),
            Button("Silence 1h", SILENCE_HOUR_ACTION, value),
            Button("Silence until resolved", SILENCE_RESOLVED_ACTION, value),
        ), block_id=f"incident-{reply.id}"))
        elements.append(Note(f"incident {reply.id} · /svc status {reply.service} {reply.env} · "
                             f"/svc logs {reply.service} {reply.env} --level error"))
    return Document(summary=f"{incident_headline(reply)}: {reply.summary}", elements=tuple(elements), public=True,
                    tone=tone)


@view(WatchesReply)
def watches_view(reply: WatchesReply) -> Document:
    elements: list[Element] = []
    if reply.changed:
        elements.append(Paragraph(reply.changed, tone=Tone.OK, strong=True))
    if reply.subscriptions:
        elements.append(Lines(tuple((None, f"watching {scope(sub.service, sub.env)} (since {clock(sub.created_at)}, "
                                           f"by {mention(sub.created_by)})") for sub in reply.subscriptions),
                              markup=True))
    else:
        elements.append(Paragraph("this channel watches nothing: /svc watch <service|all> [env] starts"))
    if reply.incidents:
        elements.append(Heading(f"open incidents ({len(reply.incidents)})"))
        elements.append(Lines(tuple(
            (Tone.BAD, f"{incident.service} in {incident.env}: {incident.kind}, open for "
                       f"{human_age(reply.now - incident.opened_at)} ({incident.id})")
            for incident in reply.incidents)))
    elif reply.subscriptions:
        elements.append(Note("no open incidents"))
    summary = reply.changed or f"{len(reply.subscriptions)} watch(es), {len(reply.incidents)} open incident(s)"
    return Document(summary=summary, elements=tuple(elements), public=reply.public)
