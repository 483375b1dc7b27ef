"""Masking secret-looking values in log lines before anyone sees them.

A value is secret-looking when its key matches one of the catalog's `secrets.key_patterns` (password,
token, api_?key...), in JSON fields (`{"db_password": "..."}`) or in free text (`password=...`,
`token: ...`, `"api_key":"..."`); and, whatever the key, credentials in URLs (`scheme://user:pass@host`)
and `Bearer`/`Basic` authorization values. The value is replaced, the key is kept, so a reader still sees
that a password was logged (which is itself worth a ticket).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "••••••"

_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?P<tail>@)")
_AUTHORIZATION = re.compile(r"(?P<head>\b(?:[Bb]earer|[Bb]asic)\s+)[A-Za-z0-9._~+/=-]{6,}")


class Masker:
    """Masks values whose key matches any of `key_patterns` (regular expressions, case-insensitive)."""

    def __init__(self, key_patterns: Iterable[str]) -> None:
        patterns = [f"(?:{pattern})" for pattern in key_patterns]
        self._key = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None
        self._pair = (
            re.compile(
                r"(?P<head>(?P<quote>[\"']?)[\w.-]*(?:" + "|".join(patterns) + r")[\w.-]*(?P=quote)"
                r"\s*[=:]\s*)"
                r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,;&\"'}\]]+)",
                re.IGNORECASE,
            )
            if patterns
            else None
        )

    def secret_key(self, key: str) -> bool:
        return self._key is not None and self._key.search(key) is not None

    def text(self, text: str) -> str:
        """`text` with secret-looking values replaced by a mask."""
        if self._pair is not None:
            text = self._pair.sub(_mask_pair, text)
        text = _URL_CREDENTIALS.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)
        return _AUTHORIZATION.sub(lambda m: m.group("head") + MASK, text)

    def value(self, key: str, value: Any) -> Any:
        """A JSON value under `key`, masked (recursively for objects and lists)."""
        if self.secret_key(key) and isinstance(value, str | int | float) and not isinstance(value, bool):
            return MASK if value != "" else value
        if isinstance(value, dict):
            return {name: self.value(str(name), item) for name, item in value.items()}
        if isinstance(value, list):
            return [self.value(key, item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def _mask_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value in {'""', "''"}:
        return match.group(0)
    quote = value[0] if value[0] in "\"'" and len(value) > 1 else ""
    return match.group("head") + quote + MASK + quote
