"""Step kinds of a pipeline, one module each; `KINDS` maps a kind's name to how it runs and reads."""

from __future__ import annotations

from bot.deploys.steps import http, job, make, probe, run, set_image, undo, verify, wait_rollout
from bot.deploys.steps.base import StepKind

KINDS: dict[str, StepKind] = {
    "run": StepKind("run", run.execute, run.describe),
    "make": StepKind("make", make.execute, make.describe),
    "set_image": StepKind("set_image", set_image.execute, set_image.describe, needs_cluster=True),
    "wait_rollout": StepKind("wait_rollout", wait_rollout.execute, wait_rollout.describe, needs_cluster=True),
    "probe": StepKind("probe", probe.execute, probe.describe, needs_cluster=True),
    "job": StepKind("job", job.execute, job.describe, needs_cluster=True),
    "http": StepKind("http", http.execute, http.describe),
    "verify": StepKind("verify", verify.execute, verify.describe, needs_cluster=True),
    "undo": StepKind("undo", undo.execute, undo.describe, needs_cluster=True),
}
