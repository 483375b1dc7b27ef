"""structlog, configured once at start-up: JSON lines off a terminal, console rendering on one.

Logs go to stderr; stdout carries only answers. A processor masks secrets (tokens, signing secrets,
values under secret-looking keys) before anything is rendered.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
import structlog.tracebacks

_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential|private|dsn|authorization)",
                         re.IGNORECASE)
# Slack tokens (xoxb-, xoxp-, xapp-, ...), bearer tokens, and user:password in URLs.
_SECRET_VALUE = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)
# key=value / key: value pairs whose key looks secret, inside free text (an error quoting a backend's data).
_SECRET_PAIR = re.compile(
    r"((?:password|passwd|secret|token|api_?key|credential|private|dsn)[A-Za-z_]*\s*[=:]\s*)[^\s,;'\"]+",
    re.IGNORECASE)
MASK = "****"


def mask_text(text: str) -> str:
    return _SECRET_PAIR.sub(lambda match: match.group(1) + MASK, _SECRET_VALUE.sub(MASK, text))


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: (MASK if isinstance(key, str) and _SECRET_KEY.search(key) else _mask(item))
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(item) for item in value)
    return value


def mask_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace values under secret-looking keys, and token-shaped strings anywhere, with ****."""
    for key in list(event_dict):
        if _SECRET_KEY.search(key) and key != "event":
            event_dict[key] = MASK
        else:
            event_dict[key] = _mask(event_dict[key])
    return event_dict


def configure(*, json: bool | None = None, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set up structlog and the stdlib root logger (for libraries) to write to `stream` (stderr by default;
    the interactive shell and the demo log to a file, so nothing but answers reaches the screen)."""
    stream = stream or sys.stderr
    use_json = (not stream.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks become data before masking, so exception text is masked too.
    renderer: Any
    if use_json:
        # Frames without their local variables: locals can hold secrets and answers (one crash logged a
        # 112 KB line of them). File, line and function are what a reader needs.
        tracebacks: Any = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
        renderer = structlog.processors.JSONRenderer()
    else:
        tracebacks = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    structlog.configure(
        processors=[*shared, tracebacks, mask_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=stream, format="%(levelname)s %(name)s: %(message)s",
                        force=True)

