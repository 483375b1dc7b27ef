"""Deploy plans: a team's Makefile as data, planned before anything runs.

Planning (`plan_deploy`, `plan_rollback`) is pure: it validates what the user typed (service and
environment from the catalog, the version against the service's strict pattern and a hard character
guard), resolves the goal's prerequisites in dependency order (each target once, like make), and only
then substitutes variables into the steps. The result, a `Plan`, is what a dry run prints, what a
PENDING request stores, and exactly what a run executes, even if the catalog changes in between.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from bot.core.catalog import (
    Catalog,
    Pipeline,
    ProbeStep,
    SetImageStep,
    Step,
    Target,
    WaitRolloutStep,
)
from bot.core.errors import UsageError
from bot.deploys.steps import KINDS
from bot.deploys.steps.base import StepKind, Workload
from bot.insight.kube_facts import image_tag

log = structlog.get_logger("svcbot.pipeline")

# --- validating what the user typed ---------------------------------------------------------------------

# Whatever a service's version_pattern says, a version is at most this: no shell metacharacters, no
# spaces or newlines, no leading dash (it would read as an option to make, kubectl or a CI script).
SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
IMAGE_REFERENCE = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}")
DEFAULT_PIPELINE_NAME = "(built in)"
# A service without a pipeline deploys like `kubectl set image` + `rollout status` + a readiness check.
DEFAULT_PIPELINE = Pipeline(
    targets={"deploy": Target(on_failure="rollback", steps=(
        Step(set_image=SetImageStep(image="{image}:{version}")),
        Step(wait_rollout=WaitRolloutStep()),
        Step(probe=ProbeStep()),
    ))},
    goal="deploy",
)
ROLLBACK_TARGET = "rollback"
ROLLBACK_TIMEOUT = 600.0


def validate_version(catalog: Catalog, service: str, version: str) -> str:
    """The version if the service's pattern and the hard guard accept it; UsageError naming the pattern."""
    pattern = catalog.service(service).version_pattern
    printable = version.encode("unicode_escape").decode("ascii")
    if not SAFE_VALUE.fullmatch(version) or re.fullmatch(pattern, version) is None:
        raise UsageError(f"version '{printable}' is not a valid version of {service}: it must match {pattern}")
    return version


# --- the plan -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedStep:
    target: str
    kind: str
    args: Mapping[str, Any]  # the step's spec, every placeholder substituted (JSON)
    rollback_on_failure: bool  # its target says `on_failure: rollback`

    def describe(self, workload: Workload, kinds: Mapping[str, StepKind] = KINDS) -> str:
        kind = kinds.get(self.kind)
        return kind.describe(self.args, workload) if kind is not None else f"{self.kind} {dict(self.args)}"


@dataclass(frozen=True)
class Plan:
    """Exactly what a run will do; stored with the request as JSON (`to_json` / `from_json`)."""

    action: str  # "deploy" | "rollback"
    service: str
    env: str
    version: str  # deploy: the version; rollback: "" (previous) or the revision number
    workload: Workload
    image: str  # the image a deploy sets ("" for a rollback)
    pipeline: str
    targets: tuple[str, ...]
    steps: tuple[PlannedStep, ...]
    variables: Mapping[str, str]
    workspace: str  # the catalog's folder: relative make/run directories start there
    # What the deployment ran when the request was made (set by `Deploys.request`; "" when unknown). Approving
    # or starting the request while something else runs is refused: the request was superseded.
    from_image: str = ""
    revision: int = 0  # rollback: the revision it goes back to, resolved when the request is made (0: unknown)

    def lines(self) -> list[str]:
        """The plan like `make -n`: each target, then its steps with their arguments substituted."""
        out: list[str] = []
        current = None
        for index, step in enumerate(self.steps, start=1):
            if step.target != current:
                current = step.target
                suffix = "  (on failure: rollback)" if step.rollback_on_failure else ""
                out.append(f"{current}:{suffix}")
            out.append(f"  {index}. {step.describe(self.workload)}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action, "service": self.service, "env": self.env, "version": self.version,
            "workload": dataclasses.asdict(self.workload), "image": self.image, "pipeline": self.pipeline,
            "targets": list(self.targets), "variables": dict(self.variables), "workspace": self.workspace,
            "from_image": self.from_image, "revision": self.revision,
            "steps": [{"target": step.target, "kind": step.kind, "args": dict(step.args),
                       "rollback_on_failure": step.rollback_on_failure} for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            action=str(data["action"]), service=str(data["service"]), env=str(data["env"]),
            version=str(data["version"]), workload=Workload(**data["workload"]), image=str(data["image"]),
            pipeline=str(data["pipeline"]), targets=tuple(data["targets"]),
            variables=dict(data["variables"]), workspace=str(data["workspace"]),
            from_image=str(data.get("from_image") or ""), revision=int(data.get("revision") or 0),
            steps=tuple(PlannedStep(target=str(step["target"]), kind=str(step["kind"]), args=dict(step["args"]),
                                    rollback_on_failure=bool(step["rollback_on_failure"]))
                        for step in data["steps"]),
        )


SUPERSEDED = "superseded"  # the first word of the reason of a request ended because something else runs now


def superseded(plan: Plan, now_runs: str) -> str:
    """Why the plan may not run any more ("" if it may): the deployment runs another image than the one it was
    planned against. Unknown on either side is not a reason (the run records the exact "from" anyway)."""
    if not plan.from_image or not now_runs or plan.from_image == now_runs:
        return ""
    return (f"{SUPERSEDED}: {plan.env} now runs {image_tag(now_runs)}, this request was made against "
            f"{image_tag(plan.from_image)}: request it again")


def workload_of(catalog: Catalog, service: str, env: str) -> Workload:
    definition = catalog.service(service)
    environment = catalog.environment(env)
    return Workload(service=service, env=env, cluster=environment.cluster, namespace=environment.namespace,
                    deployment=catalog.deployment_name(service), container=definition.container,
                    readiness_path=definition.health.readiness, port=definition.health.port)


def target_order(pipeline: Pipeline, goal: str) -> list[str]:
    """The goal's prerequisites first, depth first in the order `needs` lists them, each target once."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name):], name]
            raise UsageError(f"pipeline has a dependency cycle: {' -> '.join(cycle)} (svcbot check reports it)")
        if name not in pipeline.targets:
            raise UsageError(f"pipeline has no target '{name}' (targets: {', '.join(pipeline.targets)})")
        visiting.append(name)
        for need in pipeline.targets[name].needs:
            visit(need)
        visiting.pop()
        order.append(name)

    visit(goal)
    return order


def resolve_variables(layers: Sequence[Mapping[str, str]], builtins: Mapping[str, str]) -> dict[str, str]:
    """Later layers override earlier ones (like `VAR ?= default` then per-environment and per-target
    assignments); values may refer to builtins and other variables; cycles and unknown names are errors."""
    raw: dict[str, str] = {}
    for layer in layers:
        raw.update(layer)
    resolved: dict[str, str] = dict(builtins)

    def expand(name: str, chain: tuple[str, ...]) -> str:
        if name in resolved:
            return resolved[name]
        if name in chain:
            raise UsageError(f"pipeline variables refer to each other in a loop: {' -> '.join((*chain, name))}")
        if name not in raw:
            known = ", ".join(sorted({*builtins, *raw}))
            raise UsageError(f"unknown pipeline variable '{{{name}}}' (known: {known})")
        value = PLACEHOLDER.sub(lambda match: expand(match.group(1), (*chain, name)), raw[name])
        resolved[name] = value
        return value

    for name in raw:
        expand(name, ())
    return resolved


def substitute(value: Any, variables: Mapping[str, str], where: str) -> Any:
    """Every `{NAME}` in every string of a JSON value replaced; an unknown name is an error."""
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise UsageError(f"{where}: unknown variable '{{{name}}}' (known: {', '.join(sorted(variables))})")
            return variables[name]
        return PLACEHOLDER.sub(replace, value)
    if isinstance(value, Mapping):
        return {key: substitute(item, variables, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(item, variables, f"{where}.{index}") for index, item in enumerate(value)]
    return value


def _checked(kind: str, args: dict[str, Any], where: str) -> dict[str, Any]:
    """Values that reach Kubernetes as images or as argv words get a last sanity check after substitution."""
    if kind in ("set_image", "job"):
        image = str(args.get("image", ""))
        if not IMAGE_REFERENCE.fullmatch(image):
            raise UsageError(f"{where}.image: '{image}' is not an image reference")
    return args


def _workspace(catalog: Catalog) -> str:
    return str(catalog.source.parent.resolve()) if catalog.source is not None else str(Path.cwd())


def plan_deploy(catalog: Catalog, service: str, env: str, version: str) -> Plan:
    """Validate, order, substitute: the exact plan of `deploy <service> <env> <version>`."""
    definition = catalog.service(service)
    environment = catalog.environment(env)
    validate_version(catalog, service, version)
    if not definition.image:
        raise UsageError(f"service {service} has no `image` in the catalog, so there is nothing to deploy")
    pipeline_name = definition.pipeline or DEFAULT_PIPELINE_NAME
    pipeline = catalog.pipelines[definition.pipeline] if definition.pipeline else DEFAULT_PIPELINE
    workload = workload_of(catalog, service, env)
    builtins = {"service": service, "env": env, "version": version, "image": definition.image,
                "namespace": workload.namespace, "deployment": workload.deployment,
                "container": workload.container}
    order = target_order(pipeline, pipeline.goal)
    steps: list[PlannedStep] = []
    variables: dict[str, str] = {}
    for name in order:
        target = pipeline.targets[name]
        variables = resolve_variables([pipeline.vars, environment.vars, target.vars], builtins)
        for index, step in enumerate(target.steps):
            where = f"pipelines.{pipeline_name}.targets.{name}.steps.{index}.{step.kind}"
            spec = step.spec.model_dump(mode="json", exclude_none=True)
            args = _checked(step.kind, substitute(spec, variables, where), where)
            steps.append(PlannedStep(target=name, kind=step.kind, args=args,
                                     rollback_on_failure=target.on_failure == "rollback"))
    image = next((str(step.args["image"]) for step in steps if step.kind == "set_image"),
                 f"{definition.image}:{version}")
    return Plan(action="deploy", service=service, env=env, version=version, workload=workload, image=image,
                pipeline=pipeline_name, targets=tuple(order), steps=tuple(steps),
                variables=resolve_variables([pipeline.vars, environment.vars], builtins),
                workspace=_workspace(catalog))


def plan_rollback(catalog: Catalog, service: str, env: str, revision: int = 0,
                  timeout: float = ROLLBACK_TIMEOUT) -> Plan:
    """`kubectl rollout undo` (to `revision`, or the previous one) and wait for that rollout."""
    catalog.environment(env)
    workload = workload_of(catalog, service, env)
    steps = (
        PlannedStep(target=ROLLBACK_TARGET, kind="undo", args={"revision": revision}, rollback_on_failure=False),
        PlannedStep(target=ROLLBACK_TARGET, kind="wait_rollout", args={"timeout": timeout},
                    rollback_on_failure=False),
    )
    return Plan(action="rollback", service=service, env=env, version=str(revision or ""), workload=workload,
                image="", pipeline="(rollback)", targets=(ROLLBACK_TARGET,), steps=steps, variables={},
                workspace=_workspace(catalog))


