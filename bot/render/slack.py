"""Document -> Block Kit, within Slack's limits.

Limits (reference/slack.md section 5): 50 blocks a message, 3000 characters of section text, 10 fields of
2000 characters, header text 150, and an undocumented cumulative limit near 13,000 characters
(msg_blocks_too_long). Long sections are split; a message that would still be too large is cut with a
note, and the full text rendering goes along as a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.core.tone import Tone
from bot.render import text as text_render
from bot.render.document import (
    Attachment,
    Buttons,
    Code,
    Delivery,
    Divider,
    Document,
    Element,
    Fields,
    Heading,
    Lines,
    Note,
    Paragraph,
    Table,
)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 2000
MAX_TOTAL_TEXT = 11_000  # stay well under the cumulative limit Slack enforces without documenting it
MAX_FALLBACK_TEXT = 3000

MARKERS = {
    Tone.OK: ":large_green_circle:",
    Tone.WARN: ":large_yellow_circle:",
    Tone.BAD: ":red_circle:",
    Tone.INFO: ":information_source:",
    Tone.UNKNOWN: ":white_circle:",
}

# Slack tokens that must survive escaping: user and group mentions, links.
_TOKEN = re.compile(r"(<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>|<https?://[^\s<>|]+(?:\|[^<>]+)?>)")
# In the fallback text (notifications), only mentions: a summary may quote what someone typed.
_MENTION = re.compile(r"(<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>)")


def escape(text: str, markup: bool = False, *, links: bool = True) -> str:
    """Escape &, < and > as Slack requires; with `markup`, mentions (and, with `links`, links) in Slack's
    syntax survive."""
    if not markup:
        return _escape_all(text)
    parts = (_TOKEN if links else _MENTION).split(text)
    for index in range(0, len(parts), 2):
        parts[index] = _escape_all(parts[index])
    return "".join(parts)


def _escape_all(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]
    attachment: Attachment | None = None
    public: bool = False
    truncated: bool = False
    delivery: Delivery = field(default_factory=Delivery)


def render(document: Document) -> SlackMessage:
    blocks: list[dict[str, Any]] = []
    for element in document.elements:
        blocks.extend(_blocks(element))
    attachment = document.attachment
    truncated = False
    if len(blocks) > MAX_BLOCKS or _total_text(blocks) > MAX_TOTAL_TEXT:
        blocks, dropped = _cut(blocks)
        truncated = True
        if attachment is None:
            attachment = Attachment(filename="svcbot-output.txt", content=text_render.render(document),
                                    title=document.summary)
        blocks.append(_context(f"… {dropped} more part(s) not shown here: the full output is in the attached file"))
    # The fallback `text` is mrkdwn too (notifications, clients without blocks): escaped like the blocks,
    # so a summary quoting a trace id like `<!here>` cannot notify a channel.
    fallback = escape(document.summary, markup=True, links=False)
    if len(fallback) > MAX_FALLBACK_TEXT:
        fallback = fallback[: MAX_FALLBACK_TEXT - 1] + "…"
    return SlackMessage(text=fallback, blocks=blocks, attachment=attachment, public=document.public,
                        truncated=truncated, delivery=document.delivery)


def _cut(blocks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    kept: list[dict[str, Any]] = []
    total = 0
    for block in blocks:
        size = _total_text([block])
        if len(kept) >= MAX_BLOCKS - 1 or total + size > MAX_TOTAL_TEXT:
            break
        kept.append(block)
        total += size
    return kept, len(blocks) - len(kept)


def _total_text(blocks: list[dict[str, Any]]) -> int:
    total = 0
    for block in blocks:
        total += len(block.get("text", {}).get("text", "")) if isinstance(block.get("text"), dict) else 0
        total += sum(len(item.get("text", "")) for item in block.get("fields", []))
        total += sum(len(item.get("text", "")) for item in block.get("elements", []) if "text" in item
                     and isinstance(item["text"], str))
    return total


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, MAX_CONTEXT_TEXT)}]}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chunks(lines: list[str], limit: int, wrap: tuple[str, str] = ("", "")) -> list[str]:
    """Pack lines into pieces of at most `limit` characters (wrapper included); cut overlong lines."""
    room = limit - len(wrap[0]) - len(wrap[1])
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = _clip(line, room)
        if current and size + len(line) + 1 > room:
            pieces.append(wrap[0] + "\n".join(current) + wrap[1])
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        pieces.append(wrap[0] + "\n".join(current) + wrap[1])
    return pieces


def _marker(tone: Tone | None) -> str:
    return f"{MARKERS[tone]} " if tone is not None else ""


def _blocks(element: Element) -> list[dict[str, Any]]:
    if isinstance(element, Heading):
        return [{"type": "header", "text": {"type": "plain_text", "text": _clip(element.text, MAX_HEADER_TEXT),
                                             "emoji": True}}]
    if isinstance(element, Paragraph):
        body = escape(element.text, element.markup)
        if element.strong and body.strip():
            body = f"*{body}*"
        return [_section(piece) for piece in _chunks((_marker(element.tone) + body).split("\n"),
                                                     MAX_SECTION_TEXT)]
    if isinstance(element, Fields):
        fields = [{"type": "mrkdwn", "text": _clip(f"*{escape(label)}*\n{escape(value)}", MAX_FIELD_TEXT)}
                  for label, value in element.pairs]
        return [{"type": "section", "fields": fields[start:start + MAX_FIELDS]}
                for start in range(0, len(fields), MAX_FIELDS)]
    if isinstance(element, Lines):
        lines = [_marker(tone) + escape(text, element.markup) for tone, text in element.items]
        return [_section(piece) for piece in _chunks(lines, MAX_SECTION_TEXT)]
    if isinstance(element, Table):
        lines = text_render.table_lines(element)
        return [_section(piece) for piece in _chunks([escape(line) for line in lines], MAX_SECTION_TEXT,
                                                      ("```", "```"))]
    if isinstance(element, Code):
        lines = element.text.split("\n")
        return [_section(piece) for piece in _chunks([escape(line) for line in lines], MAX_SECTION_TEXT,
                                                      ("```", "```"))]
    if isinstance(element, Note):
        return [_context(escape(element.text, element.markup))]
    if isinstance(element, Divider):
        return [{"type": "divider"}]
    if isinstance(element, Buttons):
        return [_actions(element)]
    raise TypeError(f"cannot render {type(element).__name__}")


def _actions(element: Buttons) -> dict[str, Any]:
    buttons: list[dict[str, Any]] = []
    for button in element.buttons[:25]:
        item: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": _clip(button.text, 75), "emoji": True},
            "action_id": button.action_id,
            "value": button.value[:2000],
        }
        if button.style:
            item["style"] = button.style
        if button.confirm:
            title, text, confirm, deny = button.confirm
            item["confirm"] = {
                "title": {"type": "plain_text", "text": _clip(title, 100)},
                "text": {"type": "mrkdwn", "text": _clip(escape(text), 300)},
                "confirm": {"type": "plain_text", "text": _clip(confirm, 30)},
                "deny": {"type": "plain_text", "text": _clip(deny, 30)},
            }
        buttons.append(item)
    block: dict[str, Any] = {"type": "actions", "elements": buttons}
    if element.block_id:
        block["block_id"] = element.block_id
    return block
