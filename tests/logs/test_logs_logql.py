"""LogQL building and escaping: literals decode back to exactly the input, and no user text changes a
query's structure (checked with json.loads and with the stand-in's Go-rules parser, both independent of
the builder)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.clients.loki import LogStream
from bot.insight import logql
from sandbox import logql_engine as engine

SEARCH = logql.LogSearch(namespace_label="namespace", namespace="prod", service_label="app",
                         services=("payment",))
ADVERSARIAL = ['"', "\\", "`", "\n", '"} | line_format "{{.x}}', '" or __error__!="', "\\u0022", "#",
               "\u2028", "\ufeff", "\x00", "\x7f", "😀", "a\\\"b", "{{", "$var", "\r\n\t"]


class TestStringLiteral:
    @given(st.text())
    @example("")
    def test_json_decodes_the_literal_to_the_input(self, text: str) -> None:
        """A literal is valid JSON that decodes to exactly the text it was built from."""
        assert json.loads(logql.string_literal(text)) == text

    @given(st.text())
    def test_go_rules_decode_the_literal_as_one_string_token(self, text: str) -> None:
        """Loki's lexer (Go's string rules) reads the literal as one string token holding the text."""
        tokens = engine.tokenize(logql.string_literal(text))
        assert [(token.kind, token.text) for token in tokens] == [("STRING", text), ("EOF", "")]

    @pytest.mark.parametrize("text", ADVERSARIAL)
    def test_adversarial_texts_round_trip(self, text: str) -> None:
        """Quotes, backslashes, backticks, newlines and invisible characters come back unchanged."""
        assert engine.tokenize(logql.string_literal(text))[0].text == text

    def test_no_raw_newline_or_backtick_quoting_is_used(self) -> None:
        """Newlines are escaped (Go rejects raw ones) and the literal is always double-quoted."""
        literal = logql.string_literal("a\nb`c")
        assert literal == '"a\\nb`c"'

    def test_invisible_characters_are_escaped_so_a_shown_query_shows_them(self) -> None:
        """A zero-width space or BOM appears as a \\u escape in the query text."""
        assert logql.string_literal("a\u200bb\ufeff") == '"a\\u200bb\\ufeff"'

    def test_characters_beyond_the_bmp_stay_literal(self) -> None:
        """Emoji are written as themselves (JSON's surrogate-pair escapes are invalid in Go)."""
        assert logql.string_literal("ok 😀") == '"ok 😀"'

    def test_a_lone_surrogate_is_refused(self) -> None:
        """Text that is not valid UTF-8 cannot be put into a query."""
        with pytest.raises(logql.LogQLError):
            logql.string_literal("bad \udc80")


class TestRegexLiterals:
    @given(st.text(min_size=1))
    def test_regex_literal_matches_the_text_literally(self, text: str) -> None:
        """An escaped regex matches the text itself, and Go's rules decode the literal first."""
        decoded = engine.tokenize(logql.regex_literal(text))[0].text
        assert re.search(decoded, f"xx{text}yy") is not None

    @given(st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), min_size=1, max_size=6))
    def test_alternation_matches_exactly_the_names(self, names: list[str]) -> None:
        """The service alternation matches each name fully and nothing longer (Loki anchors it)."""
        pattern = json.loads(logql.alternation_literal(names))
        assert all(re.fullmatch(pattern, name) for name in names)
        longer = {name + "x" for name in names} - set(names)  # ["a", "ax"]: "ax" is a name, not a longer one
        assert not any(re.fullmatch(pattern, name) for name in longer)

    def test_label_names_are_checked(self) -> None:
        """A label name that is not one (it could not be quoted) is refused."""
        with pytest.raises(logql.LogQLError):
            logql.label_name('app"} or {x="')


def expected_log_stages(grep: str | None, trace: str | None, level: str | None) -> list[object]:
    stages: list[object] = [engine.LineFilter("|=", text) for text in (grep, trace) if text]
    stages.append(engine.JsonStage())
    if level:
        stages.append(("level", "=~", "or", "__error__", "!=", ""))
    if trace and re.fullmatch(r"[0-9a-f]{16}", trace):  # a 64-bit id also matches its zero-padded form
        stages.append(("trace_id", "=~", "(?:0{16})?" + trace, "or", "__error__", "!=", ""))
    elif trace:
        stages.append(("trace_id", "=", trace, "or", "__error__", "!=", ""))
    return stages


def shape(stage: object) -> object:
    """A parsed stage reduced to what the builder decides: filters and their texts."""
    if isinstance(stage, engine.LineFilter):
        return engine.LineFilter(stage.op, stage.value)
    if isinstance(stage, engine.LabelFilter):
        expr = stage.expr
        assert isinstance(expr, engine.BoolExpr)
        left, right = expr.left, expr.right
        assert isinstance(left, engine.Comparison)
        assert isinstance(right, engine.Comparison)
        if left.name == "level":
            return (left.name, left.op, expr.op, right.name, right.op, right.value)
        return (left.name, left.op, left.value, expr.op, right.name, right.op, right.value)
    return stage


class TestQueries:
    @given(grep=st.none() | st.text(min_size=1), trace=st.none() | st.text(min_size=1),
           level=st.none() | st.sampled_from(logql.LEVEL_CHOICES))
    @example(grep='" | json | level="debug', trace="x` or `y", level="error")
    @example(grep="\\", trace='"}', level=None)
    def test_user_text_never_changes_the_query_structure(self, grep: str | None, trace: str | None,
                                                         level: str | None) -> None:
        """Whatever --grep and --trace hold, the query parses to the same selector and stages, with each
        text as exactly one filter value."""
        search = logql.LogSearch(namespace_label="namespace", namespace="prod", service_label="app",
                                 services=("payment",), grep=grep, trace_id=trace, level=level)
        expr = engine.parse(logql.log_query(search))
        assert isinstance(expr, engine.LogExpr)
        assert [(m.name, m.op, m.value) for m in expr.matchers] == [("namespace", "=", "prod"),
                                                                    ("app", "=", "payment")]
        assert [shape(stage) for stage in expr.stages] == expected_log_stages(grep, trace, level)

    @given(grep=st.none() | st.text(min_size=1), trace=st.none() | st.text(min_size=1))
    def test_the_level_count_query_keeps_its_shape(self, grep: str | None, trace: str | None) -> None:
        """The sparkline's metric query is `sum by (level) (count_over_time(... [step]))` for any text."""
        search = logql.LogSearch(namespace_label="namespace", namespace="prod", service_label="app",
                                 services=("payment",), grep=grep, trace_id=trace)
        expr = engine.parse(logql.level_count_query(search, 30))
        assert isinstance(expr, engine.VectorAggregation)
        assert (expr.op, expr.grouping) == ("sum", ("level",))
        inner = expr.inner
        assert isinstance(inner, engine.RangeAggregation)
        assert (inner.function, inner.range_ns) == ("count_over_time", 30_000_000_000)
        filters = [stage.value for stage in inner.log.stages if isinstance(stage, engine.LineFilter)]
        assert filters == [text for text in (grep, trace) if text]

    def test_level_means_that_level_and_above_with_both_warn_spellings(self) -> None:
        """--level warn admits warn and warning, error and fatal, and not info or debug."""
        pattern = json.loads(re.search(r"level=~(\"[^\"]*\")", logql.log_query(
            replace(SEARCH, level="warn"))).group(1))
        for word in ("warn", "warning", "WARNING", "error", "ERROR", "fatal", "panic"):
            assert re.fullmatch(pattern, word), word
        for word in ("info", "debug", "warnings", ""):
            assert not re.fullmatch(pattern, word), word

    def test_lines_that_are_not_json_pass_the_label_filters(self) -> None:
        """Each label filter is or-ed with `__error__!=""`, so a plain-text line is not dropped silently."""
        query = logql.log_query(replace(SEARCH, level="error", trace_id="t1"))
        assert query.count(' or __error__!=""') == 2
        assert query.index('|= "t1"') < query.index("| json")

    def test_warning_is_the_same_level_as_warn(self) -> None:
        """`--level warning` builds the same query as `--level warn`."""
        warn = logql.log_query(replace(SEARCH, level="warn"))
        warning = logql.log_query(replace(SEARCH, level="warning"))
        assert warn == warning

    def test_trace_selector_covers_every_service_in_one_matcher(self) -> None:
        """Several services become one regex matcher on the service label, names escaped."""
        search = logql.LogSearch(namespace_label="namespace", namespace="prod", service_label="app",
                                 services=("orders", "gateway", "payment-api"))
        assert logql.selector(search) == '{namespace="prod", app=~"gateway|orders|payment\\\\-api"}'

    def test_limit_is_clamped_to_lokis_maximum(self) -> None:
        """Loki refuses more than 5000 entries per query; svcbot never asks for more."""
        assert (logql.clamp_limit(9000), logql.clamp_limit(0), logql.clamp_limit(250)) == (5000, 1, 250)

    def test_sparkline_step_gives_about_thirty_buckets(self) -> None:
        """15 minutes in 30-second buckets, a day in 48-minute buckets."""
        assert (logql.sparkline_step(900), logql.sparkline_step(86_400), logql.sparkline_step(10)) == (30, 2880, 1)


class TestExploreLink:
    def test_explore_link_uses_panes_with_the_query_and_range(self) -> None:
        """The link is Grafana 10.2+'s `panes=` format: a valid pane id, the query, the datasource, the range."""
        url = logql.explore_url("https://grafana.example.com/", "loki-uid", '{app="x"} |= "a b"',
                                1_700_000_000_000_000_000, 1_700_000_900_000_000_000)
        split = urlsplit(url)
        params = parse_qs(split.query)
        panes = json.loads(params["panes"][0])
        (pane_id, pane), = panes.items()
        assert split.path == "/explore"
        assert params["schemaVersion"] == ["1"]
        assert re.fullmatch(r"[0-9a-z]{3}", pane_id)
        assert not pane_id.isdigit()
        assert pane["datasource"] == "loki-uid"
        assert pane["queries"][0]["expr"] == '{app="x"} |= "a b"'
        assert pane["queries"][0]["datasource"] == {"type": "loki", "uid": "loki-uid"}
        assert pane["range"] == {"from": "1700000000000", "to": "1700000900000"}

    def test_explore_link_survives_slack_link_syntax(self) -> None:
        """No `|`, `<`, `>` or space in the link: it can sit in `<url|label>`."""
        url = logql.explore_url("https://g.example.com", None, '{a="b"} |= "<x> | y"', 0, 1)
        assert not re.search(r"[|<> ]", url)


def test_merging_orders_entries_of_all_streams() -> None:
    """Entries from several streams come out as one list, newest first (or oldest first)."""
    streams = [LogStream({"pod": "a"}, ((3, "a3"), (1, "a1"))),
               LogStream({"pod": "b"}, ((4, "b4"), (2, "b2")))]
    assert [entry.line for entry in logql.merge_streams(streams)] == ["b4", "a3", "b2", "a1"]
    assert [entry.line for entry in logql.merge_streams(streams, newest_first=False)] == ["a1", "b2", "a3", "b4"]
