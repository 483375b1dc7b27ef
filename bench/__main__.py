"""Run svcbot's benchmarks, print a summary table, and keep the run's figures as JSON.

    .venv/bin/python -m bench                 # every bench/*_bench.py, in name order
    .venv/bin/python -m bench ack startup     # some of them ("ack" or "ack_bench")
    .venv/bin/python -m bench --list
    .venv/bin/python -m bench --profile /tmp/prof ack logs   # py-spy profiles of the measured phases

Each benchmark module has `run() -> dict` of figures (name -> number; the unit is in the name, ratios say
"(x)") and prints its own lines as it measures. Ratios are always measured side by side in the same run, so
they hold on a slow machine too; absolute figures depend on it (the JSON records the machine and its load).
Results go to bench/results/<UTC timestamp>.json (git-ignored), to compare runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


def available() -> list[str]:
    return sorted(path.stem.removesuffix("_bench") for path in HERE.glob("*_bench.py"))


def select(names: list[str]) -> list[str]:
    known = available()
    chosen = []
    for name in names:
        short = name.removesuffix(".py").removesuffix("_bench")
        if short not in known:
            sys.exit(f"no benchmark {name!r}; known: {', '.join(known)}")
        chosen.append(short)
    return chosen or known


def machine() -> dict[str, Any]:
    """What the figures depend on: the machine, its load, the commit."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=False, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()), "commit": commit}


def load_average() -> str:
    """The 1/5/15-minute load averages and the cores: absolute figures are only comparable at equal load."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def run_one(name: str) -> tuple[dict[str, float], str | None, float]:
    """(figures, error, seconds) of one benchmark; a failing benchmark never stops the others."""
    started = time.monotonic()
    print(f"  ({load_average()} at the start)", flush=True)
    load_before = os.getloadavg()[0]
    try:
        module = importlib.import_module(f"bench.{name}_bench")
        figures = module.run()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported in the summary and the JSON
        traceback.print_exc()
        return {}, f"{type(exc).__name__}: {exc}", time.monotonic() - started
    print(f"  ({load_average()} at the end)", flush=True)
    figures = {**figures, "load average (1 min) at the start": load_before,
               "load average (1 min) at the end": os.getloadavg()[0]}
    return {key: float(value) for key, value in figures.items()}, None, time.monotonic() - started


def number(value: float) -> str:
    if value == int(value) and abs(value) < 1e9:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def summary(results: dict[str, dict[str, Any]]) -> str:
    """One table: each benchmark's figures, then its ratios, side by side as measured."""
    width = max([len(key) for result in results.values() for key in result["figures"]] + [20])
    lines = [f"{'benchmark':<10} {'figure':<{width}} {'value':>12}", f"{'-' * 10} {'-' * width} {'-' * 12}"]
    for name, result in results.items():
        if result["error"]:
            lines.append(f"{name:<10} {'FAILED: ' + result['error']}")
            continue
        figures = result["figures"]
        ordered = [key for key in figures if not key.startswith("ratio")] + \
                  [key for key in figures if key.startswith("ratio")]
        for index, key in enumerate(ordered):
            lines.append(f"{name if index == 0 else '':<10} {key:<{width}} {number(figures[key]):>12}")
        lines.append(f"{'':<10} {'(took ' + format(result['seconds'], '.0f') + ' s)':<{width}}")
    return "\n".join(line.rstrip() for line in lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available())})")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/<timestamp>.json")
    parser.add_argument("--profile", metavar="DIR", type=Path, default=None,
                        help="record the measured phases with py-spy into DIR and print their top functions")
    options = parser.parse_args()
    if options.list:
        print("\n".join(available()))
        return 0
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bot.core.logging import configure  # noqa: PLC0415 - after the path is set

    configure(json=True, level="WARNING")  # figures on stdout, not one log line per command
    if options.profile is not None:
        from bench import profiling  # noqa: PLC0415

        profiling.PROFILE_DIR = options.profile.resolve()
    started = dt.datetime.now(dt.UTC)
    context = machine()
    results: dict[str, dict[str, Any]] = {}
    for name in select(options.names):
        print(f"\n=== {name} {'=' * (70 - len(name))}", flush=True)
        figures, error, seconds = run_one(name)
        results[name] = {"figures": figures, "error": error, "seconds": round(seconds, 1)}
    print(f"\n=== summary {'=' * 63}\n{summary(results)}")
    if not options.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps({"started": started.isoformat(timespec="seconds"), "machine": context,
                                    "results": results}, indent=2) + "\n", encoding="utf-8")
        print(f"\nresults: {path.relative_to(ROOT)}")
    return 1 if any(result["error"] for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
