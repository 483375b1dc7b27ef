"""structlog, configured once at start-up: JSON lines off a terminal, console rendering on one.

Logs go to stderr; stdout carries only answers. A processor masks secrets (tokens, signing secrets,
values under secret-looking keys) before anything is rendered.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential|private|dsn|authorization)",
                         re.IGNORECASE)
# Slack tokens (xoxb-, xoxp-, xapp-, ...), bearer tokens, and user:password in URLs.
_SECRET_VALUE = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)
MASK = "****"


def mask_text(text: str) -> str:
    return _SECRET_VALUE.sub(MASK, text)


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


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    """Set up structlog and the stdlib root logger (for libraries) to write to stderr."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks become data before masking, so exception text is masked too.
    renderer: Any
    if use_json:
        tracebacks: Any = structlog.processors.dict_tracebacks
        renderer = structlog.processors.JSONRenderer()
    else:
        tracebacks = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    structlog.configure(
        processors=[*shared, tracebacks, mask_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

