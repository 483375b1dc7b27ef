"""Reply -> Document. One view function per reply type, registered here; verbs add theirs.

A view decides what to show and in what order; it knows nothing of Block Kit or terminals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bot.render.document import Document, Element, Heading, Lines, Note, Paragraph, Table
from bot.replies.base import HelpReply, Message, Reply

R = TypeVar("R", bound=Reply)
View = Callable[[Any], Document]
_VIEWS: dict[type[Reply], View] = {}


def view(reply_type: type[R]) -> Callable[[Callable[[R], Document]], Callable[[R], Document]]:
    """Register the view for one reply type."""

    def register(function: Callable[[R], Document]) -> Callable[[R], Document]:
        _VIEWS[reply_type] = function
        return function

    return register


def to_document(reply: Reply) -> Document:
    for klass in type(reply).__mro__:
        if klass in _VIEWS:
            return _VIEWS[klass](reply)
    raise TypeError(f"no view for {type(reply).__name__}")


@view(Message)
def message_view(reply: Message) -> Document:
    # Messages are svcbot's own words (a denial may mention who may approve), so Slack markup is allowed.
    elements: list[Element] = [Paragraph(reply.title, tone=reply.tone, strong=True, markup=True)]
    if reply.lines:
        elements.append(Lines(tuple((None, line) for line in reply.lines), markup=True))
    if reply.hint:
        elements.append(Note(reply.hint, markup=True))
    return Document(summary=reply.title, elements=tuple(elements), public=reply.public, tone=reply.tone)


@view(HelpReply)
def help_view(reply: HelpReply) -> Document:
    if reply.detailed:
        verb = reply.verbs[0]
        elements: list[Element] = [
            Heading(f"/svc {verb.name}"),
            Paragraph(verb.summary),
            Paragraph(f"usage: {verb.usage}"),
        ]
        if verb.examples:
            elements.append(Lines(tuple((None, example) for example in verb.examples)))
        if verb.mutates:
            elements.append(Note("changes things: checked against the catalog's access rules, and audited"))
        return Document(summary=f"/svc {verb.name}: {verb.summary}", elements=tuple(elements))
    rows = tuple((verb.usage, verb.summary) for verb in reply.verbs)
    return Document(
        summary="svcbot commands",
        elements=(
            Heading("svcbot commands"),
            Table(columns=("command", "what it does"), rows=rows),
            Note("/svc help <verb> explains one command with examples"),
        ),
    )


