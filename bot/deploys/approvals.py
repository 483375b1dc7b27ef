"""Approvals: who may decide a PENDING request, how votes become a decision, and when requests expire.

The request governs its own approval: its `approval` block (approvers, quorum, self_approval, expires),
stored when it was made, names who decides; the approvers are resolved through the policy (catalog
groups and Slack user groups). The store is the authority, so clicks on two bot replicas, double clicks
and a restart in between all come out the same:

- a vote is one row per (request, approver), by the table's primary key: a second click changes nothing;
- the requester's own approval is refused unless the rule says `self_approval: true`;
- `quorum` distinct approvers' votes move PENDING -> APPROVED in one conditional UPDATE that also
  requires the request to be unexpired; exactly one caller wins it and only that caller starts the run;
- one reject ends it (PENDING -> REJECTED, same conditions);
- a request past its `expires_at` is refused with "this request expired" whether or not a sweep has run
  (the check is inside the UPDATE), and `expire_due` (the sweep) marks such requests EXPIRED.

Every vote, decision and expiry is an audit event in the store (and a log line, written by the store).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from bot.core.errors import BackendError, Conflict, Forbidden, UserError
from bot.core.policy import Policy
from bot.deploys.progress import rollback_target
from bot.deploys.store import FINAL, RequestRecord, State, Store, Vote
from bot.insight.configdiff import compare, flatten
from bot.insight.profiles import load_profile

if TYPE_CHECKING:
    from bot.core.catalog import Catalog

log = structlog.get_logger("svcbot.approvals")

CONFIG_KEYS_SHOWN = 5
REASON_LIMIT = 300  # characters of a rejection or withdrawal reason kept
POSTED_EVENT = "approval.posted"  # audit: where the approval message went and the facts it showed
NOT_STARTED_EVENT = "run.not_started"  # audit: an approved request whose run could not start (lock held)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class Decision(enum.StrEnum):
    """What a vote (or the approve that follows it) did."""

    VOTED = "voted"  # an approval recorded, the quorum not reached yet
    APPROVED = "approved"  # this vote reached the quorum and won the transition: the run is to start
    START_AGAIN = "start"  # an APPROVED request whose start had failed, to be started again
    STARTED = "started"  # (replies) the run started after START_AGAIN
    REJECTED = "rejected"


@dataclass(frozen=True)
class VoteResult:
    """What a vote did (see Decision), with the request as it is after it and the approvals counted."""

    request: RequestRecord
    decision: Decision
    approvals: int
    quorum: int


# --- reading a request's approval ----------------------------------------------------------------------

@dataclass(frozen=True)
class Terms:
    """A request's approval block as stored with it."""

    approvers: tuple[str, ...]
    quorum: int
    self_approval: bool
    expires: float | None


def terms_of(request: RequestRecord) -> Terms:
    """The approval block stored with the request; UserError when it was made without one."""
    block = request.approval
    if not block:
        raise UserError(f"{request.id} needs no approval: it was made where the catalog asks for none "
                        f"(it is {request.state.value})")
    expires = block.get("expires")
    return Terms(approvers=tuple(str(who) for who in block.get("approvers", ())),
                 quorum=max(1, int(block.get("quorum", 1))), self_approval=bool(block.get("self_approval", False)),
                 expires=float(expires) if expires is not None else None)



def mention(user: str) -> str:
    """A user as Slack shows them (`<@U123>`); other actors (terminal users, svcbot) as they are."""
    return f"<@{user}>" if _USER_ID.match(user) else user


def clock(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(request: RequestRecord) -> str:
    """'deploy of payment 1.4.2 to prod' / 'rollback of payment in prod'."""
    if request.kind == "deploy":
        return f"deploy of {request.service} {request.version} to {request.env}"
    target = f" to {rollback_target(str(request.plan.get('image') or ''), request.version)}" if request.version else ""
    return f"rollback of {request.service} in {request.env}{target}"


def eligible(policy: Policy, terms: Terms, request: RequestRecord, user: str) -> bool:
    return policy.matches(user, terms.approvers) and (terms.self_approval or user != request.requester)


def approvals_counted(policy: Policy, terms: Terms, request: RequestRecord, votes: Sequence[Vote]) -> list[str]:
    """The distinct approvers whose approve votes count toward the quorum (each was eligible when it voted;
    checked again so someone removed from the approvers since no longer counts)."""
    return [vote.approver for vote in votes
            if vote.vote == "approve" and eligible(policy, terms, request, vote.approver)]


# --- deciding --------------------------------------------------------------------------------------------

def approve(store: Store, policy: Policy, request_id: str, user: str, *, now: float | None = None) -> VoteResult:
    """Record `user`'s approval; reach the quorum -> APPROVED (once, and only while unexpired)."""
    now = time.time() if now is None else now
    request = store.request(request_id)
    terms = terms_of(request)
    if request.state is State.APPROVED and _start_failed(store, request):
        # Approved earlier, but its run could not start (the deploy lock was held): an approver or the
        # requester may start it now. Not offered while the first start may still be under way.
        if not (policy.matches(user, terms.approvers) or user == request.requester):
            raise Forbidden(_not_an_approver(policy, terms, request))
        return VoteResult(request, Decision.START_AGAIN, len(store.votes(request.id)), terms.quorum)
    ensure_open(store, request, now)
    _ensure_may_approve(policy, terms, request, user)
    if not store.add_vote(request.id, user, "approve", now=now):
        earlier = next((vote for vote in store.votes(request.id) if vote.approver == user), None)
        ensure_open(store, store.request(request.id), now)
        if earlier is not None and earlier.vote == "reject":
            raise Conflict(f"you already rejected {request.id}")
        counted = approvals_counted(policy, terms, request, store.votes(request.id))
        if len(counted) < terms.quorum:
            raise Conflict(f"you already approved {request.id}: {len(counted)} of {terms.quorum} approvals so "
                           f"far" + _waiting(terms.quorum - len(counted)))
        # The quorum is there but the request is still PENDING: the vote that reached it was stored and the
        # process stopped before the transition (a crash). Approving again finishes what that vote began.
        log.info("approval.quorum_resumed", request_id=request.id, approver=user)
    counted = approvals_counted(policy, terms, request, store.votes(request.id))
    if len(counted) < terms.quorum:
        log.info("approval.vote_counted", request_id=request.id, approver=user, approvals=len(counted),
                 quorum=terms.quorum)
        return VoteResult(store.request(request.id), Decision.VOTED, len(counted), terms.quorum)
    if store.transition(request.id, State.APPROVED, actor=user, expected=(State.PENDING,), unexpired=True,
                        reason=f"approved by {', '.join(counted)}", detail={"approvers": ", ".join(counted)},
                        now=now):
        return VoteResult(store.request(request.id), Decision.APPROVED, len(counted), terms.quorum)
    # Someone else decided it first, or it expired between our check and our UPDATE.
    ensure_open(store, store.request(request.id), now)
    raise Conflict(f"{request.id} changed while your vote was counted; look at its message for what happened")


def reject(store: Store, policy: Policy, request_id: str, user: str, reason: str = "", *,
           now: float | None = None) -> VoteResult:
    """One approver's reject ends the request (PENDING -> REJECTED, once, only while unexpired)."""
    now = time.time() if now is None else now
    reason = clean_reason(reason)
    request = store.request(request_id)
    terms = terms_of(request)
    ensure_open(store, request, now)
    if not policy.matches(user, terms.approvers):
        hint = f" (to withdraw your own request: /svc cancel {request.id})" if user == request.requester else ""
        raise Forbidden(_not_an_approver(policy, terms, request) + hint)
    if not store.add_vote(request.id, user, "reject", reason, now=now):
        ensure_open(store, store.request(request.id), now)
        raise Conflict(f"you already voted on {request.id}; a vote cannot be changed "
                       f"(/svc cancel {request.id} is for its requester)")
    why = f"rejected by {user}" + (f": {reason}" if reason else "")
    if store.transition(request.id, State.REJECTED, actor=user, expected=(State.PENDING,), unexpired=True,
                        reason=why, now=now):
        counted = approvals_counted(policy, terms, request, store.votes(request.id))
        return VoteResult(store.request(request.id), Decision.REJECTED, len(counted), terms.quorum)
    ensure_open(store, store.request(request.id), now)
    raise Conflict(f"{request.id} changed while your vote was counted; look at its message for what happened")


def clean_reason(reason: str) -> str:
    """One line of printable text, at most REASON_LIMIT characters."""
    flat = " ".join("".join(char if char.isprintable() else " " for char in reason).split())
    return flat if len(flat) <= REASON_LIMIT else flat[: REASON_LIMIT - 1] + "…"


def ensure_open(store: Store, request: RequestRecord, now: float) -> None:
    """Nothing if the request still awaits a decision; otherwise the refusal that says what became of it.

    A PENDING request past its expiry is marked EXPIRED here (conditionally: once) and refused as expired.
    """
    if request.state is State.PENDING:
        if request.expires_at is None or request.expires_at > now:
            return
        expire(store, request, now)
        request = store.request(request.id)
        if request.state in (State.PENDING, State.EXPIRED):  # PENDING: only if the store refused to mark it
            raise _expired(request)
    raise _refusal(store, request)


def _expired(request: RequestRecord) -> UserError:
    again = f"/svc {request.kind} {request.service} {request.env}" + (
        f" {request.version}" if request.kind == "deploy" else "")
    return Conflict(f"this request expired at {clock(request.expires_at)}: {request.id} ({describe(request)}) "
                    f"was not approved in time; ask again with {again}")


def _refusal(store: Store, request: RequestRecord) -> UserError:
    state = request.state
    if state is State.EXPIRED:
        return _expired(request)
    votes = store.votes(request.id)
    if state is State.REJECTED:
        rejecters = [mention(vote.approver) for vote in votes if vote.vote == "reject"]
        return Conflict(f"{request.id} was already rejected by {', '.join(rejecters) or 'an approver'}")
    if state is State.CANCELLED:
        by = _actor_of(store, request.id, State.CANCELLED)
        return Conflict(f"{request.id} was withdrawn{' by ' + mention(by) if by else ''}; nothing to decide")
    approvers = [mention(vote.approver) for vote in votes if vote.vote == "approve"]
    by = f" by {', '.join(approvers)}" if approvers else ""
    return Conflict(f"{request.id} was already approved{by}; it is {state.value} now")


def _not_an_approver(policy: Policy, terms: Terms, request: RequestRecord) -> str:
    return f"you are not an approver for {request.env} (approvers: {policy.describe(terms.approvers)})"


def _ensure_may_approve(policy: Policy, terms: Terms, request: RequestRecord, user: str) -> None:
    if not policy.matches(user, terms.approvers):
        raise Forbidden(_not_an_approver(policy, terms, request))
    if user == request.requester and not terms.self_approval:
        raise Forbidden(f"you requested {request.id} yourself, and {request.env} {request.kind}s need another "
                        f"approver (self-approval is off; approvers: {policy.describe(terms.approvers)})")


def _waiting(missing: int) -> str:
    if missing <= 0:
        return ""
    return f"; waiting for {missing} more approver{'s' if missing > 1 else ''}"


def _actor_of(store: Store, request_id: str, state: State) -> str:
    events = [event for event in store.audit(request_id) if event.to_state == state.value]
    return events[-1].actor if events else ""


def _start_failed(store: Store, request: RequestRecord) -> bool:
    """Its approved run could not start (recorded by the approver whose vote decided it)."""
    if store.run(request.id) is not None:
        return False
    return any(event.event == NOT_STARTED_EVENT for event in store.audit(request.id))


def record_not_started(store: Store, request_id: str, user: str, reason: str) -> None:
    store.record(user, NOT_STARTED_EVENT, request_id=request_id, detail={"reason": reason})


# --- expiry ---------------------------------------------------------------------------------------------

def expire(store: Store, request: RequestRecord, now: float) -> bool:
    """PENDING -> EXPIRED for a request past its deadline; True for the one caller that marks it."""
    if request.expires_at is None or request.expires_at > now:
        return False
    waited = _duration(request.expires_at - request.created_at)
    return store.transition(request.id, State.EXPIRED, actor="svcbot", expected=(State.PENDING,),
                            reason=f"not approved within {waited}", now=now)


def expire_due(store: Store, *, now: float | None = None, limit: int = 500) -> list[RequestRecord]:
    """The sweep: mark every PENDING request past its expiry EXPIRED; those this call marked, for their
    messages to be updated (another replica sweeping at the same time gets the others)."""
    now = time.time() if now is None else now
    expired: list[RequestRecord] = []
    for request in store.requests(states=(State.PENDING,), limit=limit):
        if expire(store, request, now):
            expired.append(store.request(request.id))
    return expired


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


# --- the approval message's facts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConfigSummary:
    """How the target environment's configuration profile differs from the one the version comes from
    (the previous environment in catalog order): counts and the first few keys, never values."""

    base_env: str
    env: str
    changed: int = 0
    only_base: int = 0
    only_env: int = 0
    unchanged: int = 0
    keys: tuple[str, ...] = ()  # the first keys that differ
    more: int = 0  # differing keys not listed
    note: str = ""  # set when the profiles could not be compared, and why

    @property
    def differs(self) -> bool:
        return bool(self.changed or self.only_base or self.only_env)

    def to_json(self) -> dict[str, Any]:
        return {"base_env": self.base_env, "env": self.env, "changed": self.changed, "only_base": self.only_base,
                "only_env": self.only_env, "unchanged": self.unchanged, "keys": list(self.keys),
                "more": self.more, "note": self.note}

    @classmethod
    def from_json(cls, data: Any) -> ConfigSummary | None:
        if not isinstance(data, dict) or not data.get("env"):
            return None
        return cls(base_env=str(data.get("base_env", "")), env=str(data["env"]),
                   changed=int(data.get("changed", 0)), only_base=int(data.get("only_base", 0)),
                   only_env=int(data.get("only_env", 0)), unchanged=int(data.get("unchanged", 0)),
                   keys=tuple(str(key) for key in data.get("keys", ())), more=int(data.get("more", 0)),
                   note=str(data.get("note", "")))


def config_summary(catalog: Catalog, service: str, env: str, *, deadline: float | None = None) -> ConfigSummary | None:
    """The target environment's profile against the previous environment's (catalog order), or None
    when the service has no profiles or the environment is the first."""
    if catalog.service(service).config is None:
        return None
    names = list(catalog.environments)
    position = names.index(env) if env in names else 0
    if position == 0:
        return None
    base = names[position - 1]
    try:
        before = load_profile(catalog, service, base, deadline=deadline)
        after = load_profile(catalog, service, env, deadline=deadline)
    except (UserError, BackendError) as exc:
        return ConfigSummary(base_env=base, env=env, note=f"not compared: {exc.message}")
    diff = compare(flatten(before.data), flatten(after.data), key_patterns=catalog.secrets.key_patterns)
    keys = [change.key for change in diff.changed] + [item.key for item in diff.only_b] + \
        [item.key for item in diff.only_a]
    return ConfigSummary(base_env=base, env=env, changed=len(diff.changed), only_base=len(diff.only_a),
                         only_env=len(diff.only_b), unchanged=diff.unchanged, keys=tuple(keys[:CONFIG_KEYS_SHOWN]),
                         more=max(0, len(keys) - CONFIG_KEYS_SHOWN))


def record_posted(store: Store, request: RequestRecord, channel: str, ts: str, *, current_image: str,
                  config: ConfigSummary | None, current_traffic: str = "") -> None:
    """Audit where the approval message went and the facts it showed, so later updates show the same."""
    detail: dict[str, Any] = {"channel": channel, "ts": ts, "current_image": current_image}
    if current_traffic:
        detail["current_traffic"] = current_traffic
    if config is not None:
        detail["config"] = config.to_json()
    store.record(request.requester, POSTED_EVENT, request_id=request.id, detail=detail)




def run_has_ended(store: Store, request: RequestRecord) -> bool:
    """A request whose run has ended: its message shows the run's outcome (the progress reporter's), which
    an approval view must not overwrite."""
    return request.state in FINAL and store.run(request.id) is not None
