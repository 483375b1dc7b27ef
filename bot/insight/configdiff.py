"""Comparing two configurations: pure functions, no I/O.

1. `flatten` turns nested YAML into dotted keys (`payment.provider.timeout`); list items are addressed
   by index (`hosts[0]`) or, when every item is a mapping with a distinct `name` (or `id`), by that
   (`routes[name=orders].timeout`), so reordering a list is not a difference.
2. `compare` sorts the keys of two flat configurations into only-in-A, only-in-B, changed and an
   unchanged count; it calls out type changes (`3` vs `"3"`) and the `${VAR}` placeholders each side needs.
3. Secrets never leave this module as values: a key that looks secret (the catalog's patterns) or a value
   that looks like one is compared by digest and comes out as `DiffValue(text=None)`, so the reply a
   view renders has nothing to leak. A value made only of `${VAR}` placeholders is a reference and is shown.

Live configuration (env vars) binds to profile keys by relaxed binding: `PAYMENT_PROVIDER_ENDPOINT`
is `payment.provider.endpoint` (upper case, `.` and `-` as `_`); see `env_var_name` and `bind_env`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.core.errors import UserError
from bot.insight.secrets import (
    DEFAULT_KEY_PATTERNS,
    PLACEHOLDER,
    digest,
    is_placeholder_only,
    is_secret_key,
    looks_secret_value,
    mask_text,
)

MAX_KEYS = 20_000  # a profile flattening to more keys than this is not a profile (or is a YAML alias bomb)
LIST_ITEM_KEYS = ("name", "id")

V = TypeVar("V")


@dataclass(frozen=True)
class Reference:
    """A value held elsewhere (a Secret key, a pod field), shown by its name and never resolved."""

    description: str  # e.g. "secret payment-db, key password"


# --- flattening ---------------------------------------------------------------------------------------


def flatten(data: Mapping[Any, object], *, limit: int = MAX_KEYS) -> dict[str, object]:
    """Nested mappings and lists -> {dotted key: leaf}. Empty mappings and lists are leaves ({} / [])."""
    flat: dict[str, object] = {}

    def add(key: str, value: object) -> None:
        if len(flat) >= limit:
            raise UserError(f"the configuration has more than {limit} keys; svcbot compares profiles, "
                            "not data sets (or the YAML expands aliases without end)")
        flat[key] = value

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and value:
            field = _item_key(value)
            for index, item in enumerate(value):
                label = f"{field}={item[field]}" if field else str(index)
                walk(f"{prefix}[{label}]", item)
        else:
            add(prefix, value)

    walk("", data)
    return flat


def _item_key(items: list[object]) -> str | None:
    """`name` or `id` when every item is a mapping with a distinct scalar value for it."""
    for field in LIST_ITEM_KEYS:
        values = [item.get(field) if isinstance(item, Mapping) else None for item in items]
        if all(isinstance(value, str | int) and not isinstance(value, bool) for value in values) and \
                len(set(values)) == len(values):
            return field
    return None


# --- values -------------------------------------------------------------------------------------------


def kind_of(value: object) -> str:
    """The YAML type of a leaf, as a person says it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, Reference):
        return "ref"
    return type(value).__name__


def display(value: object) -> str:
    """A leaf as YAML would write it (strings as written, without quotes)."""
    if isinstance(value, Reference):
        return value.description
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping | list):
        return json.dumps(value, default=str)
    return str(value)


def loose(value: object) -> str:
    """The string a process would see in its environment: for comparisons where types are not kept."""
    return display(value) if value is not None else ""


def placeholders(value: object) -> frozenset[str]:
    """The `${VAR}` names a value needs."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(match.group(1) for match in PLACEHOLDER.finditer(value))


def required_variables(value: object) -> frozenset[str]:
    """The `${VAR}` names a value needs that have no default."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(match.group(1) for match in PLACEHOLDER.finditer(value) if match.group(2) is None)


def is_secret(key: str, value: object, patterns: Iterable[str] = DEFAULT_KEY_PATTERNS) -> bool:
    """Masked in every answer: a secret-looking key or value; never a reference or placeholder-only value."""
    if isinstance(value, Reference) or is_placeholder_only(value):
        return False
    if is_secret_key(key, patterns) or looks_secret_value(value):
        return True
    # A value that carries a secret inside: `jdbc:...?user=app&password=x`, a bearer header...
    return isinstance(value, str) and mask_text(value, patterns) != value


@dataclass(frozen=True)
class DiffValue:
    """One side's value as an answer may show it; `text` is None when it is a secret (masked)."""

    text: str | None
    kind: str  # "string", "int", ..., "ref" for a reference; "secret" when masked

    @property
    def secret(self) -> bool:
        return self.text is None


SECRET = DiffValue(text=None, kind="secret")


def shown(value: object, masked: bool) -> DiffValue:
    return SECRET if masked else DiffValue(text=display(value), kind=kind_of(value))


# --- comparison ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: DiffValue


@dataclass(frozen=True)
class KeyChange:
    key: str
    a: DiffValue
    b: DiffValue
    type_changed: bool = False  # `3` vs `"3"`; never said of masked values (it would tell their type)

    @property
    def secret(self) -> bool:
        return self.a.secret or self.b.secret


@dataclass(frozen=True)
class ConfigDiff:
    """Two flat configurations compared. Unchanged keys are counted, not listed (except same secrets)."""

    only_a: tuple[KeyValue, ...] = ()
    only_b: tuple[KeyValue, ...] = ()
    changed: tuple[KeyChange, ...] = ()
    unchanged: int = 0
    same_secrets: tuple[str, ...] = ()  # unchanged keys whose values are secret: "same (secret)"
    variables_a: tuple[str, ...] = ()  # ${VAR} names side A needs
    variables_b: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        return bool(self.only_a or self.only_b or self.changed)

    @property
    def variables_only_a(self) -> tuple[str, ...]:
        return tuple(name for name in self.variables_a if name not in set(self.variables_b))

    @property
    def variables_only_b(self) -> tuple[str, ...]:
        return tuple(name for name in self.variables_b if name not in set(self.variables_a))

    @property
    def type_changes(self) -> tuple[KeyChange, ...]:
        return tuple(change for change in self.changed if change.type_changed)


def compare(
    a: Mapping[str, object],
    b: Mapping[str, object],
    *,
    key_patterns: Iterable[str] = DEFAULT_KEY_PATTERNS,
    typed: bool = True,
    a_is_template: bool = False,
) -> ConfigDiff:
    """Compare flat configurations A and B.

    `typed=False` compares values as the strings a process environment would hold (for live
    configuration, where env vars have no types). `a_is_template=True` lets A's `${VAR}` placeholders
    stand for whatever B has there (a declared profile against the live values it was rendered into).
    """
    patterns = tuple(key_patterns)
    only_a: list[KeyValue] = []
    only_b: list[KeyValue] = []
    changed: list[KeyChange] = []
    same_secrets: list[str] = []
    unchanged = 0
    for key in sorted(set(a) | set(b), key=_key_order):
        if key not in b:
            only_a.append(KeyValue(key, shown(a[key], is_secret(key, a[key], patterns))))
            continue
        if key not in a:
            only_b.append(KeyValue(key, shown(b[key], is_secret(key, b[key], patterns))))
            continue
        left, right = a[key], b[key]
        secret_left, secret_right = is_secret(key, left, patterns), is_secret(key, right, patterns)
        if _same(left, right, typed=typed, template=a_is_template):
            unchanged += 1
            if secret_left or secret_right:
                same_secrets.append(key)
            continue
        # Either side secret: mask the other too unless it is a reference or placeholders, since a
        # plain value beside a secret one is likely the same secret in another form.
        either = secret_left or secret_right
        mask_left = secret_left or (either and not _reference_like(left))
        mask_right = secret_right or (either and not _reference_like(right))
        kinds = {kind_of(left), kind_of(right)}
        type_changed = typed and not (mask_left or mask_right) and len(kinds) == 2 and "null" not in kinds
        changed.append(KeyChange(key, shown(left, mask_left), shown(right, mask_right), type_changed))
    return ConfigDiff(
        only_a=tuple(only_a), only_b=tuple(only_b), changed=tuple(changed), unchanged=unchanged,
        same_secrets=tuple(same_secrets),
        variables_a=_variables(a.values()), variables_b=_variables(b.values()),
    )


def _reference_like(value: object) -> bool:
    return isinstance(value, Reference) or is_placeholder_only(value)


def _same(left: object, right: object, *, typed: bool, template: bool) -> bool:
    if template and isinstance(left, str) and placeholders(left):
        if isinstance(right, Reference):
            return is_placeholder_only(left)
        return not isinstance(right, Reference) and _template(left).fullmatch(loose(right)) is not None
    if isinstance(left, Reference) or isinstance(right, Reference):
        return left == right
    if typed:
        return digest(left) == digest(right)
    return digest(loose(left)) == digest(loose(right))


def _template(text: str) -> re.Pattern[str]:
    """`http://${HOST}:8080` -> a regex matching what that renders to (a default stands for itself too)."""
    parts: list[str] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[position:match.start()]))
        parts.append(".*")
        position = match.end()
    parts.append(re.escape(text[position:]))
    return re.compile("".join(parts), re.DOTALL)


def _variables(values: Iterable[object]) -> tuple[str, ...]:
    names: set[str] = set()
    for value in values:
        names |= placeholders(value)
    return tuple(sorted(names))


_INDEX = re.compile(r"(\[\d+\])")


def _key_order(key: str) -> tuple[object, ...]:
    """Dotted keys sorted as a person reads them: `hosts[2]` before `hosts[10]`."""
    return tuple(int(part[1:-1]) if _INDEX.fullmatch(part) else part for part in _INDEX.split(key))


# --- relaxed binding (env vars <-> profile keys) ------------------------------------------------------


def env_var_name(key: str) -> str:
    """`payment.provider-endpoint` -> `PAYMENT_PROVIDER_ENDPOINT`; `hosts[0].name` -> `HOSTS_0_NAME`."""
    return re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").upper()


def bind_env(env: Mapping[str, V], known_keys: Iterable[str]) -> dict[str, V]:
    """Env vars keyed by the profile key they bind to; a var no known key binds to keeps its own name."""
    index: dict[str, str] = {}
    for key in sorted(known_keys, key=_key_order):
        index.setdefault(env_var_name(key), key)
    return {index.get(env_var_name(name), name): value for name, value in env.items()}
