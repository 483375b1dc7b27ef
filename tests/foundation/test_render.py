"""Rendering: Block Kit within Slack's limits, and aligned plain text, from the same document."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bot.core.tone import Tone
from bot.render import slack, text
from bot.render.document import Code, Document, Fields, Heading, Lines, Note, Paragraph, Table
from bot.render.views import to_document
from bot.replies.base import Message


def section_texts(blocks: list[dict]) -> list[str]:
    return [block["text"]["text"] for block in blocks if block["type"] == "section" and "text" in block]


def assert_within_limits(message: slack.SlackMessage) -> None:
    assert len(message.blocks) <= slack.MAX_BLOCKS
    for block in message.blocks:
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= slack.MAX_SECTION_TEXT
            assert len(block.get("fields", [])) <= slack.MAX_FIELDS
            assert all(len(field["text"]) <= slack.MAX_FIELD_TEXT for field in block.get("fields", []))
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= slack.MAX_HEADER_TEXT


def test_long_paragraph_is_split() -> None:
    """A paragraph longer than one section is split into several sections, nothing lost."""
    lines = [f"line {index:04d} " + "x" * 80 for index in range(60)]
    message = slack.render(Document(summary="s", elements=(Paragraph("\n".join(lines)),)))
    assert_within_limits(message)
    assert len(message.blocks) > 1
    joined = "\n".join(section_texts(message.blocks))
    assert all(line in joined for line in lines)
    assert not message.truncated


def test_too_many_blocks_truncated_with_note_and_file() -> None:
    """A reply too big for one message is cut with a note and sent whole as a file."""
    elements = tuple(Paragraph(f"item {index}") for index in range(120))
    message = slack.render(Document(summary="big", elements=elements))
    assert_within_limits(message)
    assert message.truncated
    assert "attached file" in message.blocks[-1]["elements"][0]["text"]
    assert message.attachment is not None
    assert "item 119" in message.attachment.content


def test_fields_split_by_ten() -> None:
    """More than 10 fields go into several sections."""
    pairs = tuple((f"k{index}", f"v{index}") for index in range(23))
    message = slack.render(Document(summary="f", elements=(Fields(pairs),)))
    assert [len(block["fields"]) for block in message.blocks] == [10, 10, 3]


def test_escaping_keeps_mentions_and_links_only_in_markup() -> None:
    """&, < and > are escaped; mentions and links survive only in svcbot's own markup, never in backend text."""
    text = "a<b & c> <@U01AAA> <https://grafana.example.com/x|Grafana> <!here>"
    assert slack.escape(text, markup=True) == (
        "a&lt;b &amp; c&gt; <@U01AAA> <https://grafana.example.com/x|Grafana> &lt;!here&gt;")
    assert slack.escape(text) == (
        "a&lt;b &amp; c&gt; &lt;@U01AAA&gt; &lt;https://grafana.example.com/x|Grafana&gt; &lt;!here&gt;")
    log_line = Document(summary="logs", elements=(Lines(((None, "ping <@U01AAA> <!channel>"),)),))
    assert "<@" not in json.dumps(slack.render(log_line).blocks)


def test_text_table_aligned() -> None:
    """Terminal tables align columns, right-aligning numbers when asked."""
    table = Table(columns=("service", "ready"), rows=(("payment", "3/3"), ("inventory", "10/12")),
                  right_align=(1,))
    assert text.table_lines(table) == [
        "service    ready",
        "payment      3/3",
        "inventory  10/12",
    ]


def test_message_view_both_ways() -> None:
    """A Message renders to Block Kit with a marker and to text with a symbol."""
    reply = Message(title="payment is healthy", lines=("3/3 ready",), hint="try /svc probe", tone=Tone.OK)
    document = to_document(reply)
    message = slack.render(document)
    assert message.blocks[0]["text"]["text"] == ":large_green_circle: *payment is healthy*"
    assert text.render(document) == "✓ payment is healthy\n  3/3 ready\n\ntry /svc probe\n"


@given(st.lists(st.text(min_size=0, max_size=400), min_size=0, max_size=80),
       st.lists(st.tuples(st.text(max_size=3000), st.text(max_size=3000)), max_size=25),
       st.text(max_size=5000))
def test_any_document_fits_slack(paragraphs: list[str], pairs: list[tuple[str, str]], code: str) -> None:
    """Whatever a view produces, the Block Kit stays within Slack's limits and serialises."""
    elements = [Heading("h" * 200), *(Paragraph(p) for p in paragraphs), Fields(tuple(pairs)), Code(code),
                Lines(tuple((Tone.WARN, p) for p in paragraphs)), Note("n" * 3000)]
    message = slack.render(Document(summary="x" * 5000, elements=tuple(elements)))
    assert_within_limits(message)
    assert len(message.text) <= slack.MAX_FALLBACK_TEXT
    json.dumps(message.blocks)
