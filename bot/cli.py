"""The `svcbot` command line. `sandbox` and `demo` import sandbox/ lazily; nothing else does."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.core import logging as bot_logging
from bot.core.errors import CatalogError, UsageError
from bot.terminal import db as dbcli

DESCRIPTION = """svcbot: Slack ChatOps for microservices on Kubernetes with Grafana Loki.

Start with `svcbot demo` (a local sandbox cluster, Loki and Slack, and a shell), or check a catalog with
`svcbot check --catalog examples/catalog.yaml`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svcbot", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default=os.environ.get("SVCBOT_LOG_LEVEL"),
                        help="DEBUG, INFO, WARNING or ERROR (logs go to stderr; default INFO for serve and "
                             "sandbox, WARNING in the terminal so answers stay readable)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)")
    serve.add_argument("--catalog", help="catalog file (default: $SVCBOT_CATALOG or ./catalog.yaml)")
    serve.add_argument("--port", type=int, default=3000, help="HTTP mode: port for /slack/events (3000)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    serve.add_argument("--health-port", type=int, default=8080, help="port for /healthz, /readyz, /metrics (8080)")

    shell = sub.add_parser("shell", help="interactive terminal session against the catalog")
    shell.add_argument("--catalog")
    shell.add_argument("--as", dest="as_user", metavar="USER", help="act as this user (catalog must allow it)")

    run = sub.add_parser("run", help="run one command and print the answer (exit 0 ok, 1 user error, "
                                     "2 internal error, 3 a run it waited for failed)")
    run.add_argument("text", help='the command, e.g. "status payment prod"')
    run.add_argument("--catalog")
    run.add_argument("--as", dest="as_user", metavar="USER")

    sandbox = sub.add_parser("sandbox", help="start the local stand-ins and write DIR/kubeconfig, DIR/catalog.yaml")
    sandbox.add_argument("--dir", default=".svcbot-sandbox", help="where to write kubeconfig and catalog.yaml")
    sandbox.add_argument("--time-scale", type=float, default=1.0, help="rollout speed (1.0 = seconds)")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="fault")
    fault = sandbox_sub.add_parser(
        "fault", help="break a running sandbox's Kubernetes or Loki stand-in, from another terminal",
        description="kube CLUSTER down|stall|500|403|expire-watches|clear, loki 429|500|502|503|504|stall|clear, "
                    "clear (everything), show. The sandbox's DIR/control.json says where its control URL is.")
    fault.add_argument("--dir", dest="fault_dir", default=".svcbot-sandbox", help="the running sandbox's --dir")
    fault.add_argument("what", nargs="+", metavar="WHAT", help="e.g. kube prod 500 --resource deployments --count 2")
    fault.add_argument("--seconds", type=float, default=None, help="stall: how long (default: until clear)")
    fault.add_argument("--resource", default=None, help="500/403: only this resource (deployments, pods/log ...)")
    fault.add_argument("--verb", default=None, help="500/403: only this verb (get, list, watch, patch ...)")
    fault.add_argument("--count", type=int, default=None, help="500/403: only this many requests")
    fault.add_argument("--times", type=int, default=1, help="loki 429/500/...: this many queries (1)")

    demo = sub.add_parser("demo", help="sandbox + shell in one process: the first thing to run")
    demo.add_argument("--dir", default=None, help="where to keep the sandbox files (default: a temp dir)")
    demo.add_argument("--as", dest="as_user", metavar="USER", default="alice")

    check = sub.add_parser("check", help="validate a catalog; every problem with its YAML path; exit 1 if any")
    check.add_argument("--catalog")

    dbcli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or ("INFO" if args.command in {"serve", "sandbox", "shell", "demo"} else "WARNING")
    log_file = None
    if args.command in {"shell", "demo"}:
        # Between a prompt and its answer a log line is noise: the interactive shell and the demo log to a
        # file (said at start); `serve`, `run` and the rest keep logging to stderr.
        log_file = shell_log_file(args.command)
        args.log_path = log_file.name
    bot_logging.configure(level=level, stream=log_file, json=True if log_file is not None else None)
    try:
        return int(_COMMANDS[args.command](args))
    except CatalogError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"svcbot: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def shell_log_file(command: str) -> TextIO:
    """$SVCBOT_LOG_FILE, else <the user's state directory>/svcbot/<command>.log, opened for appending."""
    chosen = os.environ.get("SVCBOT_LOG_FILE")
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    path = Path(chosen) if chosen else state / "svcbot" / f"{command}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8", buffering=1)


def _check(args: argparse.Namespace) -> int:
    from bot.core.catalog import load_catalog, missing_profile_dirs  # noqa: PLC0415
    from bot.runtime import catalog_path  # noqa: PLC0415

    path = catalog_path(args.catalog)
    catalog = load_catalog(path)
    # A warning only: CI may check a catalog whose profiles exist only in the pod (`serve` refuses to start).
    for problem in missing_profile_dirs(catalog):
        print(f"warning: {problem} (svcbot serve refuses to start without it)", file=sys.stderr)
    counts = ", ".join(count(len(items), noun) for items, noun in (
        (catalog.clusters, "cluster"), (catalog.environments, "environment"), (catalog.services, "service"),
        (catalog.access.rules, "access rule"), (catalog.pipelines, "pipeline")))
    print(f"{path}: OK ({counts})")
    return 0


def _user(catalog_args: argparse.Namespace, runtime_catalog: object) -> str:
    from bot.core.catalog import Catalog  # noqa: PLC0415
    from bot.terminal import shell  # noqa: PLC0415

    assert isinstance(runtime_catalog, Catalog)
    if catalog_args.as_user:
        return shell.resolve_as(runtime_catalog, catalog_args.as_user)
    return shell.default_user(runtime_catalog, shell.os_user())


def _run(args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime, catalog_path  # noqa: PLC0415
    from bot.terminal import shell  # noqa: PLC0415

    runtime = build_runtime(catalog_path(args.catalog))
    try:
        code, abandoned = shell.run_watched(runtime.dispatcher, args.text, _user(args, runtime.catalog),
                                            sys.stdout, sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # decided: one more Ctrl-C must not break the way out
        runtime.close()
    if abandoned:
        # Ctrl-C left work on other threads (a command mid-call, a run marked INTERRUPTED mid-step), which the
        # interpreter would wait for at exit: the store is closed and the answer printed, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _shell(args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime, catalog_path  # noqa: PLC0415
    from bot.terminal import shell  # noqa: PLC0415

    runtime = build_runtime(catalog_path(args.catalog))
    try:
        shell.Shell(runtime.dispatcher, _user(args, runtime.catalog), banner=f"(logs go to {args.log_path})\n").loop()
    finally:
        runtime.deploys.stop_here("svcbot shell", wait=shell.STOP_WAIT)  # the shell asked; nothing may be left
        runtime.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from bot.runtime import catalog_path  # noqa: PLC0415
    from bot.slack import serving  # noqa: PLC0415

    return serving.serve(catalog_path(args.catalog), host=args.host, port=args.port, health_port=args.health_port)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):  # wake now and then: a signal taken by another thread runs its handler here
        pass


def _sandbox(args: argparse.Namespace) -> int:
    if getattr(args, "sandbox_command", None) == "fault":
        from sandbox.stack import fault_command  # noqa: PLC0415

        code, text = fault_command(args)
        print(text, file=sys.stdout if code == 0 else sys.stderr)
        return int(code)
    from sandbox.stack import SandboxStack  # noqa: PLC0415 - only these subcommands need the sandbox

    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    with SandboxStack.everything() as stack:
        stack.start(directory, time_scale=args.time_scale)
        print(f"sandbox running; files in {directory}")
        for name, address in stack.addresses().items():
            print(f"  {name:<18} {address}")
        exports = " ".join(f"{key}={value}" for key, value in stack.environment().items())
        print(f"\nIn another terminal:\n  export {exports}")
        print("  svcbot shell --as alice        # the terminal, as the on-call engineer")
        print("  svcbot serve --port 3000       # the bot, in Socket Mode against the sandbox Slack")
        print(f"  svcbot sandbox fault --dir {directory} kube prod stall   # rehearse an incident; "
              "`... fault --dir DIR clear` ends it")
        print("Ctrl-C here stops the sandbox.", flush=True)
        _wait_for_signal()
    return 0


def count(number: int, noun: str) -> str:
    """'1 pipeline', '2 pipelines'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _demo(args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415

    from bot.runtime import build_runtime  # noqa: PLC0415
    from bot.terminal import shell  # noqa: PLC0415
    from sandbox.stack import SandboxStack  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="svcbot-demo-") as scratch:
        directory = Path(args.dir or scratch).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        with SandboxStack.everything() as stack:
            stack.start(directory, time_scale=1.0)
            os.environ["KUBECONFIG"] = str(directory / "kubeconfig")
            for key, value in stack.environment().items():
                os.environ[key] = value
            # The store lives with the world it describes: each demo starts a fresh world, so a shared store
            # would show deploys of earlier demos that this world never had.
            os.environ.setdefault("SVCBOT_DB", str(directory / "svcbot.db"))
            runtime = build_runtime(directory / "catalog.yaml")
            try:
                shell.Shell(runtime.dispatcher, shell.resolve_as(runtime.catalog, args.as_user),
                            banner=demo_banner(args.log_path, directory)).loop()
            finally:
                # The shell asked before leaving and waited for cancelled runs; whatever still runs (the shell
                # failed) is cancelled and waited for here: the sandbox must not go away under a rollout.
                runtime.deploys.stop_here("svcbot demo", wait=shell.STOP_WAIT)
                runtime.close()
    return 0


def demo_banner(log_path: str, directory: Path) -> str:
    """Who the demo's users are and what to try, including the versions built to fail."""
    from sandbox.stack import DEMO_USERS  # noqa: PLC0415

    users = "\n".join(f"  {name:<6} {role}" for name, (_uid, role) in DEMO_USERS.items())
    return (
        "svcbot demo: a sandbox with clusters nonprod (dev, staging) and prod; services payment, orders, gateway, "
        "inventory.\n"
        f"Users (switch with `as NAME`):\n{users}\n"
        "Try:\n"
        "  status payment · status all prod · probe gateway staging · logs orders staging --level error\n"
        "  diff payment staging prod · deploy payment staging 1.4.3 · history payment staging\n"
        "  deploy payment prod 1.4.2, then `as carol` and approve it; as bob (on-call and an approver), try to\n"
        "  approve a request of your own: refused, since prod deploys need someone else's approval\n"
        "Versions built to fail: payment 1.5.0 crashes, 1.5.1 leaks memory (OOMKilled), 1.5.2 never becomes "
        "ready,\n  1.5.3 fails its migration; orders 2.9.0 and inventory 3.2.1 crash; gateway 1.0.1 leaks.\n"
        "Watch for incidents: `watch payment staging`, then break it outside svcbot from another terminal:\n"
        f"  kubectl --kubeconfig {directory}/kubeconfig --context sandbox-nonprod-admin -n staging set image "
        "deployment/payment-api app=registry.example.com/payment:1.5.0\n"
        "  (the crash loop prints here once it restarted 3 times; `rollback payment staging` resolves it)\n"
        f"Rehearse an incident from another terminal: svcbot sandbox fault --dir {directory} kube prod stall\n"
        "  (then `status payment`; `svcbot sandbox fault --dir ... clear` ends it)\n"
        f"(logs go to {log_path}; the store is this demo's own, under {os.environ.get('SVCBOT_DB', '?')})\n"
    )


_COMMANDS = {
    "check": _check, "run": _run, "shell": _shell, "serve": _serve, "sandbox": _sandbox, "demo": _demo,
    "db": dbcli.main,
}


if __name__ == "__main__":
    sys.exit(main())
