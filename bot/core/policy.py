"""Who may run which verb where: the catalog's access rules.

Semantics (DESIGN.md): default-deny; `help` is always allowed; approve/reject/cancel are governed by the
request itself; a command is checked against every environment it touches; when several rules match, the
strictest wins (any matching rule with an `approval` block means approval is required).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.core.catalog import Approval, Catalog, Rule

# Resolves a Slack user group id (S...) to its members; the Slack wiring supplies one backed by
# usergroups.users.list with a cache. Without one, user groups have no members.
GroupResolver = Callable[[str], frozenset[str]]


def _no_user_groups(_group_id: str) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # for a denial: "you may not deploy to prod (allowed: @oncall)"
    approval: Approval | None = None  # set when the strictest matching rule requires approval


class Policy:
    def __init__(self, catalog: Catalog, resolve_user_group: GroupResolver | None = None) -> None:
        self.catalog = catalog
        self._resolve_user_group = resolve_user_group or _no_user_groups

    def members(self, principal: str) -> frozenset[str]:
        """User ids a principal stands for: a catalog group, a Slack user group (S...) or a user id."""
        groups = self.catalog.access.groups
        if principal in groups:
            users: set[str] = set()
            for member in groups[principal]:
                users |= self.members(member) if member != principal else set()
            return frozenset(users)
        if principal.startswith("S"):
            return self._resolve_user_group(principal)
        return frozenset({principal})

    def matches(self, user: str, principals: Iterable[str]) -> bool:
        return any(who == "*" or user in self.members(who) for who in principals)

    def check(self, verb: str, envs: Iterable[str], user: str) -> Decision:
        approval: Approval | None = None
        for env in envs:
            candidates = [rule for rule in self.catalog.access.rules if _covers(rule, verb, env)]
            granted = [rule for rule in candidates if self.matches(user, rule.who)]
            if not granted:
                return Decision(False, reason=self._denial(verb, env, candidates))
            for rule in granted:
                if rule.approval is not None and (approval is None or _stricter(rule.approval, approval)):
                    approval = rule.approval
        return Decision(True, approval=approval)

    def _denial(self, verb: str, env: str, candidates: list[Rule]) -> str:
        allowed = sorted({who for rule in candidates for who in rule.who})
        where = f" in {env}" if verb not in {"deploy", "rollback"} else f" to {env}"
        if not allowed:
            return f"you may not {verb}{where}: no access rule allows it"
        return f"you may not {verb}{where} (allowed: {', '.join(_mention(who) for who in allowed)})"

    def is_approver(self, approval: Approval, user: str) -> bool:
        return self.matches(user, approval.approvers)

    def describe(self, principals: Iterable[str]) -> str:
        return ", ".join(_mention(who) for who in principals)


def _covers(rule: Rule, verb: str, env: str) -> bool:
    return verb in rule.verbs and ("*" in rule.envs or env in rule.envs)


def _stricter(candidate: Approval, current: Approval) -> bool:
    return (candidate.quorum, not candidate.self_approval, -candidate.expires) > (
        current.quorum, not current.self_approval, -current.expires,
    )


def _mention(who: str) -> str:
    """How a principal is shown: groups as @name, user ids as Slack mentions, '*' as everyone."""
    if who == "*":
        return "everyone"
    if who[:1] in {"U", "W"} and who.isupper():
        return f"<@{who}>"
    if who[:1] == "S" and who.isupper():
        return f"<!subteam^{who}>"
    return f"@{who}"
