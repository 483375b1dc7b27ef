"""LogQL text built from catalog names and user text, and the shapes Loki answers with. Pure functions.

User text (--grep, --trace) enters a query only as a string literal made by `string_literal`, which
follows Go's string rules (Loki lexes queries with Go's text/scanner and unquotes with strconv): the
backslash, the double quote and every control or invisible character are escaped, nothing else is, and
the text must be valid UTF-8 (a lone surrogate is refused). Literals built this way are also valid JSON
strings, which is how the tests decode them independently. Regex text is escaped for RE2 first. Label
names never come from users: only from the catalog, and checked against Prometheus' label-name rule.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from bot.clients.loki import LABEL_NAME, MAX_LIMIT, LogStream

DEFAULT_LIMIT = 100

# Severity order (DESIGN.md: debug < info < warn < error < fatal; `warning` = `warn`). Each level lists the
# spellings common Go/Java loggers write, so `--level error` also finds "ERR" and zap's "dpanic".
LEVELS: tuple[str, ...] = ("debug", "info", "warn", "error", "fatal")
LEVEL_SPELLINGS: Mapping[str, tuple[str, ...]] = {
    "debug": ("debug", "trace"),
    "info": ("info", "notice"),
    "warn": ("warn", "warning"),
    "error": ("error", "err"),
    "fatal": ("fatal", "panic", "dpanic", "critical", "crit", "emergency", "alert"),
}
LEVEL_CHOICES: tuple[str, ...] = ("debug", "info", "warn", "warning", "error", "fatal")
_CANONICAL = {spelling: level for level, spellings in LEVEL_SPELLINGS.items() for spelling in spellings}

# JSON fields a structured line carries (what the seed and most Go loggers write).
LEVEL_FIELD = "level"
TRACE_FIELD = "trace_id"


class LogQLError(ValueError):
    """Text that cannot be put into a query (a lone surrogate), or a label name that is not one."""


# --- literals -------------------------------------------------------------------------------------------

# Escaped as \u00NN / \uNNNN: C0/C1 controls, DEL, and the invisible BMP characters (format, line/paragraph
# separators, private use, unassigned) so a query shown to a person shows what it matches. Characters
# outside the BMP stay literal: JSON would spell them as surrogate pairs, which Go rejects.
def _needs_escape(char: str) -> bool:
    if char in '"\\':
        return True
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return True
    return code <= 0xFFFF and unicodedata.category(char) in {"Cf", "Zl", "Zp", "Co", "Cn", "Cs"}


_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE_CACHE: dict[str, str] = {}


def _escape_char(char: str) -> str:
    escaped = _ESCAPE_CACHE.get(char)
    if escaped is None:
        escaped = _SHORT.get(char) or (f"\\u{ord(char):04x}" if _needs_escape(char) else char)
        if len(_ESCAPE_CACHE) < 4096:
            _ESCAPE_CACHE[char] = escaped
    return escaped


def check_text(text: str) -> str:
    """The text itself, or LogQLError when it is not valid UTF-8 (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LogQLError("the text contains characters that are not valid UTF-8") from None
    return text


def string_literal(text: str) -> str:
    """A double-quoted LogQL (Go) string literal whose value is exactly `text`."""
    check_text(text)
    return '"' + "".join(_escape_char(char) for char in text) + '"'


def regex_literal(text: str, *, ignore_case: bool = False) -> str:
    """A literal for `|~` / `=~` matching `text` literally (RE2-escaped first)."""
    check_text(text)
    return string_literal(("(?i)" if ignore_case else "") + re.escape(text))


def alternation_pattern(values: Iterable[str]) -> str:
    """An RE2 pattern matching exactly one of `values` (Loki anchors label regexes at both ends)."""
    escaped = [re.escape(check_text(value)) for value in sorted(set(values))]
    if not escaped:
        raise LogQLError("an alternation needs at least one value")
    return "|".join(escaped)


def alternation_literal(values: Iterable[str]) -> str:
    return string_literal(alternation_pattern(values))


def label_name(name: str) -> str:
    if not LABEL_NAME.match(name):
        raise LogQLError(f"{name!r} is not a valid Loki label name")
    return name


# --- queries --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogSearch:
    """What to look for: where (stream labels from the catalog) and which lines (user text)."""

    namespace_label: str
    namespace: str
    service_label: str
    services: tuple[str, ...]
    grep: str | None = None
    trace_id: str | None = None
    level: str | None = None  # "L and above"


def canonical_level(value: str) -> str:
    """'WARNING' -> 'warn', 'err' -> 'error'; unknown spellings lowercased as they are; '' stays ''."""
    lowered = value.strip().lower()
    return _CANONICAL.get(lowered, lowered)


def levels_at_or_above(level: str) -> tuple[str, ...]:
    """Every spelling of `level` and the levels above it."""
    canonical = canonical_level(level)
    if canonical not in LEVELS:
        raise LogQLError(f"unknown level {level!r} (known: {', '.join(LEVEL_CHOICES)})")
    chosen = LEVELS[LEVELS.index(canonical):]
    return tuple(spelling for name in chosen for spelling in LEVEL_SPELLINGS[name])


def selector(search: LogSearch) -> str:
    namespace = f"{label_name(search.namespace_label)}={string_literal(search.namespace)}"
    service_label = label_name(search.service_label)
    if len(search.services) == 1:
        service = f"{service_label}={string_literal(search.services[0])}"
    else:
        service = f"{service_label}=~{alternation_literal(search.services)}"
    return "{" + namespace + ", " + service + "}"


def _line_filters(search: LogSearch) -> str:
    # Substring filters run before any parsing: they are the cheap part of a Loki query.
    parts = [f" |= {string_literal(text)}" for text in (search.grep, search.trace_id) if text]
    return "".join(parts)


def log_query(search: LogSearch) -> str:
    """The lines query: selector, line filters, `| json`, then level and trace_id label filters.

    Non-JSON lines (a Go panic's stack trace, a library printing to stdout) fail `| json` and carry
    `__error__`. `| __error__=""` would drop them silently, and they are often the very lines an on-call
    engineer needs. So each label filter is `<filter> or __error__!=""`: a JSON line must match it, a line
    that is not JSON passes (it still had to contain the --grep/--trace text) and is shown raw, marked as
    not parsed, and counted. They have no level to compare, so `--level` cannot judge them either way.
    """
    query = selector(search) + _line_filters(search) + " | json"
    if search.level:
        # (?i): loggers write ERROR as often as error; the spellings above are lowercase.
        levels = string_literal("(?i)" + alternation_pattern(levels_at_or_above(search.level)))
        query += f' | {LEVEL_FIELD}=~{levels} or __error__!=""'
    if search.trace_id:
        query += f' | {_trace_filter(search.trace_id)} or __error__!=""'
    return query


_SHORT_TRACE_ID = re.compile(r"^[0-9a-f]{16}$")


def _trace_filter(trace_id: str) -> str:
    """trace_id equal to the id; a 16-character (64-bit) id also matches its zero-padded 32-character form
    (W3C Trace Context, OpenTelemetry)."""
    if _SHORT_TRACE_ID.match(trace_id):
        return f"{TRACE_FIELD}=~{string_literal('(?:0{16})?' + trace_id)}"
    return f"{TRACE_FIELD}={string_literal(trace_id)}"


def level_count_query(search: LogSearch, step_seconds: int) -> str:
    """Lines per level per step: every filter but --level, JSON lines only (a metric query fails on
    lines that carry `__error__`, and lines that are not JSON have no level to count by)."""
    inner = selector(search) + _line_filters(search) + ' | json | __error__=""'
    if search.trace_id:
        inner += f" | {_trace_filter(search.trace_id)}"
    return f"sum by ({LEVEL_FIELD}) (count_over_time({inner} [{int(step_seconds)}s]))"


def sparkline_step(range_seconds: float, buckets: int = 30) -> int:
    """Whole seconds per bucket so that about `buckets` buckets cover the range."""
    return max(1, math.ceil(range_seconds / buckets))


def clamp_limit(limit: int) -> int:
    return max(1, min(MAX_LIMIT, limit))


# --- Grafana Explore ------------------------------------------------------------------------------------

def explore_url(grafana_url: str, datasource_uid: str | None, query: str, start_ns: int, end_ns: int) -> str:
    """A Grafana 10.2+ Explore link (the `panes=` format) showing `query` over the range."""
    datasource: dict[str, str] = {"type": "loki"}
    if datasource_uid:
        datasource["uid"] = datasource_uid
    pane: dict[str, object] = {
        "queries": [{"refId": "A", "datasource": datasource, "expr": query,
                     "queryType": "range", "editorMode": "code"}],
        "range": {"from": str(start_ns // 1_000_000), "to": str(end_ns // 1_000_000)},
    }
    if datasource_uid:
        pane["datasource"] = datasource_uid
    # The pane id must be 3 characters of [0-9a-z], not all digits, or Grafana replaces it.
    panes = json.dumps({"svc": pane}, separators=(",", ":"), ensure_ascii=False)
    return f"{grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={quote(panes, safe='')}"




@dataclass(frozen=True)
class Entry:
    """One log line with the labels of the stream it came from."""

    timestamp_ns: int
    line: str
    labels: Mapping[str, str]


def merge_streams(streams: Iterable[LogStream], *, newest_first: bool = True) -> list[Entry]:
    """Entries of every stream in one list ordered by time (Loki orders within a stream only; after
    `| json` each distinct set of extracted labels is a stream of its own)."""
    entries = [Entry(timestamp_ns, line, stream.labels)
               for stream in streams for timestamp_ns, line in stream.entries]
    entries.sort(key=lambda entry: entry.timestamp_ns, reverse=newest_first)
    return entries
