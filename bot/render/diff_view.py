"""DiffReply -> Document: counts first, then the groups (only in A, only in B, changed), then drift.

A message shows at most `SECTION_LIMIT` rows a group and says "… and N more"; the full lists go along
as a text file. Masked values arrive as `DiffValue(text=None)` and show as "(secret)"; nothing here can
print a secret because the reply holds none.
"""

from __future__ import annotations

import json
import re
from typing import TypeVar

from bot.core.tone import Tone
from bot.insight.configdiff import ConfigDiff, DiffValue, KeyChange, KeyValue
from bot.render import text as text_render
from bot.render.document import (
    Attachment,
    Code,
    Divider,
    Document,
    Element,
    Heading,
    Lines,
    Note,
    Paragraph,
    Table,
)
from bot.render.views import view
from bot.replies.diff import DiffReply, Drift

SECTION_LIMIT = 15  # rows a group shows in a message
VALUE_WIDTH = 60  # characters of a value in a message; the attached file shows `FILE_VALUE_WIDTH`
FILE_VALUE_WIDTH = 400
SECRET_TEXT = "(secret)"  # noqa: S105 - the label shown instead of a secret
# Slack would turn these into mentions or links even inside a table: keep them inert.
_SLACK_TOKEN = re.compile(r"<(?=[@!#]|https?:|mailto:)")
T = TypeVar("T")


@view(DiffReply)
def diff_view(reply: DiffReply) -> Document:
    short = _elements(reply, limit=SECTION_LIMIT, width=VALUE_WIDTH)
    full = _elements(reply, limit=None, width=FILE_VALUE_WIDTH)
    summary = _summary(reply)
    attachment = None
    if short != full:  # a group was cut or a value clipped: the file has everything
        attachment = Attachment(
            filename=f"diff-{reply.service}-{reply.env_a}-{reply.env_b}{'-live' if reply.live else ''}.txt",
            content=text_render.render(Document(summary=summary, elements=full)), title=summary)
    tone = Tone.WARN if reply.diff.differs or any(drift.diff.changed or drift.missing_variables
                                                       for drift in reply.drift) else Tone.OK
    return Document(summary=summary, elements=short, attachment=attachment, public=reply.public, tone=tone)


def _headline(reply: DiffReply) -> Paragraph:
    if reply.env_a != reply.env_b:
        tone = Tone.WARN if reply.diff.differs else Tone.OK
        return Paragraph(_counts(reply.diff, reply.env_a, reply.env_b), tone=tone)
    drifted = any(drift.diff.changed or drift.missing_variables for drift in reply.drift)
    return Paragraph(_drift_words(reply), tone=Tone.WARN if drifted else Tone.OK)


def _summary(reply: DiffReply) -> str:
    if reply.env_a == reply.env_b:
        return f"diff {reply.service} {reply.env_a} (live): {_drift_words(reply)}"
    live = " (live)" if reply.live else ""
    return f"diff {reply.service} {reply.env_a} ↔ {reply.env_b}{live}: {_counts(reply.diff, reply.env_a, reply.env_b)}"


def _drift_words(reply: DiffReply) -> str:
    drifted = sum(len(drift.diff.changed) for drift in reply.drift)
    missing = sum(len(drift.missing_variables) for drift in reply.drift)
    words = f"{drifted} {_plural(drifted, 'key')} drifted from the profile"
    if missing:
        words += f" · {missing} {_plural(missing, 'variable')} nothing sets"
    return words


def _counts(diff: ConfigDiff, env_a: str, env_b: str) -> str:
    if not diff.differs:
        return f"no differences ({diff.unchanged} {_plural(diff.unchanged, 'key')} the same)"
    parts = []
    if diff.only_a:
        parts.append(f"{len(diff.only_a)} only in {env_a}")
    if diff.only_b:
        parts.append(f"{len(diff.only_b)} only in {env_b}")
    if diff.changed:
        parts.append(f"{len(diff.changed)} changed")
    parts.append(f"{diff.unchanged} unchanged")
    return " · ".join(parts)


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _elements(reply: DiffReply, *, limit: int | None, width: int) -> tuple[Element, ...]:
    diff, env_a, env_b = reply.diff, reply.env_a, reply.env_b
    title = f"{reply.service}: {env_a} ↔ {env_b}" if env_a != env_b else f"{reply.service}: {env_a}"
    elements: list[Element] = [
        Heading(title + (" (live)" if reply.live else "")),
        _headline(reply),
        Note(f"{env_a}: {reply.source_a}" + (f"\n{env_b}: {reply.source_b}" if env_a != env_b else "")),
    ]
    if env_a != env_b:
        elements.extend(_groups(diff, env_a, env_b, limit=limit, width=width))
    for drift in reply.drift:
        elements.extend(_drift(drift, limit=limit, width=width))
    elements.extend(Note(note) for note in reply.notes)
    return tuple(elements)


def _groups(diff: ConfigDiff, env_a: str, env_b: str, *, limit: int | None, width: int) -> list[Element]:
    elements: list[Element] = []
    for env, items in ((env_a, diff.only_a), (env_b, diff.only_b)):
        if items:
            elements.append(Divider())
            elements.append(Paragraph(f"Only in {env} ({len(items)})", strong=True))
            elements.append(_table(("key", "value"), _only_rows(items, limit, width)))
            elements.extend(_more(len(items), limit))
    if diff.changed:
        elements.append(Divider())
        elements.append(Paragraph(f"Changed ({len(diff.changed)}): {env_a} → {env_b}", strong=True))
        rows = tuple(_change_row(change, width) for change in _cut(diff.changed, limit))
        elements.append(_table(("key", env_a, env_b, ""), rows))
        elements.extend(_more(len(diff.changed), limit))
    if diff.same_secrets:
        shown = ", ".join(_cut(diff.same_secrets, limit))
        more = len(diff.same_secrets) - len(_cut(diff.same_secrets, limit))
        elements.append(Note(f"same (secret): {shown}" + (f" … and {more} more" if more else "")))
    variables: list[tuple[Tone | None, str]] = []
    for env, names in ((env_a, diff.variables_only_a), (env_b, diff.variables_only_b)):
        if names:
            listed = ", ".join("${" + name + "}" for name in names)
            variables.append((Tone.WARN, f"only {env} needs {listed}"))
    if variables:
        elements.append(Divider())
        elements.append(Lines(tuple(variables)))
    return elements


def _supplied(item: KeyValue, width: int) -> str:
    variable = "${" + item.key + "}"
    if item.value.kind == "ref":
        return f"{variable} from {_cell(item.value, width)}"
    return f"{variable} = {_cell(item.value, width)}"


def _drift_rows(diff: ConfigDiff, width: int) -> tuple[tuple[str, str, str, str], ...]:
    """Changed keys, then keys only live, then keys only declared: one table, profile -> live."""
    changed = tuple(_change_row(change, width) for change in diff.changed)
    live_only = tuple((item.key, "(not declared)", _cell(item.value, width), "") for item in diff.only_b)
    declared_only = tuple((item.key, _cell(item.value, width), "(not set live)", "") for item in diff.only_a)
    return changed + live_only + declared_only


def _drift(drift: Drift, *, limit: int | None, width: int) -> list[Element]:
    diff = drift.diff
    parts = [f"{len(diff.changed)} differ", f"{len(diff.only_a)} only in the profile",
             f"{len(diff.only_b)} only live", f"{diff.unchanged} as declared"]
    if drift.supplied_variables:
        parts.append(f"{len(drift.supplied_variables)} {_plural(len(drift.supplied_variables), 'variable')} set")
    tone = Tone.WARN if diff.changed or drift.missing_variables else Tone.OK
    title = f"Drift in {drift.env} (profile → live): " + " · ".join(parts)
    elements: list[Element] = [Divider(), Paragraph(title, strong=True, tone=tone)]
    if drift.supplied_variables:
        elements.append(Lines(tuple((None, _supplied(item, width)) for item in _cut(drift.supplied_variables, limit))))
        elements.extend(_more(len(drift.supplied_variables), limit))
    if drift.missing_variables:
        listed = ", ".join("${" + name + "}" for name in drift.missing_variables)
        elements.append(Lines(((Tone.BAD, f"the profile needs {listed}, which nothing live sets"),)))
    rows = _drift_rows(diff, width)
    if rows:
        elements.append(_table(("key", "profile", "live", ""), _cut(rows, limit)))
        elements.extend(_more(len(rows), limit))
    return elements


def _table(columns: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> Code:
    """Aligned columns as a code block, so a group's title sits right above its rows in a terminal too."""
    return Code("\n".join(text_render.table_lines(Table(columns=columns, rows=rows))))


def _only_rows(items: tuple[KeyValue, ...], limit: int | None, width: int) -> tuple[tuple[str, ...], ...]:
    return tuple((item.key, _cell(item.value, width)) for item in _cut(items, limit))


def _change_row(change: KeyChange, width: int) -> tuple[str, str, str, str]:
    if change.secret:
        remark = "changed (secret)"
    elif change.type_changed:
        remark = f"type {change.a.kind} → {change.b.kind}"
    else:
        remark = ""
    quoted = change.type_changed
    return (change.key, _cell(change.a, width, quoted), _cell(change.b, width, quoted), remark)


def _cell(value: DiffValue, width: int, quoted: bool = False) -> str:
    if value.text is None:
        return SECRET_TEXT
    text = value.text
    if value.kind == "string" and (quoted or text == "" or text != text.strip()):
        text = json.dumps(text, ensure_ascii=False)
    text = text.replace("\r\n", "\n").replace("\n", "⏎")
    if len(text) > width:
        text = text[: width - 1] + "…"
    return _SLACK_TOKEN.sub("<\u200b", text)


def _cut(items: tuple[T, ...], limit: int | None) -> tuple[T, ...]:
    return items if limit is None else items[:limit]


def _more(total: int, limit: int | None) -> list[Element]:
    if limit is None or total <= limit:
        return []
    return [Note(f"… and {total - limit} more (the full list is in the attached file)")]
