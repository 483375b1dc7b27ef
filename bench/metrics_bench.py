"""Benchmark svcbot's Prometheus paths against the sandbox (Kubernetes + the Prometheus stand-in), in one run.

1. Warm `metrics payment prod` end to end in the dispatcher (every range query, the deployment and pods,
   the store's deploys) with and without rendering (view + PNG), and the chart alone: render time, PNG size.
2. `status all prod` with and without a Prometheus in the catalog, with 4 and 50 services: time, and the
   Prometheus queries counted at the stand-in (one per environment whatever the number of services).
3. A verify step's added time: the same deploy of payment to staging with and without the verify step.

Run: .venv/bin/python bench/metrics_bench.py [--rounds N], or with the others: .venv/bin/python -m bench metrics
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.status_bench import EXTRA_SERVICES, create_extra_services
from bot.core.logging import configure as configure_logging
from bot.render.chart import render_png
from bot.render.views import to_document
from bot.replies.deploy import DeployRunReply
from bot.replies.metrics import MetricsReply
from bot.replies.status import StatusAllReply
from bot.runtime import build_runtime
from sandbox.prometheus import PrometheusSandbox
from sandbox.stack import SandboxStack

USER = "U0ALICE"


def timed(run: Callable[[], Any], rounds: int) -> tuple[float, float, Any]:
    """(median ms, p90 ms, last result)."""
    samples = []
    result = None
    for _ in range(rounds):
        started = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.9))], result


def run(rounds: int = 10) -> dict[str, float]:
    figures: dict[str, float] = {}
    configure_logging(json=True, level="WARNING")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    stack = SandboxStack()
    stack.prometheus = PrometheusSandbox(interval=1.0, history=3600.0)
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as tmp, stack:
        directory = Path(tmp)
        stack.start(directory, time_scale=0.02)
        os.environ["KUBECONFIG"] = str(directory / "kubeconfig")
        os.environ["SVCBOT_DB"] = str(directory / "svcbot.db")
        catalog = yaml.safe_load((directory / "catalog.yaml").read_text())
        catalog["settings"]["rate_limit"] = {"per_user": "1000000/min"}

        def runtime_of(spec: dict[str, Any], name: str) -> Any:
            path = directory / f"catalog-{name}.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            return build_runtime(path)

        runtime = runtime_of(catalog, "bench")
        prom = stack.prometheus
        time.sleep(3)  # a few scrapes of the running pods besides the history written at start

        # --- 1. metrics payment prod ----------------------------------------------------------------
        def metrics() -> MetricsReply:
            reply = runtime.dispatcher.execute("metrics payment prod --since 1h", USER, source="terminal")
            assert isinstance(reply, MetricsReply), reply
            return reply

        for _ in range(3):
            metrics()
        before = len(prom.requests)
        median, p90, reply = timed(metrics, rounds)
        queries = (len(prom.requests) - before) / rounds
        render_median, render_p90, document = timed(lambda: to_document(reply), rounds)
        chart_median, chart_p90, png = timed(lambda: render_png(reply), rounds)
        print("metrics payment prod --since 1h (warm), median / p90")
        print(f"  {'dispatcher: queries + Kubernetes + store':<44} {median:8.1f} ms {p90:8.1f} ms   "
              f"{queries:.0f} Prometheus queries")
        print(f"  {'view + chart (to_document)':<44} {render_median:8.1f} ms {render_p90:8.1f} ms")
        print(f"  {'chart alone (Figure + Agg, PNG)':<44} {chart_median:8.1f} ms {chart_p90:8.1f} ms   "
              f"{len(png) / 1024:.0f} KiB, {len(reply.panels)} panels")
        assert document.attachment is not None
        figures.update({
            "metrics payment prod, dispatcher median (ms)": median,
            "metrics payment prod, dispatcher p90 (ms)": p90,
            "metrics payment prod, end to end with chart median (ms)": median + render_median,
            "metrics payment prod, Prometheus queries (count)": queries,
            "chart render median (ms)": chart_median,
            "chart PNG size (KiB)": len(png) / 1024,
        })

        # --- 2. status all prod with and without Prometheus, 4 and 50 services ------------------------
        names = create_extra_services(directory / "kubeconfig", EXTRA_SERVICES)
        stack.kube.cluster("prod").wait_idle(10)
        template = catalog["services"]["payment"]
        many = dict(catalog, services={**catalog["services"], **{
            name: {**template, "deployment": name} for name in names}})
        print()
        print("status all prod, median / p90")
        for count, spec in ((4, catalog), (4 + EXTRA_SERVICES, many)):
            for label, with_prometheus in (("with Prometheus", True), ("without", False)):
                chosen = copy.deepcopy(spec)
                if not with_prometheus:
                    chosen.pop("prometheus", None)
                    for pipeline in chosen["pipelines"].values():  # verify needs a Prometheus: not here
                        for target in pipeline["targets"].values():
                            target["steps"] = [s for s in target.get("steps", []) if "verify" not in s]
                status_runtime = runtime_of(chosen, f"status-{count}-{with_prometheus}")

                def status_all(status_runtime: Any = status_runtime) -> StatusAllReply:
                    reply = status_runtime.dispatcher.execute("status all prod", USER, source="terminal")
                    assert isinstance(reply, StatusAllReply), reply
                    return reply

                for _ in range(3):
                    status_all()
                before = len(prom.requests)
                s_median, s_p90, s_reply = timed(status_all, rounds)
                sent = (len(prom.requests) - before) / rounds
                print(f"  {count:>3} services {label:<16} {s_median:8.1f} ms {s_p90:8.1f} ms   "
                      f"{s_reply.api_requests} API requests, {sent:.0f} Prometheus queries")
                key = f"status all prod, {count} services, {'with' if with_prometheus else 'without'} Prometheus"
                figures[f"{key} median (ms)"] = s_median
                figures[f"{key} Prometheus queries (count)"] = sent
                status_runtime.close()

        # --- 3. a verify step's added time --------------------------------------------------------------
        plain = copy.deepcopy(catalog)
        for pipeline in plain["pipelines"].values():
            for target in pipeline["targets"].values():
                target["steps"] = [s for s in target.get("steps", []) if "verify" not in s]
        print()
        durations = {}
        for label, spec, version in (("without verify", plain, "1.4.3"), ("with verify", catalog, "1.4.2")):
            deploy_runtime = runtime_of(spec, label.replace(" ", "-"))
            started = time.perf_counter()
            reply = deploy_runtime.dispatcher.execute(f"deploy payment staging {version}", USER, source="terminal",
                                                      follow_runs=True)
            took = time.perf_counter() - started
            assert isinstance(reply, DeployRunReply), reply
            verify = next((step for step in reply.steps if step.kind == "verify"), None)
            durations[label] = took
            print(f"  deploy payment staging {version} {label:<15} {took:6.1f} s  {reply.state}"
                  + (f"  (verify step {verify.duration:.1f} s)" if verify and verify.duration else ""))
            if verify is not None and verify.duration is not None:
                figures["verify step duration (s)"] = verify.duration
            deploy_runtime.close()
        figures["deploy with verify - without (s)"] = durations["with verify"] - durations["without verify"]
        runtime.close()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed runs per measurement")
    run(parser.parse_args().rounds)


if __name__ == "__main__":
    main()
