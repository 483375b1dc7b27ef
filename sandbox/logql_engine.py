"""The LogQL subset svcbot emits, parsed and evaluated the way Loki does, for the Loki stand-in.

Strings follow Go's rules (Loki lexes with text/scanner and unquotes with strconv): double-quoted with
the escapes \\a \\b \\f \\n \\r \\t \\v \\\\ \\" \\NNN \\xHH \\uHHHH \\UHHHHHHHH, no raw newline, no NUL; or
backquoted, fully literal. Implemented here without json so that tests which decode svcbot's literals
with json.loads check them against an independent reader.

Supported: stream selectors (= != =~ !~, regexes fully anchored, at least one matcher that is not
empty-compatible); line filters (|= != |~ !~); `| json` (nested keys joined with `_`, arrays skipped,
names sanitised, `_extracted` on collision, `__error__="JSONParserErr"` on lines that are not JSON
objects); label filters (= != =~ !~ and numeric comparisons, joined with `and`, `,`, `or` and
parentheses); `count_over_time`, `rate`, `bytes_over_time` over `[range]`; `sum|count|min|max|avg`
with `by (...)` / `without (...)`. Errors carry Loki's wording where svcbot relies on it.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_POINTS = 11_000
EMPTY_COMPATIBLE = (
    "queries require at least one regexp or equality matcher that does not have an empty-compatible "
    'value. For instance, app=~".*" does not meet this requirement, but app=~".+" will'
)


class ParseError(ValueError):
    """A query Loki would refuse with `parse error at line L, col C: ...` (HTTP 400)."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(f"parse error at line {line}, col {col}: {message}")
        self.line, self.col, self.detail = line, col, message


class QueryError(ValueError):
    """A query that parses but that Loki refuses to run (HTTP 400)."""


# --- lexing ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # IDENT, STRING, NUMBER, DURATION, or the operator/punctuation itself; EOF
    text: str  # identifier text, string value, number/duration text
    line: int
    col: int


_OPERATORS = ("|=", "|~", "|>", "!=", "!~", "=~", "==", ">=", "<=", "=", ">", "<", "|",
              "{", "}", "(", ")", "[", "]", ",")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000, "d": 86_400_000_000_000, "w": 604_800_000_000_000,
            "y": 31_536_000_000_000_000}
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\", '"': '"'}


def duration_ns(text: str) -> int:
    return sum(round(float(number) * _UNIT_NS[unit]) for number, unit in _DURATION_PART.findall(text))


def _position(query: str, index: int) -> tuple[int, int]:
    line = query.count("\n", 0, index) + 1
    col = index - (query.rfind("\n", 0, index) + 1) + 1
    return line, col


def _go_string(query: str, start: int) -> tuple[str, int]:
    """Read a Go double-quoted string starting at `start` (the quote); return its value and the end."""
    out = bytearray()
    index = start + 1
    while True:
        if index >= len(query):
            raise ParseError(*_position(query, start), "literal not terminated")
        char = query[index]
        if char == '"':
            break
        if char == "\n":
            raise ParseError(*_position(query, start), "literal not terminated")
        if char == "\0":
            raise ParseError(*_position(query, index), "invalid character NUL")
        if char != "\\":
            out += _utf8(query, index)
            index += 1
            continue
        escape = query[index + 1: index + 2]
        if escape in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[escape].encode()
            index += 2
        elif escape in "01234567" and escape:
            digits = query[index + 1: index + 4]
            if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise ParseError(*_position(query, index), "invalid char escape")
            out.append(int(digits, 8))
            index += 4
        elif escape == "x":
            digits = query[index + 2: index + 4]
            if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise ParseError(*_position(query, index), "invalid char escape")
            out.append(int(digits, 16))
            index += 4
        elif escape in ("u", "U"):
            size = 4 if escape == "u" else 8
            digits = query[index + 2: index + 2 + size]
            if not re.fullmatch(rf"[0-9A-Fa-f]{{{size}}}", digits):
                raise ParseError(*_position(query, index), "invalid char escape")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise ParseError(*_position(query, index), "escape sequence is invalid Unicode code point")
            out += chr(code).encode()
            index += 2 + size
        else:
            raise ParseError(*_position(query, index), "invalid char escape")
    return out.decode("utf-8", errors="surrogateescape"), index + 1


def _utf8(query: str, index: int) -> bytes:
    try:
        return query[index].encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(*_position(query, index), "invalid UTF-8 encoding") from None


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(query):
        char = query[index]
        if char in " \t\r\n":
            index += 1
            continue
        if char == "#":  # a comment runs to the end of the line
            newline = query.find("\n", index)
            index = len(query) if newline < 0 else newline
            continue
        line, col = _position(query, index)
        if char == '"':
            value, index = _go_string(query, index)
            tokens.append(Token("STRING", value, line, col))
            continue
        if char == "`":
            end = query.find("`", index + 1)
            if end < 0:
                raise ParseError(line, col, "literal not terminated")
            for offset in range(index + 1, end):
                _utf8(query, offset)
            tokens.append(Token("STRING", query[index + 1:end], line, col))
            index = end + 1
            continue
        if char.isdigit():
            match = _DURATION.match(query, index)
            number = _NUMBER.match(query, index)
            if match and (number is None or match.end() > number.end()):
                tokens.append(Token("DURATION", match.group(0), line, col))
                index = match.end()
            else:
                assert number is not None
                tokens.append(Token("NUMBER", number.group(0), line, col))
                index = number.end()
            continue
        ident = _IDENT.match(query, index)
        if ident:
            tokens.append(Token("IDENT", ident.group(0), line, col))
            index = ident.end()
            continue
        for operator in _OPERATORS:
            if query.startswith(operator, index):
                tokens.append(Token(operator, operator, line, col))
                index += len(operator)
                break
        else:
            if char == "\0":
                raise ParseError(line, col, "invalid character NUL")
            _utf8(query, index)
            raise ParseError(line, col, f"syntax error: unexpected character {char!r}")
    line, col = _position(query, len(query))
    tokens.append(Token("EOF", "", line, col))
    return tokens


# --- the tree -------------------------------------------------------------------------------------------

# C++ RE2's error texts -> Go regexp/syntax's (what Loki answers with)
_GO_REGEXP_ERRORS = {
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid named capture group": "invalid named capture",
    "pattern too large - compile failed": "expression too large",
}
_RE2_OPTIONS: Any = None


def go_regexp(pattern: str) -> Any:
    """Compile `pattern` with RE2 the way Go's regexp package (Loki's) would: what Go rejects and C++ RE2
    accepts (`\\C`) is rejected too, errors read like Go's (`invalid or unsupported Perl syntax: `(?=``),
    and RE2's own error logging stays off the terminal. Raises ValueError with Go's message."""
    global _RE2_OPTIONS
    import re2  # noqa: PLC0415 - google-re2, only the Loki stand-in needs it

    if _RE2_OPTIONS is None:
        options = re2.Options()
        options.log_errors = False  # RE2 would print "re2/re2.cc:...: Error parsing ..." on stderr
        _RE2_OPTIONS = options
    bad = _go_only_rejects(pattern)
    if bad:
        raise ValueError(f"error parsing regexp: invalid escape sequence: `{bad}`")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        text = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        code, _, arg = text.partition(": ")
        raise ValueError(f"error parsing regexp: {_GO_REGEXP_ERRORS.get(code, code)}: `{arg}`") from None


def _go_only_rejects(pattern: str) -> str:
    """The escape Go's parser refuses that C++ RE2 takes: `\\C` (any byte), outside `\\Q...\\E`."""
    index, quoted = 0, False
    while index < len(pattern):
        pair = pattern[index:index + 2]
        if quoted:
            if pair == "\\E":
                quoted = False
                index += 2
                continue
            index += 1
            continue
        if pair == "\\Q":
            quoted = True
            index += 2
            continue
        if pair == "\\C":
            return pair
        index += 2 if pattern[index] == "\\" else 1
    return ""


def _compile(pattern: str, token: Token) -> Any:
    try:
        return go_regexp(pattern)
    except ValueError as exc:
        raise ParseError(token.line, token.col, str(exc)) from None


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str
    regex: Any = None  # a compiled RE2 pattern (go_regexp)

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(value) is not None  # label regexes are fully anchored
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class LineFilter:
    op: str  # |= != |~ !~
    value: str
    regex: Any = None  # a compiled RE2 pattern (go_regexp)

    def keeps(self, line: str) -> bool:
        if self.op == "|=":
            return self.value in line
        if self.op == "!=":
            return self.value not in line
        assert self.regex is not None
        found = self.regex.search(line) is not None
        return found if self.op == "|~" else not found


@dataclass(frozen=True)
class JsonStage:
    """`| json`: extract every JSON field of the line as a label (it has no arguments)."""


@dataclass(frozen=True)
class Comparison:
    name: str
    op: str  # = != =~ !~ (strings) or == != > >= < <= (numbers)
    value: str | float
    regex: Any = None  # a compiled RE2 pattern (go_regexp)

    def test(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if isinstance(self.value, float):
            try:
                number = float(actual)
            except ValueError:
                return False
            return {"==": number == self.value, "=": number == self.value, "!=": number != self.value,
                    ">": number > self.value, ">=": number >= self.value, "<": number < self.value,
                    "<=": number <= self.value}[self.op]
        return Matcher(self.name, self.op, self.value, self.regex).matches(actual)


@dataclass(frozen=True)
class BoolExpr:
    op: str  # and | or
    left: LabelExpr
    right: LabelExpr

    def test(self, labels: Mapping[str, str]) -> bool:
        if self.op == "and":
            return self.left.test(labels) and self.right.test(labels)
        return self.left.test(labels) or self.right.test(labels)


LabelExpr = Comparison | BoolExpr


@dataclass(frozen=True)
class LabelFilter:
    expr: LabelExpr


Stage = LineFilter | JsonStage | LabelFilter


@dataclass(frozen=True)
class LogExpr:
    matchers: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()


@dataclass(frozen=True)
class RangeAggregation:
    function: str  # count_over_time | rate | bytes_over_time
    log: LogExpr
    range_ns: int


@dataclass(frozen=True)
class VectorAggregation:
    op: str  # sum | count | min | max | avg
    inner: MetricExpr
    grouping: tuple[str, ...] | None = None
    without: bool = False


MetricExpr = RangeAggregation | VectorAggregation
Expr = LogExpr | MetricExpr

_RANGE_FUNCTIONS = ("count_over_time", "rate", "bytes_over_time")
_VECTOR_OPS = ("sum", "count", "min", "max", "avg")
_STRING_OPS = ("=", "!=", "=~", "!~")
_NUMBER_OPS = ("==", "!=", ">", ">=", "<", "<=", "=")


# --- parsing --------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = tokenize(query)
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def fail(self, expecting: str) -> ParseError:
        token = self.token
        seen = "EOF" if token.kind == "EOF" else (
            "STRING" if token.kind == "STRING" else "IDENTIFIER" if token.kind == "IDENT" else token.text)
        return ParseError(token.line, token.col, f"syntax error: unexpected {seen}, expecting {expecting}")

    def expect(self, kind: str, expecting: str | None = None) -> Token:
        if self.token.kind != kind:
            raise self.fail(expecting or kind)
        return self.take()

    def keyword(self, *words: str) -> bool:
        return self.token.kind == "IDENT" and self.token.text in words

    # expr := metric | log
    def parse(self) -> Expr:
        expr: Expr = self.metric() if self.token.kind == "IDENT" else self.log()
        if self.token.kind != "EOF":
            raise self.fail("end of query")
        return expr

    def metric(self) -> MetricExpr:
        name = self.token
        if name.text in _RANGE_FUNCTIONS:
            self.take()
            self.expect("(")
            log = self.log()
            self.expect("[")
            duration = self.expect("DURATION", "DURATION")
            self.expect("]")
            self.expect(")")
            return RangeAggregation(name.text, log, duration_ns(duration.text))
        if name.text in _VECTOR_OPS:
            self.take()
            grouping, without = self.grouping()
            self.expect("(")
            inner = self.metric()
            self.expect(")")
            if grouping is None:
                grouping, without = self.grouping()
            return VectorAggregation(name.text, inner, grouping, without)
        raise ParseError(name.line, name.col, f"syntax error: unexpected IDENTIFIER {name.text!r}")

    def grouping(self) -> tuple[tuple[str, ...] | None, bool]:
        if not self.keyword("by", "without"):
            return None, False
        without = self.take().text == "without"
        self.expect("(")
        names: list[str] = []
        while self.token.kind != ")":
            names.append(self.expect("IDENT", "IDENTIFIER").text)
            if self.token.kind == ",":
                self.take()
        self.expect(")")
        return tuple(names), without

    def log(self) -> LogExpr:
        matchers = self.selector()
        stages: list[Stage] = []
        while self.token.kind in ("|=", "!=", "|~", "!~", "|"):
            operator = self.take()
            if operator.kind != "|":
                value = self.expect("STRING", "STRING")
                regex = _compile(value.text, value) if operator.kind in ("|~", "!~") else None
                stages.append(LineFilter(operator.kind, value.text, regex))
            elif self.keyword("json"):
                self.take()
                stages.append(JsonStage())
            elif self.keyword("logfmt", "line_format", "label_format", "unpack", "pattern", "regexp",
                              "decolorize", "drop", "keep"):
                token = self.token
                raise ParseError(token.line, token.col, f"the stand-in does not implement `{token.text}`")
            else:
                stages.append(LabelFilter(self.label_or()))
        return LogExpr(tuple(matchers), tuple(stages))

    def selector(self) -> list[Matcher]:
        self.expect("{", "{")
        matchers: list[Matcher] = []
        while True:
            name = self.expect("IDENT", "IDENTIFIER")
            if self.token.kind not in _STRING_OPS:
                raise self.fail("= or != or =~ or !~")
            op = self.take().kind
            value = self.expect("STRING", "STRING")
            regex = _compile(value.text, value) if op in ("=~", "!~") else None
            matchers.append(Matcher(name.text, op, value.text, regex))
            if self.token.kind == ",":
                self.take()
                continue
            self.expect("}", "} or ,")
            break
        if all(matcher.matches("") for matcher in matchers):
            raise QueryError(EMPTY_COMPATIBLE)
        return matchers

    # label filters: or < and (also `,` and juxtaposition) < primary
    def label_or(self) -> LabelExpr:
        left = self.label_and()
        while self.keyword("or"):
            self.take()
            left = BoolExpr("or", left, self.label_and())
        return left

    def label_and(self) -> LabelExpr:
        left = self.label_primary()
        while self.keyword("and") or self.token.kind == "," or (
                self.token.kind == "IDENT" and self.token.text not in ("or", "and")):
            if self.token.kind == "," or self.keyword("and"):
                self.take()
            left = BoolExpr("and", left, self.label_primary())
        return left

    def label_primary(self) -> LabelExpr:
        if self.token.kind == "(":
            self.take()
            inner = self.label_or()
            self.expect(")")
            return inner
        name = self.expect("IDENT", "IDENTIFIER")
        op = self.token.kind
        if op in _STRING_OPS and self.peek().kind == "STRING":
            self.take()
            value = self.take()
            regex = _compile(value.text, value) if op in ("=~", "!~") else None
            return Comparison(name.text, op, value.text, regex)
        if op in _NUMBER_OPS and self.peek().kind in ("NUMBER", "DURATION"):
            self.take()
            number = self.take()
            value = float(number.text) if number.kind == "NUMBER" else duration_ns(number.text) / 1e9
            return Comparison(name.text, op, value)
        raise self.fail("STRING or NUMBER after a label filter operator")


def parse(query: str) -> Expr:
    """The query's tree, or ParseError / QueryError with Loki's wording."""
    return _Parser(query).parse()


# --- evaluation -----------------------------------------------------------------------------------------

@dataclass
class Stream:
    labels: dict[str, str]
    timestamps: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def add(self, timestamp_ns: int, line: str) -> None:
        at = bisect.bisect_right(self.timestamps, timestamp_ns)
        # Loki drops an entry identical to one already in the stream (same time, same line).
        if at > 0 and self.timestamps[at - 1] == timestamp_ns and self.lines[at - 1] == line:
            return
        self.timestamps.insert(at, timestamp_ns)
        self.lines.insert(at, line)

    def window(self, start_ns: int, end_ns: int) -> range:
        """Indexes of entries in [start, end)."""
        return range(bisect.bisect_left(self.timestamps, start_ns), bisect.bisect_left(self.timestamps, end_ns))


_SANITISE = re.compile(r"[^A-Za-z0-9_]")


def _flatten(value: Mapping[str, Any], prefix: str, out: dict[str, str]) -> None:
    for key, item in value.items():
        name = _SANITISE.sub("_", str(key).strip())
        if not prefix and name[:1].isdigit():
            name = "_" + name
        name = f"{prefix}_{name}" if prefix else name
        if isinstance(item, dict):
            _flatten(item, name, out)
        elif isinstance(item, list) or item is None:
            continue
        elif isinstance(item, bool):
            out[name] = "true" if item else "false"
        else:
            out[name] = item if isinstance(item, str) else json.dumps(item)  # numbers as JSON spells them


def run_pipeline(stages: Iterable[Stage], labels: Mapping[str, str], line: str) -> dict[str, str] | None:
    """The labels an entry has after the pipeline, or None when a stage drops it."""
    current = dict(labels)
    for stage in stages:
        if isinstance(stage, LineFilter):
            if not stage.keeps(line):
                return None
        elif isinstance(stage, JsonStage):
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                current["__error__"] = "JSONParserErr"
                continue
            extracted: dict[str, str] = {}
            _flatten(parsed, "", extracted)
            for name, value in extracted.items():
                current[f"{name}_extracted" if name in labels else name] = value
        elif not stage.expr.test(current):
            return None
    return current


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def select(streams: Iterable[Stream], matchers: Iterable[Matcher]) -> list[Stream]:
    matchers = tuple(matchers)
    return [stream for stream in streams
            if all(matcher.matches(stream.labels.get(matcher.name, "")) for matcher in matchers)]


def eval_log(expr: LogExpr, streams: Iterable[Stream], start_ns: int, end_ns: int, *, limit: int,
             backward: bool) -> list[dict[str, Any]]:
    """A `streams` result: at most `limit` entries in all, the newest (backward) or oldest (forward)."""
    found: list[tuple[int, str, tuple[tuple[str, str], ...]]] = []
    for stream in select(streams, expr.matchers):
        for index in stream.window(start_ns, end_ns):
            line = stream.lines[index]
            labels = run_pipeline(expr.stages, stream.labels, line)
            if labels is not None:
                found.append((stream.timestamps[index], line, _key(labels)))
    found.sort(key=lambda entry: entry[0], reverse=backward)
    grouped: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
    for timestamp_ns, line, key in found[:limit]:
        grouped.setdefault(key, []).append([str(timestamp_ns), line])
    return [{"stream": dict(key), "values": values} for key, values in grouped.items()]


def _series_samples(expr: RangeAggregation, streams: Iterable[Stream], start_ns: int,
                    end_ns: int) -> dict[tuple[tuple[str, str], ...], list[tuple[int, int]]]:
    """(timestamp, bytes) of each entry in [start - range, end], by its labels after the pipeline."""
    samples: dict[tuple[tuple[str, str], ...], list[tuple[int, int]]] = {}
    for stream in select(streams, expr.log.matchers):
        for index in stream.window(start_ns - expr.range_ns, end_ns + 1):
            line = stream.lines[index]
            labels = run_pipeline(expr.log.stages, stream.labels, line)
            if labels is None:
                continue
            if "__error__" in labels:
                shown = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(stream.labels.items())) + "}"
                raise QueryError(
                    f"pipeline error: '{labels['__error__']}' for series: '{shown}'.\nUse a label filter to "
                    f'intentionally skip this error. (e.g | __error__!="{labels["__error__"]}").\nTo skip all '
                    f'potential errors you can match empty errors.(e.g __error__="")\nThe label filter can '
                    "also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )")
            samples.setdefault(_key(labels), []).append((stream.timestamps[index], len(line.encode())))
    for values in samples.values():
        values.sort()
    return samples


def _range_value(expr: RangeAggregation, window: list[tuple[int, int]]) -> float:
    if expr.function == "count_over_time":
        return float(len(window))
    if expr.function == "rate":
        return len(window) / (expr.range_ns / 1e9)
    return float(sum(size for _, size in window))


Points = dict[tuple[tuple[str, str], ...], dict[int, float]]


def _eval_metric(expr: MetricExpr, streams: list[Stream], steps: list[int]) -> Points:
    if isinstance(expr, RangeAggregation):
        samples = _series_samples(expr, streams, steps[0], steps[-1])
        out: Points = {}
        for key, values in samples.items():
            times = [timestamp for timestamp, _ in values]
            points: dict[int, float] = {}
            for step in steps:
                low = bisect.bisect_right(times, step - expr.range_ns)
                high = bisect.bisect_right(times, step)
                if high > low:  # Loki returns no point for an empty window
                    points[step] = _range_value(expr, values[low:high])
            if points:
                out[key] = points
        return out
    inner = _eval_metric(expr.inner, streams, steps)
    groups: dict[tuple[tuple[str, str], ...], dict[int, list[float]]] = {}
    for key, points in inner.items():
        labels = dict(key)
        if expr.grouping is None:
            labels = {}
        elif expr.without:
            labels = {name: value for name, value in labels.items() if name not in expr.grouping}
        else:
            labels = {name: labels[name] for name in expr.grouping if labels.get(name, "") != ""}
        bucket = groups.setdefault(_key(labels), {})
        for step, value in points.items():
            bucket.setdefault(step, []).append(value)
    reduce: Callable[[list[float]], float] = {
        "sum": sum, "count": lambda values: float(len(values)), "min": min, "max": max,
        "avg": lambda values: sum(values) / len(values),
    }[expr.op]
    return {key: {step: reduce(values) for step, values in points.items()} for key, points in groups.items()}


def format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _seconds(timestamp_ns: int) -> float | int:
    return timestamp_ns // 1_000_000_000 if timestamp_ns % 1_000_000_000 == 0 else timestamp_ns / 1e9


def eval_matrix(expr: MetricExpr, streams: Iterable[Stream], start_ns: int, end_ns: int,
                step_ns: int) -> list[dict[str, Any]]:
    if step_ns <= 0:
        raise QueryError("zero or negative query resolution step widths are not accepted. "
                         "Try a positive integer")
    if (end_ns - start_ns) // step_ns + 1 > MAX_POINTS:
        raise QueryError("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
                         "query resolution (?step=XX)")
    steps = list(range(start_ns, end_ns + 1, step_ns))
    points = _eval_metric(expr, list(streams), steps)
    return [{"metric": dict(key), "values": [[_seconds(step), format_number(value)]
                                             for step, value in sorted(series.items())]}
            for key, series in sorted(points.items())]


def eval_vector(expr: MetricExpr, streams: Iterable[Stream], time_ns: int) -> list[dict[str, Any]]:
    points = _eval_metric(expr, list(streams), [time_ns])
    return [{"metric": dict(key), "value": [_seconds(time_ns), format_number(series[time_ns])]}
            for key, series in sorted(points.items())]
