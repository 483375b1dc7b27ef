"""The local stand-ins started together, for `svcbot sandbox`, `svcbot demo` and the tests.

    with SandboxStack() as stack:
        stack.start(directory, time_scale=0.05)     # writes DIR/kubeconfig and DIR/catalog.yaml
        stack.kube.cluster("prod").faults.set(mode="stall", seconds=5)
        print(stack.addresses())

Each stand-in is a component with start(), stop() and addresses() (and optionally environment(), the
variables a client needs to find it). `kube` is always started; `slack` and `loki` are None until they are
wired in: assign a component to the attribute (or call add()) before start().
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol

import yaml

from sandbox.kube import CONFIGS_DIR, KubeSandbox

LOKI_PLACEHOLDER = "http://127.0.0.1:3100"

DEMO_USERS = {  # terminal name -> (Slack user id, role)
    "alice": ("U0ALICE", "on-call: deploys and rolls back; prod needs an approval"),
    "bob": ("U0BOB", "on-call and release manager: approves prod deploys, but never his own"),
    "carol": ("U0CAROL", "release manager: approves prod deploys"),
    "dave": ("U0DAVE", "developer: read-only verbs"),
}


class Component(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def addresses(self) -> dict[str, str]: ...


class SandboxStack:
    def __init__(self) -> None:
        self.kube: KubeSandbox | None = None
        self.slack: Component | None = None
        self.loki: Component | None = None
        self.prometheus: Any = None  # sandbox.prometheus.PrometheusSandbox: scrapes the pods; DIR/prometheus.yml
        self.extra: list[Component] = []
        self.directory: Path | None = None
        self._started: list[Component] = []
        self.shipper: Any = None  # sandbox.shipper.LogShipper, when Kubernetes and Loki both run
        self.control: Any = None  # sandbox.control.ControlServer: the control URL, in DIR/control.json

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def everything(cls) -> SandboxStack:
        """Kubernetes, Loki (with the seed log lines), Prometheus (scraping the pods) and Slack: what `svcbot
        sandbox` and `demo` run."""
        from sandbox.loki import LokiSandbox  # noqa: PLC0415 - tests that need only kube skip these imports
        from sandbox.prometheus import PrometheusSandbox  # noqa: PLC0415
        from sandbox.slack import SlackSandbox  # noqa: PLC0415

        stack = cls()
        stack.loki = LokiSandbox()
        stack.prometheus = PrometheusSandbox(history=3600.0)  # `metrics --since 1h` has an hour to show
        stack.slack = SlackSandbox()
        return stack

    def add(self, component: Component) -> Component:
        """Run one more stand-in with the stack (started in start(), stopped in stop())."""
        self.extra.append(component)
        return component

    def components(self) -> list[Component]:
        return [c for c in (self.kube, self.slack, self.loki, self.prometheus, *self.extra) if c is not None]

    def start(self, directory: Path, time_scale: float = 1.0) -> None:
        """Start every stand-in on 127.0.0.1 and write DIR/kubeconfig and DIR/catalog.yaml."""
        directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        if self.kube is None:
            self.kube = KubeSandbox(time_scale=time_scale)
        else:
            self.kube.time_scale = time_scale
        if self.prometheus is not None and getattr(self.prometheus, "kube", None) is None:
            self.prometheus.kube = self.kube
        try:
            for component in self.components():
                component.start()
                self._started.append(component)
            push_seed = getattr(self.loki, "push_seed", None)
            if callable(push_seed):
                # the last two hours' lines timestamped relative to now, so --since 1h finds them, under the
                # names of the pods that run; from now on the pods log for themselves, shipped to Loki
                push_seed(time.time(), pods=self.kube.pod_names())
                from sandbox.shipper import LogShipper  # noqa: PLC0415

                self.shipper = LogShipper(self.kube, self.loki).start()
            self.kube.write_kubeconfig(directory / "kubeconfig")
            if self.prometheus is not None:  # before the catalog, which may name the stand-in's URL
                self.prometheus.write_config(directory)
            (directory / "catalog.yaml").write_text(self.catalog_text(), encoding="utf-8")
            from sandbox.control import ControlServer  # noqa: PLC0415

            self.control = ControlServer(self).start()  # faults from outside: DIR/control.json says where
            self.control.write(directory)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.control is not None:
            control, self.control = self.control, None
            control.stop()
            if self.directory is not None:
                (self.directory / "control.json").unlink(missing_ok=True)
        if self.shipper is not None:
            shipper, self.shipper = self.shipper, None
            try:
                shipper.stop()
            except Exception:  # stopping the stand-ins matters more
                logging.getLogger("sandbox").exception("stopping the log shipper failed")
        while self._started:
            component = self._started.pop()
            try:
                component.stop()
            except Exception:  # stopping the others matters more
                logging.getLogger("sandbox").exception("stopping %r failed", component)

    def __enter__(self) -> SandboxStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what clients need

    def addresses(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for component in self.components():
            out.update(component.addresses())
        if self.control is not None:
            out["control"] = self.control.url
        if self.directory is not None:
            out["kubeconfig"] = str(self.directory / "kubeconfig")
            out["catalog"] = str(self.directory / "catalog.yaml")
            if self.prometheus is not None:  # for a real Prometheus: prometheus --config.file THIS ...
                out["prometheus.yml"] = str(self.directory / "prometheus.yml")
        return out

    def environment(self) -> dict[str, str]:
        """Environment variables that point svcbot at the stand-ins."""
        env: dict[str, str] = {}
        if self.directory is not None:
            env["KUBECONFIG"] = str(self.directory / "kubeconfig")
            env["SVCBOT_CATALOG"] = str(self.directory / "catalog.yaml")
        for component in self.components():
            more = getattr(component, "environment", None)
            if callable(more):
                env.update(more())
        slack_env = getattr(self.slack, "env", None)
        if callable(slack_env):  # SVCBOT_SLACK_API_URL and the sandbox's tokens, for `svcbot serve`
            env.update(slack_env())
        return env

    def prometheus_url(self) -> str | None:
        """The Prometheus stand-in's URL (None when the stack runs without one)."""
        url = getattr(self.prometheus, "url", None) if self.prometheus is not None else None
        return url if isinstance(url, str) and url.startswith("http") else None

    def loki_url(self) -> str:
        url = getattr(self.loki, "url", None) if self.loki is not None else None
        return url if isinstance(url, str) and url.startswith("http") else LOKI_PLACEHOLDER

    # ------------------------------------------------------------------ the catalog

    def catalog(self) -> dict[str, Any]:
        """The catalog (DESIGN.md format) for the seed world, pointing at this stack."""
        assert self.kube is not None
        world = self.kube.world
        services: dict[str, Any] = {}
        for name, svc in world.services.items():
            services[name] = {
                "deployment": svc.deployment,
                "container": "app",
                "image": svc.image,
                "version_pattern": r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$",
                "health": {"port": svc.port, "liveness": "/healthz", "readiness": "/readyz"},
                "config": {"dir": str((world.configs_dir or CONFIGS_DIR) / name),
                           "pattern": "application-{profile}.yaml"},
                "pipeline": "standard",
            }
        environments: dict[str, Any] = {}
        for env, (cluster, namespace) in world.environments.items():
            spec: dict[str, Any] = {"cluster": cluster, "namespace": namespace}
            if env == "prod":
                spec.update(protected=True, vars={"REPLICAS_MIN": "3"})
            environments[env] = spec
        prometheus_url = self.prometheus_url()
        deploy_steps: list[dict[str, Any]] = [{"set_image": {"image": "{IMAGE}"}}, {"wait_rollout": {"timeout": "10m"}},
                                              {"probe": {}}]
        extra: dict[str, Any] = {}
        if prometheus_url is not None:
            # One Prometheus for both clusters (the stand-in labels every series with its cluster). The verify
            # step is short so the demo's deploys stay quick: once the new pods have 10 s of metrics, three checks
            # 3 s apart; payment 1.5.4 (5 % errors) fails two of them and rolls back.
            extra["prometheus"] = {"url": prometheus_url, "timeout": "10s",
                                   "labels": {"namespace": "namespace", "service": "app", "pod": "pod",
                                              "cluster": "cluster"}}
            deploy_steps.append({"verify": {"checks": ["error_rate <= 1%", "p99 <= 500ms"], "interval": "3s",
                                            "duration": "9s", "failures": 2, "window": "10s", "baseline": "2m"}})
        return {
            # A newcomer exploring the demo types fast: a generous rate limit (production catalogs keep theirs).
            "settings": {"default_env": "prod", "command_deadline": "20s", "rate_limit": {"per_user": "200/min"},
                         "approvals_channel": "C0APPROVALS"},
            "clusters": {name: {"context": f"sandbox-{name}"} for name in self.kube.clusters},
            "environments": environments,
            "loki": {"url": self.loki_url(), "tenant": "ops", "labels": {"namespace": "namespace", "service": "app"},
                     "grafana_url": "https://grafana.example.com", "datasource_uid": "loki"},
            **extra,
            "secrets": {"key_patterns": ["password", "passwd", "secret", "token", "api_?key", "credential",
                                         "private", "dsn"]},
            "terminal": {"allow_as": True, "users": {name: uid for name, (uid, _role) in DEMO_USERS.items()}},
            "services": services,
            "access": {
                "groups": {"oncall": ["U0ALICE", "U0BOB"], "release-managers": ["U0CAROL", "U0BOB"]},
                "rules": [
                    {"verbs": ["status", "probe", "logs", "trace", "diff", "history", "metrics"], "envs": ["*"],
                     "who": ["*"]},
                    {"verbs": ["watch", "unwatch", "watches"], "envs": ["*"], "who": ["*"]},
                    {"verbs": ["deploy", "rollback"], "envs": ["dev", "staging"], "who": ["oncall"]},
                    {"verbs": ["deploy", "rollback"], "envs": ["prod"], "who": ["oncall"],
                     "approval": {"approvers": ["release-managers"], "quorum": 1, "self_approval": False,
                                  "expires": "30m"}},
                ],
            },
            "pipelines": {
                "standard": {
                    "vars": {"IMAGE": "{image}:{version}"},
                    "targets": {
                        "test": {"steps": [{"job": {"image": "registry.example.com/ci-runner:2",
                                                    "command": ["make", "test", "VERSION={version}"]}}]},
                        "migrate": {"needs": ["test"],
                                    "steps": [{"job": {"image": "{IMAGE}", "command": ["/app/migrate", "up"]}}]},
                        "deploy": {"needs": ["migrate"], "on_failure": "rollback", "steps": deploy_steps},
                    },
                    "goal": "deploy",
                },
            },
        }

    def catalog_text(self) -> str:
        users = "\n".join(f"#   {name:<6} {uid:<8} {role}" for name, (uid, role) in DEMO_USERS.items())
        header = (
            "# svcbot catalog for the local sandbox, written by sandbox/stack.py at each start (edits are lost).\n"
            "# Demo users (act as one with `svcbot shell --as NAME` or `as NAME` in the shell):\n"
            f"{users}\n"
            "# Seed world: sandbox/seed/README.md. The catalog format: DESIGN.md.\n"
        )
        return header + yaml.safe_dump(self.catalog(), sort_keys=False, width=120)


def fault_command(args: Any) -> tuple[int, str]:
    """`svcbot sandbox fault ...` (bot/cli.py): (exit code, what to print); see sandbox/control.py."""
    from sandbox.control import run_cli  # noqa: PLC0415

    return run_cli(args)
