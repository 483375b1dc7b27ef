"""Secret detection and masking, shared by every part of the bot that shows configuration or log text.

The API is small on purpose and kept stable:

- `is_secret_key(key, patterns)`: a key (dotted path, env var name, JSON field) whose name looks secret.
- `looks_secret_value(value)`: a value that looks like a secret whatever its key: a URL with
  user:password, a PEM block, a Slack/bearer/JWT/cloud token, or a long high-entropy string.
- `digest(value)`: compare two secret values without keeping or showing either. Keyed with a random
  per-process key, so a digest is useless outside this process: never show or log one.
- `mask_text(text, patterns)`: free text (log lines) with secret `key=value` / `key: value` /
  `"key": "value"` values, URL credentials, PEM blocks and known token formats replaced by `MASK`.

`patterns` are the catalog's `secrets.key_patterns` (regular expressions searched case-insensitively in
the key, where `-` and `.` count as `_`); `DEFAULT_KEY_PATTERNS` when the caller has no catalog.
`${VAR}` placeholders are references, not secrets: a value made only of placeholders is never secret.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
import secrets as _random_source
from collections import Counter
from collections.abc import Iterable

from bot.core.catalog import DEFAULT_SECRET_KEY_PATTERNS

__all__ = [
    "DEFAULT_KEY_PATTERNS",
    "MASK",
    "digest",
    "is_placeholder_only",
    "is_secret_key",
    "looks_secret_value",
    "mask_text",
]

DEFAULT_KEY_PATTERNS: tuple[str, ...] = DEFAULT_SECRET_KEY_PATTERNS
MASK = "•••"

# `${NAME}` or `${NAME:default}` (Spring) / `${NAME:-default}` (shell): the default is a literal.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)(?::([^{}]*))?\}")

# --- keys ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _key_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE)


def _normalise_key(key: str) -> str:
    return key.replace("-", "_").replace(".", "_")


def is_secret_key(key: str, patterns: Iterable[str] = DEFAULT_KEY_PATTERNS) -> bool:
    """True when any pattern occurs in the key (case-insensitive; `-` and `.` read as `_`).

    The whole path counts: `credentials.user` and `db.password` are both secret keys.
    """
    return _is_secret_key(key, tuple(patterns))


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str, patterns: tuple[str, ...]) -> bool:
    # Cached: log lines repeat their field names (every field of 5,000 JSON lines was asked, issue 22).
    regex = _key_regex(patterns)
    return regex is not None and regex.search(_normalise_key(key)) is not None


# --- values -------------------------------------------------------------------------------------------

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]{1,64}-----")
# scheme://user:password@ with a non-empty password (placeholders were taken out before this runs).
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://([^\s/?#@:]*):([^\s/?#@]+)@")
_TOKENS = (
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),  # Slack bot/user/app-level tokens
    re.compile(r"\bxapp-\d-[A-Za-z0-9-]{10,}"),  # Slack app-level tokens
    re.compile(r"\bBearer\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE),  # RFC 6750 token68
    re.compile(r"\bBasic\s+[A-Za-z0-9+/]{6,}={0,2}"),  # base64 of user:password
    re.compile(r"\bToken\s+[A-Za-z0-9\-._~+/]{8,}=*"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),  # JWT
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub tokens
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),  # Stripe-style keys
)
# Literal pieces that every match of the token pattern in the same place contains (the Bearer one in lower
# case, its pattern ignoring case). A line holding none of a pattern's pieces cannot match it, and `in` costs
# far less than a regex scan that tries `\b` at every position: masking 5,000 log lines was mostly this.
_TOKEN_HINTS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("xox",), False), (("xapp-",), False), (("bearer",), True), (("Basic",), False), (("Token",), False),
    (("eyJ",), False), (("AKIA", "ASIA"), False), (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), False),
    (("_live_", "_test_"), False),
)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_\-]+")
_TOKEN_PARTS = re.compile(r"[+/=_\-]+")
MIN_ENTROPY_LENGTH = 20
MIN_ENTROPY_BITS = 3.3  # bits per character; English words and identifiers stay below with their parts
MIN_HEX_ENTROPY_BITS = 2.9
_HEX = re.compile(r"[0-9a-fA-F]+")


def _without_placeholders(text: str) -> str:
    """`${NAME}` dropped (a reference), `${NAME:default}` replaced by its default (a literal)."""
    return PLACEHOLDER.sub(lambda match: match.group(2) or "", text)


def is_placeholder_only(value: object) -> bool:
    """True for a string made only of `${NAME}` references (no defaults, no literal text)."""
    if not isinstance(value, str) or not value.strip():
        return False
    return all(match.group(2) is None for match in PLACEHOLDER.finditer(value)) and \
        not PLACEHOLDER.sub("", value).strip()


def _entropy(text: str) -> float:
    counts = Counter(text)
    size = len(text)
    return -sum(count / size * math.log2(count / size) for count in counts.values())


def _looks_random(part: str) -> bool:
    """A piece of a token (8+ characters) mixing letters and digits, or flipping case like random text."""
    if len(part) < 8:
        return False
    letters = [char for char in part if char.isalpha()]
    digits = len(part) - len(letters)
    if len(letters) >= 2 and digits >= 2:
        return True
    if len(letters) < 8:
        return False
    flips = sum(1 for left, right in itertools.pairwise(letters) if left.isupper() != right.isupper())
    return flips / (len(letters) - 1) >= 0.35


def _high_entropy_token(token: str) -> bool:
    token = token.strip("\"'`,;()[]{}<>")
    if len(token) < MIN_ENTROPY_LENGTH or not _TOKEN_CHARS.fullmatch(token):
        return False
    # Hex has 16 symbols, so a random hex string has less entropy per character than base64.
    floor = MIN_HEX_ENTROPY_BITS if _HEX.fullmatch(token) else MIN_ENTROPY_BITS
    if _entropy(token) < floor:
        return False
    # Identifiers like `payment-provider-endpoint-v2` or `/var/lib/app` are words and numbers joined:
    # secret only when some joined part itself looks random.
    return any(_looks_random(part) for part in _TOKEN_PARTS.split(token) if part)


def looks_secret_value(value: object) -> bool:
    """True for a string that looks like a secret whatever its key.

    A URL with user:password, a PEM block, a Slack/bearer/JWT/cloud token, or a whitespace-separated
    word of 20+ characters with high entropy that mixes letters and digits (or cases) in random fashion.
    Placeholders without a default are references and never count; a placeholder's default does.
    """
    if not isinstance(value, str):
        return False
    text = _without_placeholders(value)
    if not text.strip():
        return False
    if _PEM.search(text) or _URL_CREDENTIALS.search(text):
        return True
    if any(pattern.search(text) for pattern in _TOKENS):
        return True
    return any(_high_entropy_token(token) for token in text.split())


# --- digests ------------------------------------------------------------------------------------------

_DIGEST_KEY = _random_source.token_bytes(32)


def _canonical(value: object) -> str:
    """The value with its type, so `3` and `"3"` differ; mappings in key order."""
    return type(value).__name__ + ":" + json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def digest(value: object) -> str:
    """A keyed digest for equality checks between secret values; never show, log or store it.

    The key is random per process, so a digest cannot be brute-forced offline and means nothing elsewhere.
    Values of different types (`3` vs `"3"`) have different digests.
    """
    return hashlib.blake2b(_canonical(value).encode("utf-8"), key=_DIGEST_KEY, digest_size=16).hexdigest()


# --- free text ----------------------------------------------------------------------------------------

# key, then `=` or `:`, then a value: double-quoted (JSON, with escapes; also \"...\" inside an escaped
# JSON string), single-quoted, or bare up to whitespace or a separator.
_PAIR = re.compile(
    r"""(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<keyquote>\\?["']?)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>\\"(?:[^"\\]|\\[^"])*\\"|"(?:[^"\\]|\\.)*"|'[^']*'|(?:\$\{[^{}\s]*\}|[^\s,;&}\]\)])+)"""
)


def _mask_pair(match: re.Match[str], regex: re.Pattern[str] | None) -> str:
    key = match.group("key")
    value = match.group("value")
    head = key + match.group("keyquote") + match.group("sep")
    if regex is None or regex.search(_normalise_key(key)) is None:
        if value[:1] not in {'"', "'", "\\"}:
            return match.group(0)
        # A quoted value may itself hold pairs (JSON inside a JSON string): look inside it.
        return head + value[0] + _PAIR.sub(lambda inner: _mask_pair(inner, regex), value[1:])
    if is_placeholder_only(value.strip("\\\"'")):
        return match.group(0)
    for quote in ('\\"', '"', "'"):
        if len(value) >= 2 * len(quote) and value.startswith(quote) and value.endswith(quote):
            value = quote + MASK + quote
            break
    else:
        value = MASK
    return head + value


def _mask_url(match: re.Match[str]) -> str:
    if all(not part or is_placeholder_only(part) for part in match.group(1, 2)):
        return match.group(0)
    start, end = match.span(1)[0], match.span(2)[1]
    text = match.group(0)
    offset = match.start(0)
    return text[: start - offset] + MASK + ":" + MASK + text[end - offset:]


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----.*?(?:-----END \1-----|\Z)", re.DOTALL)


def mask_text(text: str, patterns: Iterable[str] = DEFAULT_KEY_PATTERNS, *, high_entropy: bool = False) -> str:
    """Free text with its secrets replaced by `MASK`, everything else left as written.

    Masks: the value of every `key=value`, `key: value`, `"key": "value"` pair whose key is secret
    (`patterns`); user:password in URLs; PEM blocks; Slack, bearer, JWT and cloud tokens. With
    `high_entropy=True` also every long high-entropy word; off by default because log lines carry trace
    and request ids that look just like that and must stay readable.
    """
    patterns = tuple(patterns)
    regex = _key_regex(patterns)
    # Each pass runs only where the text can hold what it masks; the answer is the same as running them all.
    original, folded = text, text.lower()
    if "-----BEGIN" in original:
        text = _PEM_BLOCK.sub(lambda match: f"-----BEGIN {match.group(1)}----- {MASK}", text)
    if "://" in original and "@" in original:
        text = _URL_CREDENTIALS.sub(_mask_url, text)
    for pattern, (hints, ignore_case) in zip(_TOKENS, _TOKEN_HINTS, strict=True):
        if any(hint in (folded if ignore_case else original) for hint in hints):
            text = pattern.sub(_mask_token, text)
    if regex is not None and (not _prefilter_is_sound(patterns) or regex.search(_normalise_key(text))):
        text = _PAIR.sub(lambda match: _mask_pair(match, regex), text)
    if high_entropy:
        text = re.sub(rf"\S{{{MIN_ENTROPY_LENGTH},}}",
                      lambda match: MASK if _high_entropy_token(match.group(0)) else match.group(0), text)
    return text


@functools.lru_cache(maxsize=32)
def _prefilter_is_sound(patterns: tuple[str, ...]) -> bool:
    """Whether a secret key in a pair is sure to match its pattern in the whole text as well, so a text with no
    match anywhere has no secret pair to mask: true for plain patterns, not for anchors or lookarounds."""
    return not any(marker in pattern for pattern in patterns for marker in ("^", "$", "\\b", "\\B", "(?", "\\A",
                                                                          "\\Z"))


def _mask_token(match: re.Match[str]) -> str:
    """Keep a scheme word (`Bearer`) so the line still reads; mask the credential itself."""
    scheme = re.match(r"(?i)(Bearer|Basic|Token)(\s+)", match.group(0))
    return scheme.group(0) + MASK if scheme else MASK
