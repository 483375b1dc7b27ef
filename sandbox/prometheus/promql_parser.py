"""A recursive-descent (Pratt) parser for the PromQL subset the stand-in evaluates (docs/promql-subset.md).

    parse('sum by (app) (rate(http_requests_total{code=~"5.."}[5m]))') -> Aggregate(...)

Anything outside the subset raises ParseError with Prometheus' message style ("1:5: parse error: ..."),
which the HTTP API answers with `bad_data`. Operator precedence and associativity as in Prometheus:
comparisons < + - < * / % < unary minus; all left-associative. `^`, `and`/`or`/`unless`, `@`, subqueries,
group_left/group_right and the functions not listed are refused by name, never misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "count"})
UNSUPPORTED_AGGREGATIONS = frozenset({"stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group"})
# name -> argument types ("v" instant vector, "m" range vector, "s" scalar), the result type
FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "rate": (("m",), "vector"), "irate": (("m",), "vector"), "increase": (("m",), "vector"),
    "avg_over_time": (("m",), "vector"), "max_over_time": (("m",), "vector"),
    "min_over_time": (("m",), "vector"), "last_over_time": (("m",), "vector"),
    "histogram_quantile": (("s", "v"), "vector"), "clamp_min": (("v", "s"), "vector"),
    "clamp_max": (("v", "s"), "vector"), "abs": (("v",), "vector"), "vector": (("s",), "vector"),
    "scalar": (("v",), "scalar"), "time": ((), "scalar"),
}
ARITHMETIC = ("+", "-", "*", "/", "%")
COMPARISON = ("==", "!=", ">", "<", ">=", "<=")
PRECEDENCE = {"==": 1, "!=": 1, ">": 1, "<": 1, ">=": 1, "<=": 1, "+": 2, "-": 2, "*": 3, "/": 3, "%": 3}
UNARY_PRECEDENCE = 4
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<duration>(?:[0-9]+(?:ms|[smhdwy]))+(?![A-Za-z0-9_]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^=<>(){}\[\],@:])
""", re.VERBOSE)


class ParseError(ValueError):
    """A query outside the grammar or the subset (the HTTP API answers bad_data)."""


# ---------------------------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False)

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self.regex is not None
        hit = self.regex.fullmatch(value) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class NumberLiteral:
    value: float


@dataclass(frozen=True)
class VectorSelector:
    matchers: tuple[Matcher, ...]
    offset: float = 0.0  # seconds


@dataclass(frozen=True)
class MatrixSelector:
    vector: VectorSelector
    range: float  # seconds


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Expr
    grouping: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True)
class Unary:
    expr: Expr  # unary minus


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    bool_: bool = False
    on: tuple[str, ...] | None = None  # on(...) labels; None with ignoring below
    ignoring: tuple[str, ...] = ()


@dataclass(frozen=True)
class Paren:
    expr: Expr


Expr = NumberLiteral | VectorSelector | MatrixSelector | Call | Aggregate | Unary | Binary | Paren


def value_type(e: Expr) -> str:
    """'scalar', 'vector' or 'matrix', as Prometheus' type checker sees the expression."""
    match e:
        case NumberLiteral():
            return "scalar"
        case VectorSelector() | Aggregate():
            return "vector"
        case MatrixSelector():
            return "matrix"
        case Call(func=func):
            return FUNCTIONS[func][1]
        case Unary(expr=inner) | Paren(expr=inner):
            return value_type(inner)
        case Binary(lhs=lhs, rhs=rhs):
            return "scalar" if value_type(lhs) == value_type(rhs) == "scalar" else "vector"
    raise AssertionError(e)


def parse_duration(text: str) -> float:
    """'1h30m' -> 5400.0 seconds (Prometheus' units ms s m h d w y, largest first)."""
    parts = re.findall(r"([0-9]+)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ParseError(f'not a valid duration string: "{text}"')
    return sum(int(n) * DURATION_UNITS[u] for n, u in parts)


# ---------------------------------------------------------------------------------------------- parsing


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _lex(query: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if m is None:
            raise ParseError(f"1:{pos + 1}: parse error: unexpected character: {query[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    out.append(_Tok("eof", "", pos))
    return out


def parse(query: str) -> Expr:
    if not query.strip():
        raise ParseError("1:1: parse error: no expression found in input")
    parser = _Parser(_lex(query))
    expr = parser.expression(0)
    tok = parser.peek()
    if tok.kind != "eof":
        raise parser.error(tok, f"unexpected {tok.text!r}")
    return expr


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, tok: _Tok, what: str) -> ParseError:
        return ParseError(f"1:{tok.pos + 1}: parse error: {what}")

    def expect(self, text: str) -> _Tok:
        tok = self.take()
        if tok.text != text:
            raise self.error(tok, f"unexpected {tok.text or 'end of input'!r}, expected {text!r}")
        return tok

    def word(self, tok: _Tok) -> str:
        return tok.text.lower() if tok.kind == "ident" else ""

    # -------------------------------------------------------------- binary operators (Pratt loop)

    def expression(self, min_prec: int) -> Expr:
        lhs = self.unary()
        while True:
            tok = self.peek()
            if tok.kind == "ident" and self.word(tok) in ("and", "or", "unless", "atan2"):
                raise self.error(tok, f"the operator {tok.text!r} is not supported by the sandbox's Prometheus")
            if tok.text == "^":
                raise self.error(tok, "the operator '^' is not supported by the sandbox's Prometheus")
            prec = PRECEDENCE.get(tok.text) if tok.kind == "op" else None
            if prec is None or prec < min_prec:
                return lhs
            self.take()
            op = tok.text
            bool_, on, ignoring = self.modifiers(op)
            rhs = self.expression(prec + 1)
            lhs = self.binary(tok, op, lhs, rhs, bool_, on, ignoring)

    def modifiers(self, op: str) -> tuple[bool, tuple[str, ...] | None, tuple[str, ...]]:
        bool_ = False
        on: tuple[str, ...] | None = None
        ignoring: tuple[str, ...] = ()
        if self.word(self.peek()) == "bool":
            if op not in COMPARISON:
                raise self.error(self.peek(), "bool modifier can only be used on comparison operators")
            self.take()
            bool_ = True
        if self.word(self.peek()) in ("on", "ignoring"):
            which = self.word(self.take())
            labels = self.label_list()
            if which == "on":
                on = labels
            else:
                ignoring = labels
            if self.word(self.peek()) in ("group_left", "group_right"):
                raise self.error(self.peek(), f"{self.peek().text} is not supported by the sandbox's Prometheus")
        return bool_, on, ignoring

    def binary(self, tok: _Tok, op: str, lhs: Expr, rhs: Expr, bool_: bool,  # noqa: PLR0917
               on: tuple[str, ...] | None, ignoring: tuple[str, ...]) -> Expr:
        lt, rt = value_type(lhs), value_type(rhs)
        for side in (lt, rt):
            if side not in ("scalar", "vector"):
                raise self.error(tok, 'binary expression must contain only scalar and instant vector types')
        if op in COMPARISON and lt == rt == "scalar" and not bool_:
            raise self.error(tok, "comparisons between scalars must use BOOL modifier")
        if (on is not None or ignoring) and not (lt == rt == "vector"):
            raise self.error(tok, "vector matching only allowed between instant vectors")
        return Binary(op, lhs, rhs, bool_, on, ignoring)

    # -------------------------------------------------------------- unary and primary expressions

    def unary(self) -> Expr:
        tok = self.peek()
        if tok.text in ("-", "+") and tok.kind == "op":
            self.take()
            inner = self.expression(UNARY_PRECEDENCE)
            if value_type(inner) not in ("scalar", "vector"):
                raise self.error(tok, "unary expression only allowed on expressions of type scalar or instant vector")
            if tok.text == "+":
                return inner
            if isinstance(inner, NumberLiteral):
                return NumberLiteral(-inner.value)
            return Unary(inner)
        return self.postfix(self.primary())

    def postfix(self, expr: Expr) -> Expr:
        while True:
            tok = self.peek()
            if tok.text == "[":
                start = self.take()
                if not isinstance(expr, VectorSelector) or expr.offset:
                    raise self.error(start, "ranges only allowed for vector selectors")
                dur = self.take()
                if self.peek().text.startswith(":") or dur.text.startswith(":"):
                    raise self.error(self.peek(), "subqueries are not supported by the sandbox's Prometheus")
                if dur.kind != "duration":
                    raise self.error(dur, f"unexpected {dur.text!r} in matrix selector, expected a duration")
                self.expect("]")
                expr = MatrixSelector(expr, parse_duration(dur.text))
            elif self.word(tok) == "offset":
                self.take()
                sign = -1.0 if self.peek().text == "-" else 1.0
                if self.peek().text in ("-", "+"):
                    self.take()
                dur = self.take()
                if dur.kind != "duration":
                    raise self.error(dur, f"unexpected {dur.text!r} in offset, expected a duration")
                offset = sign * parse_duration(dur.text)
                if isinstance(expr, VectorSelector) and not expr.offset:
                    expr = VectorSelector(expr.matchers, offset)
                elif isinstance(expr, MatrixSelector) and not expr.vector.offset:
                    expr = MatrixSelector(VectorSelector(expr.vector.matchers, offset), expr.range)
                else:
                    raise self.error(tok, "offset modifier must be preceded by an instant vector selector or "
                                          "range vector selector")
            elif tok.text == "@":
                raise self.error(tok, "the @ modifier is not supported by the sandbox's Prometheus")
            else:
                return expr

    def primary(self) -> Expr:
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            return NumberLiteral(float(int(tok.text, 16)) if tok.text.lower().startswith("0x") else float(tok.text))
        if tok.kind == "duration":
            raise self.error(tok, f"unexpected duration {tok.text!r}")
        if tok.text == "(":
            self.take()
            inner = self.expression(0)
            self.expect(")")
            return Paren(inner)
        if tok.text == "{":
            return self.selector("")
        if tok.kind == "string":
            raise self.error(tok, "string literals are not supported by the sandbox's Prometheus")
        if tok.kind != "ident":
            raise self.error(tok, f"unexpected {tok.text or 'end of input'!r}")
        word = tok.text.lower()
        if word in ("inf", "nan") and self.peek(1).text not in ("{", "("):
            self.take()
            return NumberLiteral(float(word))
        if word in AGGREGATIONS and (self.peek(1).text == "(" or self.word(self.peek(1)) in ("by", "without")):
            return self.aggregation()
        if word in UNSUPPORTED_AGGREGATIONS and (self.peek(1).text == "("
                                                 or self.word(self.peek(1)) in ("by", "without")):
            raise self.error(tok, f"the aggregation {tok.text!r} is not supported by the sandbox's Prometheus")
        if self.peek(1).text == "(":
            return self.call()
        return self.selector(self.take().text)

    def aggregation(self) -> Expr:
        op = self.take().text.lower()
        grouping: tuple[str, ...] = ()
        without = False
        seen = False
        if self.word(self.peek()) in ("by", "without"):
            without = self.word(self.take()) == "without"
            grouping, seen = self.label_list(), True
        self.expect("(")
        inner = self.expression(0)
        if self.peek().text == ",":
            raise self.error(self.peek(), "wrong number of arguments for aggregate expression provided, "
                                          "expected 1, got 2")
        self.expect(")")
        if self.word(self.peek()) in ("by", "without"):
            if seen:
                raise self.error(self.peek(), "unexpected grouping: given twice")
            without = self.word(self.take()) == "without"
            grouping = self.label_list()
        if value_type(inner) != "vector":
            raise ParseError(f"1:1: parse error: expected type instant vector in aggregation expression, "
                             f"got {_type_name(value_type(inner))}")
        return Aggregate(op, inner, grouping, without)

    def call(self) -> Expr:
        tok = self.take()
        name = tok.text
        if name not in FUNCTIONS:
            raise self.error(tok, f"function {name!r} is not supported by the sandbox's Prometheus "
                                  f"(supported: {', '.join(sorted(FUNCTIONS))})")
        self.expect("(")
        args: list[Expr] = []
        if self.peek().text != ")":
            args.append(self.expression(0))
            while self.peek().text == ",":
                self.take()
                args.append(self.expression(0))
        self.expect(")")
        want = FUNCTIONS[name][0]
        if len(args) != len(want):
            raise self.error(tok, f"expected {len(want)} argument(s) in call to {name!r}, got {len(args)}")
        for arg, kind in zip(args, want, strict=True):
            got = value_type(arg)
            expected = {"v": "vector", "m": "matrix", "s": "scalar"}[kind]
            if got != expected:
                raise self.error(tok, f"expected type {_type_name(expected)} in call to function {name!r}, "
                                      f"got {_type_name(got)}")
        return Call(name, tuple(args))

    def label_list(self) -> tuple[str, ...]:
        self.expect("(")
        labels: list[str] = []
        while self.peek().text != ")":
            tok = self.take()
            if tok.kind != "ident":
                raise self.error(tok, f"unexpected {tok.text or 'end of input'!r} in grouping opts, "
                                      "expected label")
            labels.append(tok.text)
            if self.peek().text == ",":
                self.take()
            elif self.peek().text != ")":
                raise self.error(self.peek(), f"unexpected {self.peek().text!r} in grouping opts, expected ','")
        self.expect(")")
        return tuple(labels)

    def selector(self, name: str) -> VectorSelector:
        matchers: list[Matcher] = []
        if name:
            matchers.append(Matcher("__name__", "=", name))
        if self.peek().text == "{":
            self.take()
            while self.peek().text != "}":
                label = self.take()
                if label.kind != "ident":
                    raise self.error(label, f"unexpected {label.text or 'end of input'!r} in label matching, "
                                            "expected label")
                op = self.take()
                if op.text not in ("=", "!=", "=~", "!~"):
                    raise self.error(op, f"unexpected {op.text!r} in label matching, expected one of "
                                         "'=', '!=', '=~' or '!~'")
                value = self.take()
                if value.kind != "string":
                    raise self.error(value, f"unexpected {value.text!r} in label matching, expected string")
                matchers.append(_matcher(label.text, op.text, _unquote(value.text), self, value))
                if self.peek().text == ",":
                    self.take()
                elif self.peek().text != "}":
                    raise self.error(self.peek(), f"unexpected {self.peek().text!r} in label matching, "
                                                  "expected ',' or '}'")
            self.expect("}")
        if name and any(m.name == "__name__" for m in matchers[1:]):
            raise ParseError(f'1:1: parse error: metric name must not be set twice: "{name}"')
        if not any(not m.matches("") for m in matchers):
            raise ParseError("1:1: parse error: vector selector must contain at least one non-empty matcher")
        return VectorSelector(tuple(matchers))


def _matcher(label: str, op: str, value: str, parser: _Parser, tok: _Tok) -> Matcher:
    if op in ("=~", "!~"):
        try:
            return Matcher(label, op, value, re.compile(value))
        except re.error as e:
            raise parser.error(tok, f"error parsing regexp: {e}") from None
    return Matcher(label, op, value)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v"}


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)",
                  lambda m: chr(int(m.group(1)[1:], 16)) if len(m.group(1)) > 1 else _ESCAPES.get(m.group(1),
                                                                                              m.group(0)), body)


def _type_name(kind: str) -> str:
    return {"vector": "instant vector", "matrix": "range vector", "scalar": "scalar"}[kind]
