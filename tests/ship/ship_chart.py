"""The Helm chart as data for the tests: its values, schema and RBAC rules, and Helm's engine when present.

Helm's engine lives in a venv of its own (scripts/lint-chart.py explains why); SVCBOT_HELM_PYTHON names that
venv's python. Without it the tests that need Helm are skipped with the reason, and the rest read the
chart's files directly.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "svcbot"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
LINT_TOOL = ROOT / "scripts" / "lint-chart.py"
HELM_PYTHON_VARIABLE = "SVCBOT_HELM_PYTHON"
ERROR_SEVERITY = 3

# `{{- define "svcbot.namespaceRules" -}} ... {{- end -}}`: plain YAML between the two actions.
_DEFINE = re.compile(r'\{\{-?\s*define\s+"(?P<name>[^"]+)"\s*-?\}\}(?P<body>.*?)\{\{-?\s*end\s*-?\}\}', re.S)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def default_values() -> dict[str, Any]:
    values = load_yaml(CHART / "values.yaml")
    assert isinstance(values, dict)
    return values


def schema() -> dict[str, Any]:
    loaded = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge key by key, anything else replaces, null deletes the key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_with(override: dict[str, Any]) -> dict[str, Any]:
    return merge_values(default_values(), override)


def template_rules(name: str) -> list[dict[str, Any]]:
    """The rules a `define` in templates/_helpers.tpl holds (YAML with no template action inside)."""
    text = (CHART / "templates" / "_helpers.tpl").read_text(encoding="utf-8")
    for match in _DEFINE.finditer(text):
        if match.group("name") == name:
            rules = yaml.safe_load(match.group("body"))
            assert isinstance(rules, list), f"{name} does not hold a YAML list"
            return rules
    raise AssertionError(f"no define {name!r} in templates/_helpers.tpl")


# --- Helm's engine, in its own venv -------------------------------------------------------------------

@dataclass(frozen=True)
class Rendered:
    """One `helm template`: the manifests as parsed documents, and NOTES.txt."""

    documents: tuple[dict[str, Any], ...]
    notes: str

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc.get("kind") == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [doc for doc in self.kind(kind) if name is None or doc["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]


class HelmEngine:
    """scripts/lint-chart.py run by the helm venv's python."""

    def __init__(self, python: str) -> None:
        self.python = python

    def _run(self, *args: str, values: dict[str, Any] | None = None, tmp: Path | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.python, str(LINT_TOOL), *args]
        if values is not None:
            assert tmp is not None
            values_file = tmp / f"values-{len(list(tmp.glob('values-*.json')))}.json"
            values_file.write_text(json.dumps(values), encoding="utf-8")
            command += ["--values", str(values_file)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and done.returncode not in (0, 1):
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done

    @cache  # noqa: B019 - one engine object per session
    def engines(self) -> dict[str, Any]:
        loaded = json.loads(self._run("engines").stdout)
        assert isinstance(loaded, dict)
        return loaded

    def lint(self, values: dict[str, Any] | None, tmp: Path) -> dict[str, list[dict[str, Any]]]:
        """{engine: messages}; `values` are the complete values (see scripts/lint-chart.py)."""
        done = self._run("lint", str(CHART), "--json", values=values, tmp=tmp)
        loaded = json.loads(done.stdout)
        assert isinstance(loaded, dict)
        return loaded

    def render(self, values: dict[str, Any], tmp: Path, namespace: str = "ops") -> Rendered:
        done = self._run("render", str(CHART), "--namespace", namespace, values=values, tmp=tmp)
        if done.returncode != 0:
            raise AssertionError(f"render failed: {done.stderr[-2000:]}")
        templates = json.loads(done.stdout)
        documents: list[dict[str, Any]] = []
        notes = ""
        for path, text in sorted(templates.items()):
            if path.endswith("NOTES.txt"):
                notes = text
                continue
            documents += [doc for doc in yaml.safe_load_all(text) if doc]
        return Rendered(documents=tuple(documents), notes=notes)


def helm_python() -> str | None:
    return os.environ.get(HELM_PYTHON_VARIABLE) or None


def errors(messages: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Lint messages at error severity, as '<engine>: <path>: <text>'."""
    return [f"{engine}: {m['path']}: {m['error'] or '(no text)'}"
            for engine, found in messages.items() for m in found if m["severity"] >= ERROR_SEVERITY]
