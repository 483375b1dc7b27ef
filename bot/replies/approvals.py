"""Replies of approvals: the approval message of a request (what is asked, who may decide, what was
decided) and the answers of /svc approve, reject and cancel. Facts only; bot/render/approvals_view.py
lays them out."""

from __future__ import annotations

from dataclasses import dataclass

from bot.deploys.approvals import ConfigSummary, Decision
from bot.replies.base import Reply
from bot.replies.deploy import CancelReply, DeployRunReply, PlanLine


@dataclass(frozen=True)
class VoteFact:
    approver: str  # a Slack user id (or the terminal's acting user)
    vote: str  # "approve" | "reject"
    reason: str
    at: float




@dataclass(frozen=True)
class ApprovalMessageReply(Reply):
    """The approval message of one request, as the store has it now: the buttons while it is PENDING,
    who decided (and when, and why) once it is not."""

    request_id: str
    action: str  # "deploy" | "rollback"
    service: str
    env: str
    version: str  # deploy: the version; rollback: the revision ("" = previous)
    requester: str
    current_image: str  # what ran when the request was made ("" when unknown)
    target_image: str
    pipeline: str
    steps: tuple[PlanLine, ...]
    approvers: tuple[str, ...]  # principals: catalog groups, Slack user groups (S...), user ids
    quorum: int
    self_approval: bool | None  # None: not known (the reply it was made from does not say)
    expires_at: float | None
    state: str  # the request's State value
    reason: str = ""  # the request's last transition reason ("rejected by ...")
    votes: tuple[VoteFact, ...] = ()
    decided_by: str = ""  # who moved it out of PENDING ("svcbot" for an expiry)
    decided_at: float | None = None
    config: ConfigSummary | None = None
    channel: str = ""  # post it in this channel (the catalog's approvals channel); "" = where it was asked
    not_started: str = ""  # APPROVED, but its run could not start: why (the deploy lock was held)
    current_traffic: str = ""  # the current version's error rate and p99 when it was asked (Prometheus)

    @property
    def approvals(self) -> tuple[VoteFact, ...]:
        return tuple(vote for vote in self.votes if vote.vote == "approve")

    @property
    def rejection(self) -> VoteFact | None:
        return next((vote for vote in self.votes if vote.vote == "reject"), None)


@dataclass(frozen=True)
class ApprovalReply(Reply):
    """What /svc approve or reject did to a request awaiting approval.

    decision: VOTED (an approval recorded, more are needed), APPROVED (quorum reached: the run
    started, or `not_started` says why not), STARTED (an approved request whose start had failed,
    started now), REJECTED.
    """

    request_id: str
    action: str
    service: str
    env: str
    version: str
    user: str  # who acted
    decision: Decision
    target_image: str = ""  # a rollback's target image, resolved when it was asked (its revision is `version`)
    approvals: int = 0
    quorum: int = 1
    reason: str = ""  # a rejection's or withdrawal's reason, as typed
    not_started: str = ""  # why an approved run did not start (the deploy lock is held)
    superseded: str = ""  # why the request was ended instead of run: the deployment runs something else now
    run: DeployRunReply | None = None  # the run it started: finished when the terminal waited for it


@dataclass(frozen=True)
class WithdrawnReply(CancelReply):
    """/svc cancel of a request awaiting approval (PENDING, or APPROVED but not started): withdrawn before it
    ran. A CancelReply whose view also has the request's approval message updated."""

    action: str
    version: str
    user: str  # who withdrew it
