"""Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and pkg/fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .util import dig

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class SelectorError(ValueError):
    """A label or field selector the API server would reject (answered as 400 BadRequest)."""


def valid_label_key(key: str) -> bool:
    if "/" in key:
        prefix, _, name = key.partition("/")
        if not prefix or len(prefix) > 253 or not _PREFIX.match(prefix):
            return False
    else:
        name = key
    return bool(name) and len(name) <= 63 and bool(_NAME.match(name))


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_NAME.match(value))


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, Any]) -> bool:
        has = self.key in labels
        val = labels.get(self.key)
        if self.op == "=":
            return has and val == self.values[0]
        if self.op == "in":
            return has and val in self.values
        if self.op == "!=":
            return not has or val != self.values[0]
        if self.op == "notin":
            return not has or val not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("gt", "lt"):
            if not has:
                return False
            try:
                lv, rv = int(str(val)), int(self.values[0])
            except ValueError:
                return False
            return lv > rv if self.op == "gt" else lv < rv
        return False


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    match_nothing: bool = False

    def matches(self, labels: Any) -> bool:
        if self.match_nothing:
            return False
        labels = labels if isinstance(labels, dict) else {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op == "=":
                parts.append(f"{r.key}={r.values[0]}")
            elif r.op == "!=":
                parts.append(f"{r.key}!={r.values[0]}")
            elif r.op in ("in", "notin"):
                parts.append(f"{r.key} {r.op} ({','.join(r.values)})")
            elif r.op == "exists":
                parts.append(r.key)
            elif r.op == "!":
                parts.append(f"!{r.key}")
            elif r.op == "gt":
                parts.append(f"{r.key}>{r.values[0]}")
            elif r.op == "lt":
                parts.append(f"{r.key}<{r.values[0]}")
        return ",".join(parts)


EVERYTHING = LabelSelector()

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            break
        if m.group(1):
            out.append(m.group(1))
        pos = m.end()
        if pos < len(text) and not text[pos:].strip():
            break
    return out


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the string form (labels.Parse)."""
    text = text.strip()
    if not text:
        return EVERYTHING
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect_ident(what: str) -> str:
        nonlocal i
        if i >= len(toks) or toks[i] in ("!=", "==", "=", "!", "(", ")", ",", ">", "<"):
            found = toks[i] if i < len(toks) else ""
            raise SelectorError(f"unable to parse requirement: found '{found}', expected: {what}")
        tok = toks[i]
        i += 1
        return tok

    while i < len(toks):
        negate = False
        if toks[i] == "!":
            negate = True
            i += 1
        key = expect_ident("identifier")
        if not valid_label_key(key):
            raise SelectorError(f"unable to parse requirement: invalid label key \"{key}\": name part must consist "
                                "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                                "alphanumeric character")
        if negate:
            reqs.append(Requirement(key, "!"))
        elif i >= len(toks) or toks[i] == ",":
            reqs.append(Requirement(key, "exists"))
        else:
            op = toks[i]
            i += 1
            if op in ("=", "==", "!="):
                if i < len(toks) and toks[i] not in (",", "!=", "==", "=", "!", "(", ")", ">", "<"):
                    value = toks[i]
                    i += 1
                else:
                    value = ""
                if not valid_label_value(value):
                    raise SelectorError(f"unable to parse requirement: invalid label value: \"{value}\"")
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            elif op in (">", "<"):
                value = expect_ident("integer")
                if not re.fullmatch(r"-?\d+", value):
                    raise SelectorError(f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be "
                                        f"an integer: {value}")
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            elif op.lower() in ("in", "notin"):
                if i >= len(toks) or toks[i] != "(":
                    found = toks[i] if i < len(toks) else ""
                    raise SelectorError(f"unable to parse requirement: found '{found}', expected: '('")
                i += 1
                values: list[str] = []
                while True:
                    if i >= len(toks):
                        raise SelectorError("unable to parse requirement: found '', expected: ')'")
                    if toks[i] == ")":
                        i += 1
                        break
                    if toks[i] == ",":
                        values.append("")
                        i += 1
                        continue
                    v = toks[i]
                    if v in ("!=", "==", "=", "!", "(", ">", "<"):
                        raise SelectorError(f"unable to parse requirement: found '{v}', expected: ',', ')' or "
                                            "identifier")
                    if not valid_label_value(v):
                        raise SelectorError(f"unable to parse requirement: invalid label value: \"{v}\"")
                    values.append(v)
                    i += 1
                    if i < len(toks) and toks[i] == ",":
                        i += 1
                if not values:
                    raise SelectorError("unable to parse requirement: for 'in', 'notin' operators, values set can't "
                                        "be empty")
                reqs.append(Requirement(key, op.lower(), tuple(values)))
            else:
                raise SelectorError(f"unable to parse requirement: found '{op}', expected: "
                                    "in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise SelectorError(f"unable to parse requirement: found '{toks[i]}', expected: ','")
            i += 1
            if i >= len(toks):
                raise SelectorError("unable to parse requirement: found '', expected: identifier")
    return LabelSelector(tuple(reqs))


def from_label_selector(sel: Any) -> LabelSelector:
    """metav1.LabelSelector (matchLabels / matchExpressions) -> selector. None selects nothing."""
    if not isinstance(sel, dict):
        return LabelSelector(match_nothing=True)
    reqs: list[Requirement] = []
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        reqs.append(Requirement(str(k), "=", (str(v),)))
    for expr in sel.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            continue
        op = str(expr.get("operator", ""))
        key = str(expr.get("key", ""))
        vals = tuple(str(v) for v in (expr.get("values") or []))
        mapped = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(op)
        if mapped is None:
            return LabelSelector(match_nothing=True)
        reqs.append(Requirement(key, mapped, vals))
    return LabelSelector(tuple(reqs))


def selector_string(sel: Any) -> str:
    s = from_label_selector(sel)
    return "<none>" if s.match_nothing else str(s)


# ---------------------------------------------------------------------------------------------------
# Field selectors

_COMMON_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}
_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "Event": {
        "involvedObject.kind": ("involvedObject", "kind"),
        "involvedObject.namespace": ("involvedObject", "namespace"),
        "involvedObject.name": ("involvedObject", "name"),
        "involvedObject.uid": ("involvedObject", "uid"),
        "involvedObject.apiVersion": ("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": ("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": ("involvedObject", "fieldPath"),
        "reason": ("reason",),
        "reportingComponent": ("reportingComponent",),
        "source": ("source", "component"),
        "type": ("type",),
    },
    "Pod": {
        "spec.nodeName": ("spec", "nodeName"),
        "spec.restartPolicy": ("spec", "restartPolicy"),
        "spec.schedulerName": ("spec", "schedulerName"),
        "spec.serviceAccountName": ("spec", "serviceAccountName"),
        "spec.hostNetwork": ("spec", "hostNetwork"),
        "status.phase": ("status", "phase"),
        "status.podIP": ("status", "podIP"),
        "status.nominatedNodeName": ("status", "nominatedNodeName"),
    },
    "ReplicaSet": {"status.replicas": ("status", "replicas")},
    "Job": {"status.successful": ("status", "succeeded")},
    "Namespace": {"status.phase": ("status", "phase")},
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    path: tuple[str, ...]
    value: str
    negate: bool

    def matches(self, obj: dict[str, Any]) -> bool:
        raw = dig(obj, *self.path)
        if isinstance(raw, bool):
            actual = "true" if raw else "false"
        elif raw is None:
            actual = "false" if self.field == "spec.hostNetwork" else ""
        else:
            actual = str(raw)
        return (actual != self.value) if self.negate else (actual == self.value)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            if value[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: {value[i:i + 2]}")
            out.append(value[i + 1])
            i += 2
        else:
            if value[i] in ",=":
                raise SelectorError(f"invalid field selector: unescaped {value[i]!r} in value")
            out.append(value[i])
            i += 1
    return "".join(out)


def parse_field_selector(text: str, kind: str) -> FieldSelector:
    text = text.strip()
    if not text:
        return FieldSelector()
    allowed = {**_COMMON_FIELDS, **_FIELDS.get(kind, {})}
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(text, ","):
        if not part.strip():
            raise SelectorError("invalid selector: '" + text + "'; can't understand ''")
        for op in ("!=", "==", "="):
            idx = _find_unescaped(part, op)
            if idx >= 0:
                field, value = part[:idx].strip(), part[idx + len(op):]
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        if field not in allowed:
            raise SelectorError(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, allowed[field], _unescape(value), op == "!="))
    return FieldSelector(tuple(reqs))


def _find_unescaped(text: str, op: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(op, i):
            return i
        i += 1
    return -1
