"""A neutral layout between replies and chat: views build it, slack.py and text.py render it.

Keeping Slack's limits (blocks, characters, fields) in one renderer means no view can produce a message
Slack rejects; keeping the text renderer on the same document means the terminal shows the same answer.
Text in elements is plain: renderers escape it. Text from backends (log lines, events, pod output) is
untrusted and escaped completely, so it can never mention anyone or disguise a link. Only elements built
from svcbot's own words may set `markup=True`, which lets Slack mentions (`<@U123>`, `<!subteam^S123>`) and
links (`<https://...|label>`) through as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.tone import Tone


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    tone: Tone | None = None  # a marker in front when set
    strong: bool = False
    markup: bool = False


@dataclass(frozen=True)
class Fields:
    """Label/value pairs (Slack section fields, at most 10 a section; the renderer splits)."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """Aligned columns (a preformatted block in Slack)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right_align: tuple[int, ...] = ()  # column indexes
    # Where the table must fit a width (a terminal): these columns go first, in this order; then the widest
    # cells are shortened.
    optional: tuple[int, ...] = ()


@dataclass(frozen=True)
class Lines:
    """A list of short lines, each with an optional marker."""

    items: tuple[tuple[Tone | None, str], ...]
    markup: bool = False


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Note:
    """Small print: context, hints, links."""

    text: str
    markup: bool = False


@dataclass(frozen=True)
class Divider:
    """A horizontal rule between parts of a message."""


@dataclass(frozen=True)
class Button:
    text: str
    action_id: str
    value: str
    style: str | None = None  # "primary" | "danger"
    confirm: tuple[str, str, str, str] | None = None  # title, text, confirm, deny


@dataclass(frozen=True)
class Buttons:
    buttons: tuple[Button, ...]
    block_id: str | None = None


Element = Heading | Paragraph | Fields | Table | Lines | Code | Note | Divider | Buttons


@dataclass(frozen=True)
class Attachment:
    """A file sent with the message: full output too long for one, or a chart (bytes: a PNG)."""

    filename: str
    content: str | bytes
    title: str = ""


@dataclass(frozen=True)
class Delivery:
    """Where a message goes and what it keeps up to date. Slack's delivery acts on it; the terminal has no
    threads or channels to choose and ignores it."""

    post: bool = False  # chat.postMessage, not response_url: the message is updated or threaded later
    request_id: str = ""  # the deploy request this message stands for (its ts is stored as the request's thread)
    channel: str = ""  # another channel than the one asked in (the approvals channel)
    refreshes: str = ""  # the request whose approval message this answer changes: it is brought up to date


@dataclass(frozen=True)
class Document:
    summary: str  # one line: notification text and the fallback for clients without blocks
    elements: tuple[Element, ...] = ()
    attachment: Attachment | None = None
    public: bool = False  # in_channel in Slack
    tone: Tone = Tone.INFO
    delivery: Delivery = field(default_factory=Delivery)
