"""How good or bad a fact is: rendered as an emoji in Slack and a symbol in the terminal."""

from __future__ import annotations

import enum


class Tone(enum.Enum):
    """A status marker: rendered as an emoji in Slack and a symbol in the terminal."""

    OK = "ok"
    WARN = "warn"
    BAD = "bad"
    INFO = "info"
    UNKNOWN = "unknown"
