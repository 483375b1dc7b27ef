"""A bot replica for the tests, as its own OS process: what two pods sharing one store would each do.

    replica.py race URL REQUEST --clicks N --tag T   N threads "click Approve" at once on a PENDING request
                                                     (vote, PENDING -> APPROVED, claim the run); waits
                                                     for a line on stdin first, so all clicks start together
    replica.py sweep URL                             one expiry sweep (the background job), after stdin's go
    replica.py serve URL [--run] [--interval S]      background work (leader election, recovery, expiry),
                                                     and with --run a deploy run that never ends by itself

Every process prints JSON lines on stdout: {"event": ...}. The tests read them. `serve` prints "leading" or
"following" when that changes, and a "tick" after background rounds: how many are done, whether it leads,
how often each job ran, and the wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from bot.core import logging as bot_logging
from bot.deploys.background import BackgroundWork, expiry_job, recovery_job
from bot.deploys.engine import RunEngine, RunSettings
from bot.deploys.plan import Plan, PlannedStep
from bot.deploys.steps.base import StepContext, StepKind, Workload
from bot.deploys.store import NewRequest, State, StepSpec, Store

STEPS = [StepSpec("deploy", "hold", "hold until stopped")]
WORKLOAD = Workload(service="payment", env="prod", cluster="local", namespace="prod", deployment="payment-api",
                    container="app")


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def wait_for_go() -> None:
    say("ready")
    sys.stdin.readline()


def race(args: argparse.Namespace) -> None:
    """Clicks from one replica: each votes, tries PENDING -> APPROVED, and tries to start the run."""
    store = Store.open(args.url, recover=False)
    results: list[dict[str, bool]] = []
    lock = threading.Lock()
    go = threading.Event()

    def click(index: int) -> None:
        go.wait()
        approver = f"U0APPROVER{index % 5}"  # both replicas' clicks share five approvers
        voted = store.add_vote(args.request, approver, "approve")
        approved = store.transition(args.request, State.APPROVED, actor=approver, expected=[State.PENDING],
                                    unexpired=True)
        claimed = store.claim_run(args.request, STEPS, actor=approver)
        with lock:
            results.append({"voted": voted, "approved": approved, "claimed": claimed})

    threads = [threading.Thread(target=click, args=(index,)) for index in range(args.clicks)]
    for thread in threads:
        thread.start()
    wait_for_go()
    go.set()
    for thread in threads:
        thread.join()
    store.close()
    say("clicked", tag=args.tag, results=results)


def sweep(args: argparse.Namespace) -> None:
    store = Store.open(args.url, recover=False)
    expired: list[str] = []
    job = expiry_job(lambda request: expired.append(request.id))
    wait_for_go()
    job.run(store)
    store.close()
    say("swept", expired=expired)


def hold(_args: Any, ctx: StepContext) -> str:
    while True:
        ctx.sleep(0.05)


def serve(args: argparse.Namespace) -> None:
    """A replica: background work every `interval`, and optionally one deploy run it keeps heartbeating."""
    settings = RunSettings(heartbeat=args.heartbeat, poll=0.05, stale_after=args.stale_after)
    store = Store.open(args.url, stale_after=args.stale_after)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    jobs = [recovery_job(lambda snapshot: say("interrupted", id=snapshot.id, reason=snapshot.request.reason)),
            expiry_job(lambda request: say("expired", id=request.id))]
    work = BackgroundWork(lambda: store, jobs, interval=args.interval).start()
    engine = None
    if args.run:
        kinds = {"hold": StepKind("hold", hold, lambda _args, _workload: "hold until stopped")}
        engine = RunEngine(store, settings=settings, kinds=kinds)
        plan = Plan(action="deploy", service="payment", env="prod", version="9.9.9", workload=WORKLOAD,
                    image="registry.example.com/payment:9.9.9", pipeline="hold", targets=("deploy",),
                    steps=(PlannedStep(target="deploy", kind="hold", args={}, rollback_on_failure=False),),
                    variables={}, workspace=".")
        request = store.create_request(NewRequest(kind="deploy", service="payment", env="prod", version="9.9.9",
                                                  requester="U0ALICE", plan=plan.to_json(), state=State.APPROVED))
        engine.start(request.id)
        say("started", id=request.id)
    leading: bool | None = None
    ticks = 0
    while not stop.wait(0.02):
        if work.ticks and work.leading != leading:
            leading = work.leading
            say("leading" if leading else "following", at=time.time())
        if work.ticks != ticks:
            ticks = work.ticks
            say("tick", ticks=ticks, leading=work.leading, runs=dict(work.runs), at=time.time())
    work.stop()
    if engine is not None:
        engine.shutdown(0.5)
    say("stopped")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    race_parser = sub.add_parser("race")
    race_parser.add_argument("url")
    race_parser.add_argument("request")
    race_parser.add_argument("--clicks", type=int, default=10)
    race_parser.add_argument("--tag", default="")
    sweep_parser = sub.add_parser("sweep")
    sweep_parser.add_argument("url")
    serve_parser = sub.add_parser("serve")
    serve_parser.add_argument("url")
    serve_parser.add_argument("--run", action="store_true")
    serve_parser.add_argument("--interval", type=float, default=0.2)
    serve_parser.add_argument("--heartbeat", type=float, default=0.2)
    serve_parser.add_argument("--stale-after", type=float, default=1.5)
    args = parser.parse_args()
    bot_logging.configure(level="WARNING")  # logs on stderr: stdout carries the JSON lines only
    {"race": race, "sweep": sweep, "serve": serve}[args.command](args)


if __name__ == "__main__":
    main()
