"""Ack latency under load: does a stalled backend ever delay the ack, and is any command lost?

The bot runs as `svcbot serve` (its own process; HTTP mode behind waitress, then Socket Mode through the
sandbox's Socket Mode endpoint). 200 `/svc status payment` commands come from 50 concurrent clients, each
sending its next as soon as the last is acked, first with healthy clusters and then while every sandbox
cluster holds each request 2 s (from 1, 10 and 50 clients). Measured side by side in one run:

- ack latency p50/p99/max (HTTP: the client's round trip of the signed POST; Socket Mode: envelope sent to
  ack received, by the sandbox endpoint), healthy versus stalled; goal p99 < 100 ms; and the bot's CPU time
  per command, which bounds how many commands one process takes per second;
- every command answered once at its response_url (answered, lost, duplicates), and how long answers took;
- the bot's memory (VmRSS before and after the stalled round, peak) and peak thread count;
- Socket Mode: how long the bot takes to be connected again after Slack's refresh and after a close frame
  (and, with --drop, after the TCP connection is cut with no close frame).

The catalog keeps the defaults for `workers` and `queue_limit` (16 and 500: the burst must be answered in
full with them) and only lifts the per-user rate limit so the burst gets through; --workers and
--queue-limit measure other settings.

    .venv/bin/python bench/ack_bench.py [--commands 200] [--clients 50] [--stall 2] [--drop]
    .venv/bin/python -m bench ack
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.profiling import profiled  # noqa: E402
from bench.serve_process import (  # noqa: E402
    MIB,
    Phase,
    Sampler,
    ServeProcess,
    bench_catalog,
    http_sender,
    median,
    percentile,
    run_phase,
    socket_sender,
    stall_clusters,
)
from bot.core.catalog import Settings  # noqa: E402
from sandbox.slack import SlackSandbox  # noqa: E402
from sandbox.stack import SandboxStack  # noqa: E402

TEXT = "status payment"
WARM_UP = 10


def describe(label: str, phase: Phase, count: int) -> None:
    acks, answers = phase.acks_ms(), phase.answers_s()
    queued, busy = phase.acked_with("queued:"), phase.acked_with("busy")
    print(f"  {label:<22} ack p50 {percentile(acks, 0.5):6.1f} ms  p99 {percentile(acks, 0.99):6.1f} ms  "
          f"max {max(acks, default=0):6.1f} ms   answered {phase.answered}/{count}"
          f" (lost {count - phase.answered}, twice {phase.duplicates}, acked queued {queued}, busy {busy})"
          f"   answer p50 {median(answers):5.2f} s  p99 {percentile(answers, 0.99):5.2f} s"
          f"   (load {os.getloadavg()[0]:.2f})")


def load_rounds(mode: str, stack: SandboxStack, catalog: Path, commands: int, clients: int,
                stall: float, stalled_rounds: bool = True) -> tuple[dict[str, float], ServeProcess]:
    """A healthy round, then stalled rounds from 1, 10 and `clients` clients, against one bot process;
    returns the figures and the (still running) process."""
    slack = stack.slack
    assert isinstance(slack, SlackSandbox)
    assert stack.kube is not None
    bot = ServeProcess(stack, catalog, socket_mode=mode == "socket")
    bot.wait_ready()
    if mode == "socket":
        slack.wait_for_connections(1, timeout=30)
    send = socket_sender(slack, TEXT) if mode == "socket" else http_sender(slack, bot.events_url, TEXT)
    run_phase(slack, WARM_UP, WARM_UP, send, answer_timeout=30)  # clients built, selectors known
    print(f"{'HTTP (waitress)' if mode == 'http' else 'Socket Mode'}: {commands} x /svc {TEXT} per round")

    load_before = os.getloadavg()[0]
    cpu_before = bot.cpu_seconds()
    with profiled(bot.pid, f"ack-{mode}-healthy"):
        healthy = run_phase(slack, commands, clients, send, answer_timeout=60)
    cpu_per_command = (bot.cpu_seconds() - cpu_before) / commands
    describe(f"healthy, {clients} clients", healthy, commands)
    acks_healthy = healthy.acks_ms()
    load_after = os.getloadavg()[0]
    print(f"  healthy burst: ack p99 {percentile(acks_healthy, 0.99):.1f} ms = "
          f"{percentile(acks_healthy, 0.99) / 100:.2f}x the 100 ms goal, at load {load_before:.2f} -> "
          f"{load_after:.2f} (goal measured at load < 0.5 on 2 cores); bot CPU {cpu_per_command * 1000:.1f} ms "
          "per command")
    prefix = f"{mode}: "
    figures: dict[str, float] = {
        prefix + f"ack p50, healthy, {clients} clients (ms)": percentile(acks_healthy, 0.5),
        prefix + f"ack p99, healthy, {clients} clients (ms)": percentile(acks_healthy, 0.99),
        prefix + "bot CPU per command, healthy (ms)": cpu_per_command * 1000,
        prefix + "load average (1 min) after the healthy round": load_after,
        f"ratio {mode} ack p99 healthy / 100 ms goal (x)": percentile(acks_healthy, 0.99) / 100,
    }
    if not stalled_rounds:
        return figures, bot

    rss_before = bot.rss_mib()
    stall_clusters(stack, stall)
    stalled: dict[int, Phase] = {}
    with Sampler(bot.pid) as sampler:
        for concurrency in sorted({1, 10, clients}):
            stalled[concurrency] = run_phase(slack, commands, concurrency, send,
                                             answer_timeout=stall * commands + 60)
            describe(f"stall {stall:g}s, {concurrency} clients", stalled[concurrency], commands)
    stack.kube.clear_faults()
    rss_after = bot.rss_mib()

    busiest = stalled[clients]
    acks_stalled = busiest.acks_ms()
    p99_ratio = percentile(acks_stalled, 0.99) / max(percentile(acks_healthy, 0.99), 1e-6)
    lost = sum(commands - phase.answered for phase in stalled.values())
    twice = sum(phase.duplicates for phase in stalled.values())
    print(f"  bot CPU per command (healthy) {cpu_per_command * 1000:.1f} ms;   ack p99 stalled / healthy "
          f"({clients} clients) {p99_ratio:.2f}x;   memory {rss_before:.1f} -> {rss_after:.1f} MiB "
          f"({rss_after - rss_before:+.1f}) over {len(stalled) * commands} stalled commands, peak "
          f"{sampler.peak_rss / MIB:.1f} MiB, peak {sampler.peak_threads} threads")
    for concurrency, phase in stalled.items():
        acks = phase.acks_ms()
        figures[prefix + f"ack p50, stalled {stall:g}s, {concurrency} clients (ms)"] = percentile(acks, 0.5)
        figures[prefix + f"ack p99, stalled {stall:g}s, {concurrency} clients (ms)"] = percentile(acks, 0.99)
    figures.update({
        prefix + f"answer p50, stalled, {clients} clients (s)": median(busiest.answers_s()),
        prefix + f"answer p99, stalled, {clients} clients (s)": percentile(busiest.answers_s(), 0.99),
        prefix + "commands lost, all rounds (count)": lost + commands - healthy.answered,
        prefix + "commands answered twice, all rounds (count)": twice + healthy.duplicates,
        prefix + "RSS before stalled rounds (MiB)": rss_before,
        prefix + "RSS after stalled rounds (MiB)": rss_after,
        prefix + "RSS growth over stalled rounds (MiB)": rss_after - rss_before,
        prefix + "peak RSS (MiB)": sampler.peak_rss / MIB,
        prefix + "peak threads (count)": sampler.peak_threads,
        f"ratio {mode} ack p99 stalled / healthy, {clients} clients (x)": p99_ratio,
        f"ratio {mode} ack p99 stalled, {clients} / 1 clients (x)": (
            percentile(acks_stalled, 0.99) / max(percentile(stalled[1].acks_ms(), 0.99), 1e-6)),
    })
    return figures, bot


def reconnect_seconds(slack: SlackSandbox, bot: ServeProcess, how: str, timeout: float = 120.0) -> float:
    """Seconds from Slack ending the connection (`how`) to the bot's next connection and /readyz 200."""
    opened = slack.connections_opened()
    started = time.monotonic()
    slack.disconnect_all(how, grace=0.2)
    while time.monotonic() - started < timeout:
        if slack.connections_opened() > opened and bot.ready():
            return time.monotonic() - started
        time.sleep(0.02)
    return float("nan")


def run(commands: int = 200, clients: int = 50, stall: float = 2.0, workers: int | None = None,
        queue_limit: int | None = None, drop: bool = False, stalled_rounds: bool = True,
        prometheus: bool = True) -> dict[str, float]:
    """Print the figures as they are measured; return them (for `python -m bench`)."""
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ack-bench-") as folder, SandboxStack.everything() as stack:
        stack.start(Path(folder), time_scale=0.02)
        overrides = {key: value for key, value in (("workers", workers), ("queue_limit", queue_limit))
                     if value is not None}
        catalog = bench_catalog(stack, Path(folder) / "catalog-bench.yaml", prometheus=prometheus, **overrides)
        slack = stack.slack
        assert isinstance(slack, SlackSandbox)
        settings = Settings()
        print(f"catalog: workers {workers or settings.workers}"
              f"{'' if workers else ' (default)'}, queue_limit {queue_limit or settings.queue_limit}"
              f"{'' if queue_limit else ' (default)'}, rate limit lifted, command_deadline 20s, "
              + ("Prometheus numbers in status" if prometheus else "no Prometheus"))
        for mode in ("http", "socket"):
            slack.reset()
            mode_figures, bot = load_rounds(mode, stack, catalog, commands, clients, stall, stalled_rounds)
            figures.update(mode_figures)
            if mode == "socket":
                ways = ["disconnect", "close", *(["drop"] if drop else [])]
                seconds = {how: reconnect_seconds(slack, bot, how) for how in ways}
                print("  connected and ready again after: " + ", ".join(
                    f"{how} {value:.2f} s" for how, value in seconds.items())
                    + ("" if drop else "   (--drop: a cut connection, about a minute)"))
                figures.update({f"socket: reconnected after {how} (s)": value for how, value in seconds.items()})
            code, shutdown = bot.stop()
            print(f"  SIGTERM: exit {code} after {shutdown:.2f} s")
            figures[f"{mode}: exit after SIGTERM (s)"] = shutdown
        key = f"ack p99, stalled {stall:g}s, {clients} clients (ms)"
        if stalled_rounds:
            figures[f"ratio socket / http ack p99, stalled, {clients} clients (x)"] = (
                figures[f"socket: {key}"] / max(figures[f"http: {key}"], 1e-6))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--stall", type=float, default=2.0, help="seconds each Kubernetes request is held")
    parser.add_argument("--workers", type=int, default=None, help="default: the catalog's default")
    parser.add_argument("--queue-limit", type=int, default=None, help="default: the catalog's default")
    parser.add_argument("--drop", action="store_true", help="also cut the Socket Mode connection (slow)")
    parser.add_argument("--no-stall", action="store_true", help="the healthy rounds only (CPU and burst figures)")
    parser.add_argument("--without-prometheus", action="store_true",
                        help="a catalog without Prometheus: status without error rate and p99 (the work it did before)")
    parser.add_argument("--profile", metavar="DIR", type=Path, default=None,
                        help="record the healthy rounds with py-spy into DIR")
    options = parser.parse_args()
    from bot.core.logging import configure  # noqa: PLC0415

    configure(json=True, level="WARNING")
    if options.profile is not None:
        from bench import profiling  # noqa: PLC0415

        profiling.PROFILE_DIR = options.profile.resolve()
    run(options.commands, options.clients, options.stall, options.workers, options.queue_limit, options.drop,
        not options.no_stall, not options.without_prometheus)


if __name__ == "__main__":
    sys.exit(main())
