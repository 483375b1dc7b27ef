"""Log lines for people: the arguments of the log verbs, one Loki entry as the on-call engineer reads it
(JSON fields picked, secrets masked before the text goes anywhere), lines per level for the sparkline, and
the Grafana link. Shared by /svc logs and /svc trace; pure logic over what the Loki client returns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.clients.loki import Series
from bot.core.catalog import Catalog
from bot.core.errors import UsageError, UserError
from bot.insight import logql
from bot.insight.secrets import MASK, is_secret_key, mask_text

MAX_SINCE_SECONDS = 30 * 86_400
MAX_TEXT = 500  # characters of --grep / --trace
_SINCE = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# JSON fields that are shown in their own column, or not at all (the time comes from Loki).
_COLUMN_FIELDS = {"timestamp", "time", "ts", "@timestamp", "level", "lvl", "severity", "service", "trace_id",
                  "traceId", "trace", "message", "msg"}
MAX_EXTRA_FIELDS = 6


@dataclass(frozen=True)
class LogLine:
    """One log line as the on-call engineer reads it."""

    timestamp_ns: int
    level: str  # canonical (debug, info, warn, error, fatal), another word as logged, or "" if none
    message: str  # the JSON message field, or the whole line when it is not JSON
    trace_id: str = ""
    service: str = ""  # the stream's service label (trace shows it)
    parsed: bool = True  # False: the line is not JSON and `message` is the raw line


@dataclass(frozen=True)
class LevelSeries:
    """Lines of one level per time bucket over the range (the sparkline)."""

    level: str
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def peak_index(self) -> int:
        return max(range(len(self.counts)), key=lambda index: (self.counts[index], index)) if self.counts else 0


# --- arguments ----------------------------------------------------------------------------------------

def parse_since(text: str, usage: str) -> int:
    """'15m', '2h', '1d' -> seconds; at most 30d."""
    match = _SINCE.match(text.strip().lower())
    if not match:
        raise UsageError(f"--since {text!r} is not a duration: use a number and s, m, h or d (15m, 2h, 1d)",
                         usage=usage)
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise UsageError("--since must be longer than zero", usage=usage)
    if seconds > MAX_SINCE_SECONDS:
        raise UsageError(f"--since {text} is longer than 30d, the longest range svcbot asks Loki for",
                         usage=usage)
    return seconds


def user_text(value: str | None, flag: str, usage: str) -> str | None:
    """--grep / --trace text, checked for what LogQL cannot carry (lone surrogates) and for size."""
    if value is None:
        return None
    if value == "":
        raise UsageError(f"{flag} needs some text", usage=usage)
    if len(value) > MAX_TEXT:
        raise UsageError(f"{flag} text is longer than {MAX_TEXT} characters", usage=usage)
    try:
        return logql.check_text(value)
    except logql.LogQLError as exc:
        raise UsageError(f"{flag}: {exc}", usage=usage) from None


_TRACE_ID = re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32})$")
TRACE_ID_EXAMPLE = "4bf92f3577b34da6a3ce929d0e0e4736"


def trace_id(text: str, usage: str) -> str:
    """A trace id as W3C Trace Context and OpenTelemetry write it: 32 hex characters, or 16 (a 64-bit id,
    which matches the 32-character id it is the zero-padded low half of). Lowercased; anything else is a
    usage error that quotes at most a short piece of what was typed."""
    value = text.strip().lower()
    if not _TRACE_ID.match(value):
        shown = text if len(text) <= 40 else text[:37] + "…"
        raise UsageError(f"{shown!r} is not a trace id: a trace id is 32 hexadecimal characters (or 16), "
                         f"like {TRACE_ID_EXAMPLE}", usage=usage)
    return value


# --- lines --------------------------------------------------------------------------------------------

def loki_labels(catalog: Catalog) -> tuple[str, str]:
    """(namespace label, service label) from catalog.loki; UserError when Loki is not configured."""
    if catalog.loki is None:
        raise UserError("Loki is not configured in the catalog (add a `loki:` section with its url)")
    return catalog.loki.labels.namespace, catalog.loki.labels.service


def explore_link(catalog: Catalog, query: str, start_ns: int, end_ns: int) -> str:
    config = catalog.loki
    if config is None or not config.grafana_url:
        return ""
    return logql.explore_url(config.grafana_url, config.datasource_uid, query, start_ns, end_ns)


def log_line(timestamp_ns: int, line: str, labels: Mapping[str, str], service_label: str,
             patterns: Sequence[str]) -> LogLine:
    """One entry as shown: level, message and trace id from a JSON line; a line that is not JSON as it
    is. Secret-looking values are masked here, before the text goes anywhere."""
    service = labels.get(service_label, "")
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return LogLine(timestamp_ns, "", mask_text(line.rstrip(), patterns), service=service, parsed=False)
    level = logql.canonical_level(str(_first(record, ("level", "lvl", "severity")) or ""))
    message = str(_first(record, ("message", "msg")) or "")
    extras = [f"{key}={_field(key, value, patterns)}" for key, value in record.items()
              if key not in _COLUMN_FIELDS and not isinstance(value, dict | list)][:MAX_EXTRA_FIELDS]
    # One masking pass over the whole shown text (it is the costly part of a 5,000-line answer); values
    # under secret keys are already masked whole, since a pass over `key=a b` would mask only `a`.
    shown = mask_text(" ".join([message, *extras]), patterns).strip()
    trace = str(_first(record, ("trace_id", "traceId", "trace")) or "")
    return LogLine(timestamp_ns, level, shown, trace_id=trace, service=service)


def _first(record: Mapping[str, Any], keys: Iterable[str]) -> Any:
    return next((record[key] for key in keys if record.get(key) not in (None, "")), None)


def _field(key: str, value: Any, patterns: Sequence[str]) -> str:
    if is_secret_key(key, patterns):
        return MASK
    return value if isinstance(value, str) else json.dumps(value)


def level_series(series: Iterable[Series], first_end_ns: int, step_seconds: int,
                 buckets: int) -> tuple[LevelSeries, ...]:
    """Matrix series by level -> counts per bucket, spellings of one level merged, most severe first."""
    counts: dict[str, list[int]] = {}
    step_ns = step_seconds * 1_000_000_000
    for item in series:
        level = logql.canonical_level(item.labels.get(logql.LEVEL_FIELD, "")) or "other"
        row = counts.setdefault(level, [0] * buckets)
        for seconds, value in item.points:
            index = round((round(seconds * 1e9) - first_end_ns) / step_ns)
            if 0 <= index < buckets:
                row[index] += int(value)
    order = {level: rank for rank, level in enumerate(reversed(logql.LEVELS))}
    ranked = sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    return tuple(LevelSeries(level, tuple(row)) for level, row in ranked if any(row))
