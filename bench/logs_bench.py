"""Benchmark for /svc logs: rendering a 5,000-line answer, and a whole lookup against the raw query.

1. Rendering: a LogsReply of 5,000 lines -> Document -> Block Kit and plain text (time, and peak memory
   with tracemalloc), plus turning 5,000 raw Loki entries into masked lines (the command's own work).
2. End to end: `/svc logs bench prod --since 1h --limit 5000` through the dispatcher (parsing, policy,
   two Loki queries side by side, merging, masking, the reply) against one raw `requests.get` of
   query_range with the same query and limit, on the same Loki stand-in, interleaved, medians compared.

    .venv/bin/python bench/logs_bench.py [--rounds 7]    (or with the others: .venv/bin/python -m bench logs)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.profiling import profiled  # noqa: E402
from bot.core.catalog import DEFAULT_SECRET_KEY_PATTERNS  # noqa: E402
from bot.insight import logql  # noqa: E402
from bot.insight.logs import LevelSeries, log_line  # noqa: E402
from bot.insight.secrets import mask_text  # noqa: E402
from bot.render import slack  # noqa: E402
from bot.render import text as text_render  # noqa: E402
from bot.render.views import to_document  # noqa: E402
from bot.replies.logs import LogLookup, LogsReply  # noqa: E402
from bot.runtime import build_runtime  # noqa: E402

LINES = 5000
LEVELS = ("info", "info", "info", "debug", "warn", "error")


def json_line(index: int, timestamp_ns: int) -> str:
    return json.dumps({
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp_ns / 1e9)),
        "level": LEVELS[index % len(LEVELS)], "service": "bench", "trace_id": f"{index * 7919:032x}",
        "message": f"POST /api/checkout {200 if index % 6 else 503} in {index % 250}ms (request {index})",
        "method": "POST", "path": "/api/checkout", "duration_ms": index % 250,
        **({"db_password": "hunter2"} if index % 500 == 0 else {}),
    }, separators=(",", ":"))


def measure(label: str, function: object, rounds: int) -> tuple[float, float]:
    """(median seconds, peak MiB) of `function()` over `rounds` runs (peak from one traced run)."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()  # type: ignore[operator]
        timings.append(time.perf_counter() - started)
    tracemalloc.start()
    function()  # type: ignore[operator]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(timings)
    print(f"  {label:<44} {median * 1000:8.1f} ms   peak {peak / 2**20:6.1f} MiB")
    return median, peak / 2**20


def rendering(rounds: int) -> dict[str, float]:
    print(f"rendering a {LINES}-line answer (median of {rounds})")
    end = time.time_ns()
    entries = [(end - index * 700_000_000, json_line(index, end - index * 700_000_000)) for index in range(LINES)]
    labels = {"namespace": "prod", "app": "bench"}

    def build_lines() -> tuple[object, ...]:
        return tuple(log_line(ts, line, labels, "app", DEFAULT_SECRET_KEY_PATTERNS) for ts, line in entries)

    lines = build_lines()
    lookup = LogLookup(env="prod", namespace="prod", query='{namespace="prod", app="bench"} | json',
                       start_ns=end - 3600 * 10**9, end_ns=end, since="1h", limit=LINES,
                       explore_url="https://grafana.example.com/explore?x=1")
    reply = LogsReply(service="bench", lookup=lookup, lines=lines, limit_reached=True,  # type: ignore[arg-type]
                      series=(LevelSeries("error", tuple(range(30))), LevelSeries("info", tuple(range(30)))),
                      bucket_seconds=120, first_bucket_end_ns=end - 29 * 120 * 10**9, public=True)
    lines_time, _ = measure("Loki entries -> masked lines (command work)", build_lines, rounds)
    raw = [line for _, line in entries]
    mask_time, _ = measure("masking alone, the whole JSON line", lambda: [mask_text(line) for line in raw], rounds)
    print(f"  masking per line: {mask_time / LINES * 1e6:.1f} µs (goal: under 20 µs)")
    doc_time, _ = measure("reply -> document (view, attachment text)", lambda: to_document(reply), rounds)
    slack_time, slack_peak = measure("reply -> Block Kit (view + slack renderer)",
                                     lambda: slack.render(to_document(reply)), rounds)
    text_time, _ = measure("reply -> terminal text (view + text renderer)",
                           lambda: text_render.render(to_document(reply)), rounds)
    print(f"  per line (Block Kit path): {slack_time / LINES * 1e6:.1f} µs; view share {doc_time / slack_time:.0%}")
    return {f"{LINES} Loki entries -> masked lines (ms)": lines_time * 1000,
            "masking per line, whole JSON line (µs)": mask_time / LINES * 1e6,
            f"{LINES}-line reply -> Block Kit (ms)": slack_time * 1000,
            f"{LINES}-line reply -> Block Kit peak (MiB)": slack_peak,
            f"{LINES}-line reply -> terminal text (ms)": text_time * 1000,
            "ratio view / whole Block Kit path (x)": doc_time / slack_time}


def end_to_end(rounds: int) -> dict[str, float]:
    print(f"\nend to end: /svc logs vs one raw query_range, {LINES} lines (median of {rounds}, interleaved)")
    # The stand-in in its own process: Loki evaluates the two queries of /svc logs side by side, and its
    # CPU is not the bot's (bench/loki_process.py).
    loki_process = subprocess.Popen([sys.executable, "-m", "bench.loki_process", str(LINES + 1000)], cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert loki_process.stdout is not None
    assert loki_process.stdin is not None
    loki_url = loki_process.stdout.readline().strip()
    if not loki_url:
        raise RuntimeError("the Loki stand-in did not start")
    with tempfile.TemporaryDirectory() as folder:
        catalog = Path(folder) / "catalog.yaml"
        catalog.write_text(
            "settings: {default_env: prod, command_deadline: 60s, rate_limit: {per_user: 10000/min}}\n"
            "clusters: {prod: {context: prod}}\nenvironments: {prod: {cluster: prod, namespace: prod}}\n"
            f'loki: {{url: "{loki_url}", tenant: ops, timeout: 60s}}\nservices: {{bench: {{}}}}\n'
            "access: {rules: [{verbs: [logs], envs: ['*'], who: ['*']}]}\n", encoding="utf-8")
        runtime = build_runtime(catalog)
        search = logql.LogSearch(namespace_label="namespace", namespace="prod", service_label="app",
                                 services=("bench",))
        query = logql.log_query(search)
        session = requests.Session()
        session.headers["X-Scope-OrgID"] = "ops"  # the catalog's tenant: the stand-in, like Loki, requires one

        def raw() -> int:
            end = time.time_ns()
            answer = session.get(loki_url + "/loki/api/v1/query_range", timeout=60, params={
                "query": query, "start": str(end - 3600 * 10**9), "end": str(end), "limit": str(LINES),
                "direction": "backward"})
            answer.raise_for_status()
            return sum(len(stream["values"]) for stream in answer.json()["data"]["result"])

        def metric() -> None:  # the sparkline's query, which /svc logs runs beside the lines query
            end = time.time_ns()
            answer = session.get(loki_url + "/loki/api/v1/query_range", timeout=60, params={
                "query": logql.level_count_query(search, 120), "start": str(end - 3480 * 10**9),
                "end": str(end), "step": "120s"})
            answer.raise_for_status()

        def both() -> None:  # what /svc logs asks, side by side, raw: the stand-in's share of the bot's time
            with ThreadPoolExecutor(2) as pool:
                for future in [pool.submit(raw), pool.submit(metric)]:
                    future.result()

        def bot() -> int:
            reply = runtime.dispatcher.execute("logs bench prod --since 1h --limit 5000", "U0BENCH",
                                               source="terminal", follow_runs=True)
            assert isinstance(reply, LogsReply), reply
            return len(reply.lines)

        assert raw() == bot() == LINES  # warm both paths, and check they see the same lines
        raw_times, bot_times, metric_times, both_times = [], [], [], []
        for _ in range(rounds):
            started = time.perf_counter()
            both()
            both_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw()
            raw_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            metric()
            metric_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            bot()
            bot_times.append(time.perf_counter() - started)
        raw_median, bot_median = statistics.median(raw_times), statistics.median(bot_times)
        print(f"  raw query_range (requests + JSON)            {raw_median * 1000:8.1f} ms")
        print(f"  raw level-count metric query (sparkline)     {statistics.median(metric_times) * 1000:8.1f} ms"
              "   (/svc logs sends it beside the lines query)")
        both_median = statistics.median(both_times)
        print(f"  both raw queries side by side                {both_median * 1000:8.1f} ms"
              "   (one stand-in process evaluates them on one interpreter; Loki spreads them over queriers)")
        print(f"  /svc logs end to end (dispatcher -> reply)   {bot_median * 1000:8.1f} ms")
        overhead = 1000 * (bot_median - raw_median)
        print(f"  ratio bot / raw: {bot_median / raw_median:.2f}x  (overhead {overhead:.1f} ms); bot / both raw "
              f"queries side by side: {bot_median / both_median:.2f}x (the bot's own share "
              f"{1000 * (bot_median - both_median):.1f} ms)")
        with profiled(os.getpid(), "logs-end-to-end"):  # after the timings: the profiler costs a little
            for _ in range(rounds):
                bot()
        runtime.close()
        session.close()
    loki_process.stdin.close()
    loki_process.wait(30)
    return {f"raw query_range, {LINES} lines (ms)": raw_median * 1000,
            f"/svc logs end to end, {LINES} lines (ms)": bot_median * 1000,
            f"both raw queries side by side, {LINES} lines (ms)": both_median * 1000,
            "ratio /svc logs / raw query (x)": bot_median / raw_median,
            "ratio /svc logs / both raw queries side by side (x)": bot_median / both_median}


def run(rounds: int = 7) -> dict[str, float]:
    """Print the figures as they are measured; return them (for `python -m bench`)."""
    return {**rendering(rounds), **end_to_end(rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    run(args.rounds)


if __name__ == "__main__":
    main()
