"""`make`: the team's own Makefile target, run as `make -C DIR TARGET VAR=value ...` (no shell).

Variables go on make's command line, where they override the Makefile's own assignments, exactly as a
person typing the command would pass them. The values were validated before substitution (a version
cannot contain `$`, so make expands nothing in them).
"""

from __future__ import annotations

import shlex

from bot.deploys.steps.base import Args, StepContext, StepFailed, Workload, seconds
from bot.deploys.steps.run import child_environment, resolve_dir, run_process

MAKE = "make"


def command(args: Args, directory: str) -> list[str]:
    target = str(args["target"])
    if target.startswith("-"):
        raise StepFailed(f"make target {target!r} looks like an option")
    variables = args.get("vars") or {}
    return [MAKE, "--no-print-directory", "-C", directory, target,
            *(f"{key}={value}" for key, value in sorted(variables.items()))]


def execute(args: Args, ctx: StepContext) -> str:
    directory = resolve_dir(ctx.workspace, args["dir"])
    argv = command(args, str(directory))
    run_process(argv, cwd=directory, env=child_environment({}), timeout=seconds(args.get("timeout"), 600.0),
                ctx=ctx, what=f"make {args['target']}")
    return f"make {args['target']} succeeded"


def describe(args: Args, _workload: Workload) -> str:
    return shlex.join(command(args, str(args["dir"])))
