"""The terminal's rendering fits tables to the terminal: optional columns go first, in their order, then the
widest cells are shortened; output to a pipe keeps every column."""

from __future__ import annotations

import io

from bot.render import text as text_render
from bot.render.document import Document, Table
from bot.terminal.shell import terminal_width

HISTORY = Table(
    columns=("when", "env", "version", "rev", "action", "who", "outcome", "took", "id"),
    rows=(("3m ago", "staging", "1.4.3", "4", "deploy", "@U0ALICE", "succeeded", "12s", "3f9a1c2e"),
          ("2h ago", "staging", "1.4.2", "3", "rollback", "@U0BOB",
           "rolled back: new pod crashes in a loop after start", "1m 3s", "8e1d2c3b")),
    right_align=(3, 7), optional=(7, 3, 1))


def lines_at(width: int | None) -> list[str]:
    return text_render.render(Document(summary="history", elements=(HISTORY,)), width).splitlines()


def test_without_a_width_every_column_stays() -> None:
    """A pipe or a file gets the whole table."""
    header = lines_at(None)[0].split()
    assert header == ["when", "env", "version", "rev", "action", "who", "outcome", "took", "id"]


def test_optional_columns_go_first_in_their_order() -> None:
    """At 100 columns took, rev and env are dropped (in that order) and nothing is cut."""
    lines = lines_at(100)
    assert lines[0].split() == ["when", "version", "action", "who", "outcome", "id"]
    assert all(len(line) <= 100 for line in lines)
    assert "rolled back: new pod crashes in a loop after start" in lines[2]


def test_then_the_widest_cells_are_shortened() -> None:
    """At 60 columns the outcome is cut with an ellipsis; the request id, needed to act, is whole."""
    lines = lines_at(60)
    assert all(len(line) <= 60 for line in lines)
    assert "…" in lines[2]
    assert lines[2].endswith("8e1d2c3b")


def test_a_pipe_is_not_a_terminal() -> None:
    """`svcbot run` piped into a script fits nothing."""
    assert terminal_width(io.StringIO()) is None


def test_defused_slack_syntax_reads_plainly_in_a_terminal() -> None:
    """A zero-width space after `<` (Slack syntax defused in untrusted text) is not shown in a terminal."""
    document = Document(summary="missing <\u200btrace-id>")
    assert text_render.render(document) == "missing <trace-id>\n"
