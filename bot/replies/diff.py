"""Replies of /svc diff: two configurations compared (bot/render/diff_view.py lays them out).

Values arrive here already masked (bot.insight.configdiff returns `DiffValue(text=None)` for secrets), so a
reply never holds a secret and no view can show one.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.insight.configdiff import ConfigDiff, KeyValue
from bot.replies.base import Reply


@dataclass(frozen=True)
class Drift:
    """One environment's declared profile (A) against what its cluster runs with (B)."""

    env: str
    diff: ConfigDiff  # keys only live that supply the profile's ${VAR}s are left out (listed below)
    supplied_variables: tuple[KeyValue, ...] = ()  # ${VAR}s the profile needs and what sets them live (masked)
    missing_variables: tuple[str, ...] = ()  # ${VAR}s (without a default) nothing live sets


@dataclass(frozen=True)
class DiffReply(Reply):
    """`diff <service> <envA> <envB> [--live]`: profiles (or live configurations) of two environments."""

    service: str
    env_a: str
    env_b: str
    source_a: str  # "configs/payment/application-staging.yaml", or the live deployment it was read from
    source_b: str
    diff: ConfigDiff
    live: bool = False
    drift: tuple[Drift, ...] = ()  # --live only: per environment, profile -> live
    notes: tuple[str, ...] = ()  # what could not be compared and why (never a value)
