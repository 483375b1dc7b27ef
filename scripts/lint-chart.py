"""Lint or render the Helm chart with Helm's own engine, from a venv of its own.

Helm's Go library reaches Python through two PyPI packages, neither of which belongs in svcbot's venv:
helm-sdkpy (lint only; declares Python 3.12+ but its Lint works on 3.11) and helm-python-sdk (lint with
values, and offline rendering). Install either or both in a separate venv and run this file with its python:

    python3 -m venv /tmp/helmvenv
    /tmp/helmvenv/bin/pip install --ignore-requires-python helm-sdkpy helm-python-sdk
    /tmp/helmvenv/bin/python scripts/lint-chart.py lint helm/svcbot
    /tmp/helmvenv/bin/python scripts/lint-chart.py lint helm/svcbot --values values.json
    /tmp/helmvenv/bin/python scripts/lint-chart.py render helm/svcbot --values values.json --namespace ops
    /tmp/helmvenv/bin/python scripts/lint-chart.py engines

`--values` is a JSON file with the complete values (chart defaults merged with the overrides): helm-sdkpy's
Lint takes no values, so for it the chart is copied and its values.yaml replaced by that file (JSON is YAML).
`lint` runs every engine installed and exits 1 when any message has severity >= 3 (error); helm-sdkpy's error
texts come back empty, which is why tests/ship also validates values with jsonschema for readable messages.
Only the standard library is used here: the helm venv has nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ERROR = 3  # Helm's support.ErrorSev; 1 = info, 2 = warning
SEVERITY_NAMES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def engines() -> dict[str, Any]:
    """Which engines this python has: helm_sdkpy (lint) and helm_python (lint, render)."""
    lint = [name for name in ("helm_sdkpy", "helm_python") if importlib.util.find_spec(name)]
    return {"lint": lint, "render": "helm_python" if "helm_python" in lint else None}


def _lint_sdkpy(chart: Path, values: dict[str, Any] | None) -> list[dict[str, Any]]:
    import helm_sdkpy  # noqa: PLC0415 - only present in the helm venv

    with tempfile.TemporaryDirectory(prefix="svcbot-chart-") as scratch:
        target = chart
        if values is not None:
            target = Path(scratch) / chart.name
            shutil.copytree(chart, target)
            (target / "values.yaml").write_text(json.dumps(values, indent=1), encoding="utf-8")
        result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(str(target)))
    messages = [
        {"severity": int(m.get("Severity", 0)), "path": str(m.get("Path", "")),
         "error": m.get("Err") if isinstance(m.get("Err"), str) else ""}
        for m in result.get("Messages") or []
    ]
    # Go error values arrive as `{}`: count them, there is no text to keep.
    messages += [{"severity": ERROR, "path": "", "error": e if isinstance(e, str) else ""}
                 for e in result.get("Errors") or []]
    return messages


def _lint_python(chart: Path, values: dict[str, Any] | None) -> list[dict[str, Any]]:
    import helm_python  # noqa: PLC0415 - only present in the helm venv

    result = helm_python.lint(str(chart), values)
    messages = [
        {"severity": int(m.get("severity", 0)), "path": str(m.get("path", "")), "error": str(m.get("error", ""))}
        for m in result.get("messages") or []
    ]
    # `errors` repeats the error-level messages as text; keep only those that add something.
    texts = {str(m["error"]) for m in messages}
    messages += [{"severity": ERROR, "path": "", "error": str(e)} for e in result.get("errors") or []
                 if str(e) not in texts and not any(str(e).endswith(t) for t in texts if t)]
    return messages


def lint(chart: Path, values: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """{engine: messages} for every engine installed."""
    runners = {"helm_sdkpy": _lint_sdkpy, "helm_python": _lint_python}
    return {name: runners[name](chart, values) for name in engines()["lint"]}


def render(chart: Path, values: dict[str, Any] | None, namespace: str, release: str) -> dict[str, str]:
    """{template path: manifest text}, rendered offline as an install would."""
    import helm_python  # noqa: PLC0415 - only present in the helm venv

    with helm_python.Chart.load(str(chart)) as loaded:
        rendered: dict[str, str] = loaded.render(values, name=release, namespace=namespace, is_install=True)
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("engines", help="print which engines are installed (JSON)")
    for name in ("lint", "render"):
        cmd = sub.add_parser(name)
        cmd.add_argument("chart", type=Path)
        cmd.add_argument("--values", type=Path, help="JSON file with the complete values")
        cmd.add_argument("--json", action="store_true", help="print the result as JSON")
        if name == "render":
            cmd.add_argument("--namespace", default="svcbot")
            cmd.add_argument("--release", default="svcbot")
    args = parser.parse_args(argv)

    if args.command == "engines":
        print(json.dumps(engines()))
        return 0
    values = json.loads(args.values.read_text(encoding="utf-8")) if args.values else None
    if args.command == "render":
        if engines()["render"] is None:
            print("render needs helm-python-sdk in this python", file=sys.stderr)
            return 2
        print(json.dumps(render(args.chart, values, args.namespace, args.release)))
        return 0

    found = lint(args.chart, values)
    if not found:
        print("no Helm engine here: pip install helm-sdkpy or helm-python-sdk in this venv", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(found))
    else:
        for engine, messages in found.items():
            for m in messages:
                print(f"{engine}: [{SEVERITY_NAMES.get(m['severity'], m['severity'])}] {m['path']}: "
                      f"{m['error'] or '(no text: helm-sdkpy drops it; the other engine or jsonschema says why)'}")
            print(f"{engine}: {len(messages)} message(s)")
    failed = any(m["severity"] >= ERROR for messages in found.values() for m in messages)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
