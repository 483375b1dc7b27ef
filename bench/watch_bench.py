"""/svc watch: how soon an incident reaches Slack, and what watching costs the bot while pods churn.

1. Latency at the sandbox's real time (time scale 1): `svcbot serve` (its own process) watches a service; the
   benchmark sets an image the registry lacks with the cluster admin's client, so the new pod goes
   ErrImagePull at once (a status the watcher needs no threshold for). Measured: from the moment the pod's
   status says so (seen by the benchmark's own watch on the sandbox, in this process) to the moment the sandbox
   Slack answered the incident's chat.postMessage (same clock). Then `rollout undo` and the resolution, and
   the next round on the next service. Goal: under 5 s.
2. Cost: the bot's CPU (user + system, from /proc) and memory (VmRSS) while it watches a namespace in which
   1,000 pods churn (10 deployments of 100 replicas, restarted in turn), against the same bot idle.

    .venv/bin/python bench/watch_bench.py [--rounds 4] [--pods 1000] [--churn 60]
    .venv/bin/python -m bench watch
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402

from bench.serve_process import MIB, ServeProcess, bench_catalog, median, percentile  # noqa: E402
from sandbox.kube.resources import PODS  # noqa: E402
from sandbox.slack import SlackSandbox  # noqa: E402
from sandbox.stack import SandboxStack  # noqa: E402

CHANNEL = "C0SANDBOX"
PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff"}
# (service, deployment, env, namespace, an image the registry lacks)
ROUNDS = (("payment", "payment-api", "dev", "registry.example.com/payment:9.9.9"),
          ("orders", "orders", "dev", "registry.example.com/orders:9.9.9"),
          ("gateway", "gateway", "dev", "registry.example.com/gateway:9.9.9"),
          ("inventory", "inventory", "dev", "registry.example.com/inventory:9.9.9"))


def admin(stack: SandboxStack, cluster: str) -> Any:
    assert stack.directory is not None
    return k8s_config.new_client_from_config(config_file=str(stack.directory / "kubeconfig"),
                                             context=f"sandbox-{cluster}-admin", persist_config=False)


def slash(slack: SlackSandbox, url: str, text: str) -> None:
    body, headers = slack.slash_command_request(text, user_id="U0ALICE", channel_id=CHANNEL)
    status, _ = slack.post(url, body, headers)
    assert status == 200, status


def texts(message: Any) -> str:
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                found.append(inner) if key == "text" and isinstance(inner, str) else walk(inner)
        elif isinstance(item, list):
            for inner in item:
                walk(inner)

    walk(message)
    return "\n".join(found)


class PullFailures:
    """When each pod's status first said ErrImagePull, read from the sandbox's own store as each write lands
    (woken by the store's condition), so the time is the status change's, not some client's view of it."""

    def __init__(self, stack: SandboxStack, cluster: str, namespace: str) -> None:
        assert stack.kube is not None
        self.store = stack.kube.cluster(cluster).store
        self.namespace = namespace
        self.seen: dict[str, float] = {}  # pod name -> time.monotonic() of its first pull failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.store.cond:
                self.store.cond.wait(0.05)
            now = time.monotonic()
            for pod in self.store.list(PODS, self.namespace):
                for status in (pod.get("status") or {}).get("containerStatuses") or []:
                    waiting = (status.get("state") or {}).get("waiting") or {}
                    if waiting.get("reason") in PULL_FAILURES:
                        self.seen.setdefault(pod["metadata"]["name"], now)

    def first_since(self, prefix: str, since: float) -> float | None:
        times = [at for name, at in list(self.seen.items()) if name.startswith(prefix) and at >= since]
        return min(times) if times else None

    def stop(self) -> None:
        self._stop.set()


def wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"{what}: not within {timeout}s")


def latency(stack: SandboxStack, folder: Path, rounds: int) -> dict[str, float]:
    slack = stack.slack
    assert isinstance(slack, SlackSandbox)
    catalog = bench_catalog(stack, folder / "catalog-latency.yaml")
    raw = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    raw["watch"] = {"resolve_after": "1s", "reopen_window": "1s"}
    catalog.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    api = admin(stack, "nonprod")
    apps = k8s.AppsV1Api(api)
    seen = PullFailures(stack, "nonprod", "dev")
    samples: list[float] = []
    with ServeProcess(stack, catalog) as bot:
        bot.wait_ready()
        url = bot.events_url
        slash(slack, url, "watch all dev")
        time.sleep(3.0)  # the leader's first tick, the streams' first lists and watches
        for index in range(rounds):
            service, deployment, env, image = ROUNDS[index % len(ROUNDS)]
            time.sleep(1.5)  # past the channel's one-message-a-second slot the last resolution took
            started = time.monotonic()
            apps.patch_namespaced_deployment(deployment, env, {"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": image}]}}}})
            headline = f"{service} in {env}: image pull failure"
            posted = wait(lambda at=started, words=headline: [
                call for call in slack.calls("chat.postMessage") if call.at >= at and words in texts(call.args)],
                60, "the incident post")
            changed = wait(lambda at=started, prefix=deployment + "-": seen.first_since(prefix, at), 10,
                           "the pod's pull failure")
            samples.append(posted[0].at - changed)
            print(f"  round {index + 1}: {service}: pod ErrImagePull -> Slack post {samples[-1]:.2f} s")
            undo_started = time.monotonic()
            # Back to the seed's version of the service in dev, from its ReplicaSets: the newest one that is not the
            # broken image.
            replicasets = k8s.AppsV1Api(api).list_namespaced_replica_set(env, label_selector=f"app={service}").items
            good = sorted((rs for rs in replicasets if rs.spec.template.spec.containers[0].image != image),
                          key=lambda rs: rs.metadata.creation_timestamp)[-1].spec.template.spec.containers[0].image
            apps.patch_namespaced_deployment(deployment, env, {"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": good}]}}}})
            wait(lambda at=undo_started: [call for call in slack.calls("chat.postMessage") if call.at >= at
                                          and "resolved after" in texts(call.args)], 60, "the resolution")
    seen.stop()
    api.close()
    figures = {"incident post latency median (s)": median(samples),
               "incident post latency max (s)": max(samples) if samples else 0.0,
               "incident post latency p90 (s)": percentile(samples, 0.9)}
    print(f"pod status change -> Slack post: median {figures['incident post latency median (s)']:.2f} s, "
          f"max {figures['incident post latency max (s)']:.2f} s over {len(samples)} rounds (goal < 5 s)")
    return figures


def churn(stack: SandboxStack, folder: Path, pods: int, seconds: float) -> dict[str, float]:
    slack = stack.slack
    assert isinstance(slack, SlackSandbox)
    api = admin(stack, "nonprod")
    apps = k8s.AppsV1Api(api)
    deployments = max(1, pods // 100)
    replicas = pods // deployments
    names = [f"churn-{index}" for index in range(deployments)]
    for name in names:
        labels = {"app": name}
        apps.create_namespaced_deployment("staging", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "app", "image": "registry.example.com/payment:1.4.2"}]}}}})
    core = k8s.CoreV1Api(api)
    wait(lambda: len(core.list_namespaced_pod("staging", label_selector="app in (" + ",".join(names) + ")").items)
         >= pods, 300, "the churn pods")
    catalog = bench_catalog(stack, folder / "catalog-churn.yaml")
    figures: dict[str, float] = {}
    with ServeProcess(stack, catalog) as bot:
        bot.wait_ready()
        time.sleep(2.0)
        idle_cpu0, idle_t0 = bot.cpu_seconds(), time.monotonic()
        time.sleep(10.0)
        idle = (bot.cpu_seconds() - idle_cpu0) / (time.monotonic() - idle_t0)
        idle_rss = bot.rss_mib()
        slash(slack, bot.events_url, "watch all staging")
        time.sleep(3.0)
        cpu0, t0 = bot.cpu_seconds(), time.monotonic()
        restarts = 0
        peak = bot.rss_mib()
        while time.monotonic() - t0 < seconds:
            name = names[restarts % len(names)]
            stamp = dt.datetime.now(dt.UTC).isoformat()
            apps.patch_namespaced_deployment(name, "staging", {"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": stamp}}}}})
            restarts += 1
            for _ in range(20):
                time.sleep(0.25)
                peak = max(peak, bot.rss_mib())
        busy = (bot.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        hwm = bot.status().get("VmHWM", 0) / MIB
    api.close()
    figures = {"bot CPU idle (%)": idle * 100, "bot CPU watching 1,000 churning pods (%)": busy * 100,
               "bot RSS idle (MiB)": idle_rss, "bot RSS peak while churning (MiB)": max(peak, hwm),
               "deployments restarted": float(restarts)}
    print(f"bot CPU: idle {idle * 100:.1f} %, watching {pods} churning pods {busy * 100:.1f} % "
          f"({restarts} rolling restarts of {replicas} pods in {seconds:.0f} s)")
    print(f"bot memory: idle {idle_rss:.0f} MiB, peak while churning {max(peak, hwm):.0f} MiB")
    return figures


def run(rounds: int = 4, pods: int = 1000, seconds: float = 60.0) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as folder, SandboxStack.everything() as stack:
        stack.start(Path(folder), time_scale=1.0)
        print("latency (sandbox at real time)")
        figures.update(latency(stack, Path(folder), rounds))
        print(f"cost ({pods} pods churning)")
        figures.update(churn(stack, Path(folder), pods, seconds))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--churn", type=float, default=60.0)
    options = parser.parse_args()
    run(options.rounds, options.pods, options.churn)
