"""The approval message of a request, built from what the store has now (bot.deploys): what is asked,
who may decide, the votes, and the decision once made. Posted when a request turns PENDING, refreshed in
place (chat.update) after every decision.
"""

from __future__ import annotations

import threading
import time

import structlog

from bot.core.errors import BotError
from bot.deploys import approvals
from bot.deploys.approvals import NOT_STARTED_EVENT, POSTED_EVENT, ConfigSummary, terms_of
from bot.deploys.facade import Deploys
from bot.deploys.plan import Plan
from bot.deploys.store import State, Store
from bot.insight import metrics
from bot.render import slack as slack_render
from bot.render.views import to_document
from bot.replies.approvals import ApprovalMessageReply, VoteFact
from bot.replies.base import Reply
from bot.replies.deploy import DeployPendingReply, PlanLine, run_reply
from bot.slack.webapi import SlackPoster

log = structlog.get_logger("svcbot.app")


def approval_message(store: Store, request_id: str, *, current_image: str | None = None,
                     config: ConfigSummary | None = None, channel: str = "",
                     current_traffic: str | None = None) -> ApprovalMessageReply:
    """The approval message as the store has it now. Facts shown when it was posted (current image,
    config summary) come from its `approval.posted` audit event unless given."""
    request = store.request(request_id)
    terms = terms_of(request)
    events = store.audit(request.id)
    posted = next((event for event in reversed(events) if event.event == POSTED_EVENT), None)
    if posted is not None:
        if current_image is None:
            current_image = str(posted.detail.get("current_image") or "")
        if config is None:
            config = ConfigSummary.from_json(posted.detail.get("config"))
        if current_traffic is None:
            current_traffic = str(posted.detail.get("current_traffic") or "")
    decision = next((event for event in reversed(events) if event.from_state == State.PENDING.value), None)
    not_started = next((str(event.detail.get("reason") or "the deploy lock was held") for event in reversed(events)
                        if event.event == NOT_STARTED_EVENT), "") if request.state is State.APPROVED else ""
    plan = Plan.from_json(request.plan)
    steps = tuple(PlanLine(target=step.target, line=step.describe(plan.workload),
                           rollback_on_failure=step.rollback_on_failure) for step in plan.steps)
    votes = tuple(VoteFact(approver=vote.approver, vote=vote.vote, reason=vote.reason, at=vote.at)
                  for vote in store.votes(request.id))
    return ApprovalMessageReply(
        request_id=request.id, action=request.kind, service=request.service, env=request.env,
        version=request.version, requester=request.requester, current_image=current_image or "",
        target_image=plan.image, pipeline=plan.pipeline, steps=steps, approvers=terms.approvers,
        quorum=terms.quorum, self_approval=terms.self_approval, expires_at=request.expires_at,
        state=request.state.value, reason=request.reason, votes=votes,
        decided_by=decision.actor if decision is not None else "",
        decided_at=decision.at if decision is not None else None, config=config, channel=channel,
        not_started=not_started, current_traffic=current_traffic or "", public=True)


REFRESH_ATTEMPTS = 3  # chat.update rounds while the request keeps changing under us
SHOWN_REMEMBERED = 1000  # approval messages whose last shown state this process remembers


class ApprovalMessages:
    """The approval messages of one process: the first one of a PENDING request, and every update after."""

    def __init__(self, deploys: Deploys, poster: SlackPoster) -> None:
        self.deploys = deploys
        self.poster = poster
        self._shown: dict[str, tuple[str, int]] = {}  # request id -> (state, votes) its message last showed
        self._shown_lock = threading.Lock()

    def first(self, reply: DeployPendingReply) -> Reply:
        """A new PENDING request's approval message, from the store (what later updates show too), with
        the config summary, for the catalog's approvals channel when it names one."""
        catalog = self.deploys.catalog
        try:
            config = (approvals.config_summary(catalog, reply.service, reply.env, deadline=time.monotonic() + 5.0)
                      if reply.action == "deploy" else None)
            traffic = (metrics.current_traffic_line(catalog, self.deploys.backends.prometheus, reply.service,
                                                    reply.env, deadline=time.monotonic() + 3.0)
                       if reply.action == "deploy" else "")
            return approval_message(self.deploys.store(), reply.request_id, current_image=reply.current_image,
                                    config=config, channel=catalog.settings.approvals_channel or "",
                                    current_traffic=traffic)
        except BotError as exc:
            log.warning("approval.message_fallback", request_id=reply.request_id, reason=exc.message)
            return reply

    def posted(self, reply: ApprovalMessageReply, channel: str, ts: str) -> None:
        """Audit where the message went and the facts it showed, so later updates show the same."""
        store = self.deploys.store()
        approvals.record_posted(store, store.request(reply.request_id), channel, ts,
                                current_image=reply.current_image, config=reply.config,
                                current_traffic=reply.current_traffic)
        self._remember(reply.request_id, (reply.state, len(reply.votes)))

    def refresh(self, request_id: str, *, stale_only: bool = False) -> None:
        """Update a request's approval message in place (chat.update) to what the store says now: the votes,
        or the buttons replaced by who decided, when and why. Once its run has ended the progress reporter
        shows the outcome there, and this leaves it alone. Replicas may refresh at once: each one reads
        again after writing and writes again if the request moved on meanwhile, so the last write shows
        the last state (the run's outcome, if it ended under us). `stale_only`: only a request that has left
        PENDING, in a state this process has not shown yet."""
        try:
            store = self.deploys.store()
            written: tuple[str, int] | None = None
            for _round in range(REFRESH_ATTEMPTS):
                request = store.request(request_id)
                state = (request.state.value, len(store.votes(request_id)))
                if state == written or not request.thread_ts or request.approval is None:
                    return
                if stale_only and written is None and (
                        request.state is State.PENDING or self._shown.get(request_id) == state):
                    return
                if approvals.run_has_ended(store, request):
                    if written is None:
                        return  # the reporter's outcome is there, not ours to touch
                    reply: Reply = run_reply(store.snapshot(request_id), waited=True)  # we wrote over it: restore
                else:
                    reply = approval_message(store, request_id)
                self.poster.update(request.channel, request.thread_ts, slack_render.render(to_document(reply)))
                written = state
                self._remember(request_id, state)
        except BotError as exc:
            log.warning("approval.message_not_updated", request_id=request_id, reason=exc.message)

    def _remember(self, request_id: str, state: tuple[str, int]) -> None:
        with self._shown_lock:
            self._shown[request_id] = state
            while len(self._shown) > SHOWN_REMEMBERED:
                self._shown.pop(next(iter(self._shown)))
