"""Does the chart's Role allow exactly the Kubernetes API calls svcbot makes?

A call is what RBAC authorizes: (API group, resource, subresource, verb), e.g. ("", "pods", "proxy", "get")
for a GET through the pod proxy, ("apps", "deployments", "", "watch") for a watch. Calls come from two
places: the sandbox API server's record of what it served while every verb ran (`served`), and a reading
of the calls bot/clients/kube/ makes into the generated client and of the paths its lean GETs ask for
(`calls_in_source`), which needs no sandbox.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

# The generated client's API classes and the group each one serves.
API_GROUPS = {
    "CoreV1Api": "", "AppsV1Api": "apps", "BatchV1Api": "batch", "AutoscalingV1Api": "autoscaling",
    "AutoscalingV2Api": "autoscaling", "CoordinationV1Api": "coordination.k8s.io",
    "EventsV1Api": "events.k8s.io", "NetworkingV1Api": "networking.k8s.io",
}
# Kinds whose plural is not kind + "s" (snake_case as in the client's method names).
IRREGULAR_PLURALS = {"endpoints": "endpoints", "ingress": "ingresses", "network_policy": "networkpolicies"}
# The client's method verb prefixes and the RBAC verb each one needs.
METHOD_VERBS = (
    ("delete_collection_", "deletecollection"), ("connect_get_", "get"), ("connect_post_", "create"),
    ("read_", "get"), ("list_", "list"), ("create_", "create"), ("replace_", "update"), ("patch_", "patch"),
    ("delete_", "delete"),
)
SUBRESOURCES = ("status", "scale", "log", "proxy", "ephemeralcontainers", "eviction", "exec", "attach")


@dataclass(frozen=True, order=True)
class ApiCall:
    group: str
    resource: str
    subresource: str
    verb: str

    def __str__(self) -> str:
        path = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {self.group or 'core'}/{path}"


def expand_rules(rules: Iterable[Mapping[str, Any]]) -> set[ApiCall]:
    """Every call a list of PolicyRules allows. Wildcards and resourceNames are refused: the chart uses
    neither, and a test comparing sets could not judge them."""
    allowed: set[ApiCall] = set()
    for rule in rules:
        groups, resources, verbs = rule.get("apiGroups", []), rule.get("resources", []), rule.get("verbs", [])
        if "*" in (*groups, *resources, *verbs):
            raise ValueError(f"wildcard in rule {dict(rule)}")
        if rule.get("resourceNames") or rule.get("nonResourceURLs"):
            raise ValueError(f"resourceNames/nonResourceURLs in rule {dict(rule)}")
        for group in groups:
            for resource in resources:
                name, _, sub = resource.partition("/")
                allowed.update(ApiCall(group, name, sub, verb) for verb in verbs)
    return allowed


def normalize_served(entries: Iterable[Any]) -> set[ApiCall]:
    """The sandbox's record as ApiCalls: (group, resource, subresource, verb) tuples or mappings with those
    keys. Entries without a resource (discovery, /version) are not RBAC on resources and are dropped."""
    calls: set[ApiCall] = set()
    for entry in entries:
        if isinstance(entry, ApiCall):
            call = entry
        elif isinstance(entry, Mapping):
            call = ApiCall(str(entry.get("group") or ""), str(entry.get("resource") or ""),
                           str(entry.get("subresource") or ""), str(entry["verb"]))
        else:
            group, resource, subresource, verb = tuple(entry)[:4]
            call = ApiCall(group or "", resource or "", subresource or "", verb)
        if call.resource:
            calls.add(call)
    return calls


@dataclass(frozen=True)
class Comparison:
    """`missing`: calls made that the rules do not allow (svcbot would get 403); `unused`: calls the rules
    allow that nothing made (more access than svcbot needs)."""

    missing: frozenset[ApiCall]
    unused: frozenset[ApiCall]

    @property
    def exact(self) -> bool:
        return not self.missing and not self.unused

    def describe(self) -> str:
        lines = []
        if self.missing:
            lines.append("made but not allowed: " + ", ".join(map(str, sorted(self.missing))))
        if self.unused:
            lines.append("allowed but never made: " + ", ".join(map(str, sorted(self.unused))))
        return "; ".join(lines) or "exact"


def compare(calls: Iterable[ApiCall], rules: Iterable[Mapping[str, Any]]) -> Comparison:
    made, allowed = set(calls), expand_rules(rules)
    return Comparison(missing=frozenset(made - allowed), unused=frozenset(allowed - made))


def without_writes(rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What rbac.readOnly is meant to leave: each rule minus write verbs, empty rules dropped."""
    kept = []
    for rule in rules:
        verbs = [verb for verb in rule["verbs"] if verb not in WRITE_VERBS]
        if verbs:
            kept.append({**rule, "verbs": verbs})
    return kept


# --- reading bot/clients/kube/ ---------------------------------------------------------------------------------

def call_for_method(api_class: str, method: str, *, watch: bool = False) -> ApiCall:
    """The RBAC check behind one generated-client method, e.g. AppsV1Api.patch_namespaced_deployment."""
    if api_class not in API_GROUPS:
        raise ValueError(f"unknown API class {api_class}: add it to API_GROUPS")
    found = next(((prefix, verb) for prefix, verb in METHOD_VERBS if method.startswith(prefix)), None)
    if found is None:
        raise ValueError(f"{api_class}.{method}: not a resource method")
    prefix, verb = found
    rest = method[len(prefix):]
    rest = re.sub(r"_with_path$", "", rest)
    rest = re.sub(r"^(namespaced_|for_all_namespaces_)", "", rest)
    rest = re.sub(r"_for_all_namespaces$", "", rest)
    subresource = ""
    for sub in SUBRESOURCES:
        if rest.endswith(f"_{sub}"):
            rest, subresource = rest[: -len(sub) - 1], sub
            break
    resource = IRREGULAR_PLURALS.get(rest, rest.replace("_", "") + "s")
    if watch and verb == "list":
        verb = "watch"
    return ApiCall(API_GROUPS[api_class], resource, subresource, verb)


class _KubeCalls(ast.NodeVisitor):
    """Finds `api = <...>._api("AppsV1Api")` then `api.<method>` (called, or handed to a Watch)."""

    def __init__(self) -> None:
        self.calls: set[ApiCall] = set()
        self.problems: list[str] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        bound: dict[str, str] = {}
        for inner in ast.walk(node):
            if isinstance(inner, ast.Assign) and len(inner.targets) == 1 and isinstance(inner.targets[0], ast.Name):
                api_class = _api_class(inner.value)
                if api_class is not None:
                    bound[inner.targets[0].id] = api_class
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and _is_lean_get(inner):
                try:
                    self.calls.add(call_for_path(inner))
                except ValueError as exc:
                    self.problems.append(f"line {inner.lineno}: {exc}")
            if isinstance(inner, ast.Call) and _is_api_lookup(inner) and _api_class(inner) is None:
                self.problems.append(f"line {inner.lineno}: _api(...) with a name that is not a literal")
            if not isinstance(inner, ast.Attribute):
                continue
            owner = inner.value
            api_class = bound.get(owner.id) if isinstance(owner, ast.Name) else _api_class(owner)
            if api_class is None or inner.attr.startswith("_") or inner.attr == "api_client":
                continue
            try:
                self.calls.add(call_for_method(api_class, inner.attr, watch=_watched(node, inner)))
            except ValueError as exc:
                self.problems.append(f"line {inner.lineno}: {exc}")
        self.generic_visit(node)


def _is_lean_get(node: ast.AST) -> bool:
    """`self._get("api", "v1", "namespaces", namespace, "pods", ...)`: KubeClient's GET without the generated
    layer (bot/clients/kube/lean_get.py), its path given as segments."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_get" \
        and bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value in ("api", "apis")


def call_for_path(node: ast.Call) -> ApiCall:
    """The RBAC check behind a namespaced GET path: /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]] or
    /apis/{group}/{version}/namespaces/...; a name makes it a get, none a list."""
    segments = [arg.value if isinstance(arg, ast.Constant) else None for arg in node.args]
    group = ""
    if segments[0] == "apis":
        if len(segments) < 3 or not isinstance(segments[1], str):
            raise ValueError("an /apis path without a literal group")
        group, rest = segments[1], segments[3:]
    else:
        rest = segments[2:]
    if len(rest) < 3 or rest[0] != "namespaces" or not isinstance(rest[2], str):
        raise ValueError("not a namespaced path with a literal resource")
    resource, tail = rest[2], rest[3:]
    subresource = tail[1] if len(tail) > 1 else ""
    if subresource is None:
        raise ValueError("a subresource that is not a literal")
    return ApiCall(group, resource, subresource, "get" if tail else "list")


def _is_api_lookup(node: ast.AST) -> bool:
    """`self._api(...)`, `self.client._api(...)`: KubeClient's accessor for a generated API class."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_api"


def _api_class(node: ast.AST) -> str | None:
    if _is_api_lookup(node):
        assert isinstance(node, ast.Call)
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return node.args[0].value
    return None


def _watched(function: ast.FunctionDef, attribute: ast.Attribute) -> bool:
    """`watch=True` in the call, or the method handed to something's `.stream(...)` (kubernetes.watch)."""
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        if node.func is attribute and any(
            k.arg == "watch" and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords
        ):
            return True
        if isinstance(node.func, ast.Attribute) and node.func.attr == "stream" and attribute in node.args:
            return True
    return False


def calls_in_source(path: Path) -> tuple[set[ApiCall], list[str]]:
    """The calls a module (or every module of a package folder) makes through `self._api(...)`, and what could
    not be read."""
    finder = _KubeCalls()
    for module in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
        finder.visit(ast.parse(module.read_text(encoding="utf-8")))
    return finder.calls, finder.problems
