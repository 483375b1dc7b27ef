"""`run`: an argv list as a child process, never through a shell; cwd, env and a timeout; output kept.

The child gets a small environment (PATH, HOME, locale, TMPDIR) plus the step's `env`, never the bot's
own: Slack tokens and database URLs stay in the bot. A timeout or a cancel kills the whole process
group, so a `make` that started compilers does not leave them behind.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.deploys.steps.base import Args, StepCancelled, StepContext, StepFailed, Workload, duration_text, seconds

PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL


def child_environment(extra: Mapping[str, object]) -> dict[str, str]:
    env = {key: os.environ[key] for key in PASSED_ENVIRONMENT if key in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({str(key): str(value) for key, value in extra.items()})
    return env


def resolve_dir(ctx_workspace: Path, value: object) -> Path:
    path = Path(str(value)).expanduser() if value else ctx_workspace
    return path if path.is_absolute() else ctx_workspace / path


def run_process(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
                ctx: StepContext, what: str) -> None:
    """Run to completion; StepFailed with the output tail on a non-zero exit, timeout or a missing program."""
    if not cwd.is_dir():
        raise StepFailed(f"{what}: directory {cwd} does not exist")
    try:
        process = subprocess.Popen(  # noqa: S603 - an argv list, no shell; values validated by the planner
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    except OSError as exc:
        raise StepFailed(f"{what}: cannot start {argv[0]!r}: {exc.strerror or exc}") from exc
    reader = threading.Thread(target=_pump, args=(process, ctx), daemon=True, name=f"step-output-{ctx.run_id}")
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            if ctx.cancelled():
                _kill(process)
                raise StepCancelled
            if time.monotonic() >= deadline:
                _kill(process)
                reader.join(1.0)
                raise StepFailed(f"{what}: still running after its timeout of {duration_text(timeout)}; stopped")
            time.sleep(0.05)
    finally:
        reader.join(2.0)
    if process.returncode != 0:
        code = process.returncode
        why = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        raise StepFailed(f"{what}: {why}")


def _pump(process: subprocess.Popen[str], ctx: StepContext) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        ctx.output.add(line)
    process.stdout.close()


def _kill(process: subprocess.Popen[str]) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        return


def execute(args: Args, ctx: StepContext) -> str:
    argv = [str(word) for word in args["argv"]]
    timeout = seconds(args.get("timeout"), 600.0)
    env = args.get("env") or {}
    run_process(argv, cwd=resolve_dir(ctx.workspace, args.get("cwd")), env=child_environment(env),
                timeout=timeout, ctx=ctx, what=f"`{shlex.join(argv)}`")
    return f"`{shlex.join(argv)}` succeeded"


def describe(args: Args, _workload: Workload) -> str:
    argv = [str(word) for word in args["argv"]]
    where = f" (in {args['cwd']})" if args.get("cwd") else ""
    env = args.get("env") or {}
    prefix = " ".join(f"{key}={shlex.quote(str(value))}" for key, value in sorted(env.items()))
    return f"{prefix + ' ' if prefix else ''}{shlex.join(argv)}{where}"
