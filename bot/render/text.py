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
    """Slack mentions and links as a terminal shows them. Slack syntax defused in untrusted text (a zero-width
    space after `<`) means nothing in a terminal: the space goes."""
    text = text.replace("<\u200b", "<")
    text = _MENTION.sub(lambda m: "@" + (m.group(1) or m.group(2)), text)
    return _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)


def width(text: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, size: int, right: bool = False) -> str:
    gap = " " * max(0, size - width(text))
    return gap + text if right else text + gap


MIN_CELL = 10  # a shortened column keeps at least this many characters


def _clip(text: str, size: int) -> str:
    if width(text) <= size:
        return text
    out = ""
    for char in text:
        if width(out + char) > size - 1:
            break
        out += char
    return out + "…"


def _sizes(columns: list[str], rows: list[tuple[str, ...]]) -> list[int]:
    sizes = [width(column) for column in columns]
    for row in rows:
        for index, cell in enumerate(row[: len(sizes)]):
            sizes[index] = max(sizes[index], width(cell))
    return sizes


def _fit(table: Table, columns: list[str], rows: list[tuple[str, ...]], limit: int,
         ) -> tuple[list[str], list[tuple[str, ...]], list[int], set[int]]:
    """Drop the table's optional columns in their order, then shorten the widest, until it fits `limit`."""
    keep = list(range(len(columns)))
    sizes = _sizes(columns, rows)

    def total() -> int:
        return sum(sizes[index] for index in keep) + 2 * (len(keep) - 1)

    for index in table.optional:
        if total() <= limit:
            break
        if index in keep:
            keep.remove(index)
    while total() > limit:
        widest = max(keep, key=lambda index: sizes[index])
        if sizes[widest] <= MIN_CELL:
            break
        sizes[widest] = max(MIN_CELL, sizes[widest] - (total() - limit))
    kept_columns = [_clip(columns[index], sizes[index]) for index in keep]
    kept_rows = [tuple(_clip(row[index], sizes[index]) for index in keep if index < len(row)) for row in rows]
    right = {position for position, index in enumerate(keep) if index in table.right_align}
    return kept_columns, kept_rows, [sizes[index] for index in keep], right


def table_lines(table: Table, limit: int | None = None) -> list[str]:
    rows = [tuple(plain(cell) for cell in row) for row in table.rows]
    columns = [plain(column) for column in table.columns]
    sizes = _sizes(columns, rows)
    right = set(table.right_align)
    if limit is not None:
        columns, rows, sizes, right = _fit(table, columns, rows, limit)

    def line(cells: tuple[str, ...] | list[str]) -> str:
        padded = [_pad(cell, sizes[index], index in right) for index, cell in enumerate(cells)]
        return "  ".join(padded).rstrip()

    out = [line(columns)] if any(columns) else []
    out.extend(line(row) for row in rows)
    return out


def _element(element: Element, limit: int | None) -> list[str]:
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
        return table_lines(element, limit)
    if isinstance(element, Code):
        return ["    " + line for line in element.text.split("\n")]
    if isinstance(element, Note):
        return [plain(element.text)]
    if isinstance(element, Divider):
        return [""]
    if isinstance(element, Buttons):
        return []  # nothing to click in a terminal; views also name the commands the buttons stand for
    raise TypeError(f"cannot render {type(element).__name__}")


def render(document: Document, width: int | None = None) -> str:
    """The document as text; with `width` (a terminal's columns), tables are fitted to it."""
    blocks = [_element(element, width) for element in document.elements] or [[plain(document.summary)]]
    lines: list[str] = []
    for index, block in enumerate(blocks):
        element = document.elements[index] if document.elements else None
        if lines and isinstance(element, Heading | Table | Fields | Note):
            lines.append("")
        lines.extend(block)
    return "\n".join(lines).rstrip() + "\n"
