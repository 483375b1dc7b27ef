"""Document -> plain text for the terminal (and for files uploaded when a message is too long)."""

from __future__ import annotations

import re
import unicodedata

from bot.core.tone import Tone
from bot.render.document import (
    Buttons,
    Code,
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

MARKERS = {Tone.OK: "✓", Tone.WARN: "!", Tone.BAD: "✗", Tone.INFO: "·", Tone.UNKNOWN: "?"}

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>|<!subteam\^(S[A-Z0-9]+)>")
_LINK = re.compile(r"<(https?://[^\s<>|]+)(?:\|([^<>]+))?>")


def plain(text: str) -> str:
    """Slack mentions and links as a terminal shows them."""
    text = _MENTION.sub(lambda m: "@" + (m.group(1) or m.group(2)), text)
    return _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)


def width(text: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, size: int, right: bool = False) -> str:
    gap = " " * max(0, size - width(text))
    return gap + text if right else text + gap


def table_lines(table: Table) -> list[str]:
    rows = [tuple(plain(cell) for cell in row) for row in table.rows]
    columns = [plain(column) for column in table.columns]
    sizes = [width(column) for column in columns]
    for row in rows:
        for index, cell in enumerate(row[: len(sizes)]):
            sizes[index] = max(sizes[index], width(cell))

    def line(cells: tuple[str, ...] | list[str]) -> str:
        padded = [_pad(cell, sizes[index], index in table.right_align) for index, cell in enumerate(cells)]
        return "  ".join(padded).rstrip()

    out = [line(columns)] if any(columns) else []
    out.extend(line(row) for row in rows)
    return out


def _element(element: Element) -> list[str]:
    if isinstance(element, Heading):
        return [plain(element.text), "─" * min(72, max(8, width(element.text)))]
    if isinstance(element, Paragraph):
        marker = f"{MARKERS[element.tone]} " if element.tone is not None else ""
        return (marker + plain(element.text)).split("\n")
    if isinstance(element, Fields):
        size = max((width(label) for label, _ in element.pairs), default=0)
        return [f"{_pad(plain(label) + ':', size + 1)} {plain(value)}" for label, value in element.pairs]
    if isinstance(element, Lines):
        return [(f"{MARKERS[tone]} " if tone is not None else "  ") + plain(text) for tone, text in element.items]
    if isinstance(element, Table):
        return table_lines(element)
    if isinstance(element, Code):
        return ["    " + line for line in element.text.split("\n")]
    if isinstance(element, Note):
        return [plain(element.text)]
    if isinstance(element, Divider):
        return [""]
    if isinstance(element, Buttons):
        return []  # nothing to click in a terminal; views also name the commands the buttons stand for
    raise TypeError(f"cannot render {type(element).__name__}")


def render(document: Document) -> str:
    blocks = [_element(element) for element in document.elements] or [[plain(document.summary)]]
    lines: list[str] = []
    for index, block in enumerate(blocks):
        element = document.elements[index] if document.elements else None
        if lines and isinstance(element, Heading | Table | Fields | Note):
            lines.append("")
        lines.extend(block)
    return "\n".join(lines).rstrip() + "\n"
