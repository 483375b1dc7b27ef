"""Replies: what a command returns. Frozen data, no Slack layout.

A command returns a `Reply` subclass holding facts (a `StatusReply` holds `DeploymentSummary` objects);
bot/render/ turns it into Block Kit or plain text. `Message` is the general-purpose reply for short
answers and errors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bot.core.tone import Tone


class Outcome(enum.Enum):
    """How a command ended; decides ephemeral vs in-channel, the log line and `svcbot run`'s exit code."""

    OK = "ok"  # answered; the answer may still say a service is unhealthy
    USER_ERROR = "user_error"  # usage, not found, forbidden: exit 1
    INTERNAL_ERROR = "internal_error"  # exit 2
    RUN_FAILED = "run_failed"  # a deploy run the command waited for ended badly: exit 3

    @property
    def exit_code(self) -> int:
        return {Outcome.OK: 0, Outcome.USER_ERROR: 1, Outcome.INTERNAL_ERROR: 2, Outcome.RUN_FAILED: 3}[self]




@dataclass(frozen=True)
class Reply:
    """Base of every reply. `outcome` drives visibility and exit codes; `public` means in_channel."""

    outcome: Outcome = field(default=Outcome.OK, kw_only=True)
    public: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class Message(Reply):
    """A short answer: a title, optional lines, an optional hint (what to try next)."""

    title: str
    lines: tuple[str, ...] = ()
    hint: str = ""
    tone: Tone = Tone.INFO


@dataclass(frozen=True)
class VerbHelp:
    name: str
    summary: str
    usage: str
    examples: tuple[str, ...] = ()
    mutates: bool = False


@dataclass(frozen=True)
class HelpReply(Reply):
    """`/svc help` (every verb) or `/svc help <verb>` (one verb, with examples)."""

    verbs: tuple[VerbHelp, ...]
    detailed: bool = False


def error_message(title: str, *lines: str, hint: str = "", internal: bool = False) -> Message:
    outcome = Outcome.INTERNAL_ERROR if internal else Outcome.USER_ERROR
    return Message(title=title, lines=tuple(lines), hint=hint, tone=Tone.BAD, outcome=outcome)
