"""The catalog: one YAML file describing clusters, environments, services, access rules and pipelines.

Loaded once at start-up into frozen pydantic models. Validation happens in two passes so that every
problem is reported at once, each with its YAML path:

1. structure (pydantic, unknown keys forbidden, strict names), and
2. references between sections (a service naming an unknown pipeline, a rule naming an unknown group...),
   checked on the raw mapping so it still runs when pass 1 found problems elsewhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from bot.core.errors import CatalogError, NotFound

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
VAR_PATTERN = r"^[A-Z][A-Z0-9_]{0,62}$"
DEFAULT_VERSION_PATTERN = r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$"
DEFAULT_SECRET_KEY_PATTERNS = (
    "password", "passwd", "secret", "token", "api_?key", "credential", "private", "dsn",
)
# The catalog's verb list: the verbs access rules may name (a new verb adds its name here). approve, reject
# and cancel are governed by the request itself, help by nobody.
RuleVerb = Literal["status", "probe", "logs", "trace", "diff", "deploy", "rollback", "history"]
GATED_VERBS = ("deploy", "rollback")
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
VarName = Annotated[str, StringConstraints(pattern=VAR_PATTERN)]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """'20s', '10m', '1.5h', '2d', '250ms' or a number of seconds -> seconds (float, > 0)."""
    if isinstance(value, bool):
        raise ValueError("a duration like 30s, 10m, 1h or 2d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 1h, 2d)")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _stringify(value: object) -> object:
    """YAML turns `3` into an int; catalog variables are strings."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


StrValue = Annotated[str, BeforeValidator(_stringify)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class RateLimit(_Model):
    per_user: Annotated[str, StringConstraints(pattern=r"^\d+/(s|sec|min|m|h|hour)$")] = "20/min"

    @property
    def per_user_window(self) -> tuple[int, float]:
        """(count, window seconds) of `per_user`."""
        count, unit = self.per_user.split("/")
        window = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "hour": 3600.0}[unit]
        return int(count), window


class Settings(_Model):
    default_env: Name = "prod"
    command_deadline: Duration = 20.0
    rate_limit: RateLimit = RateLimit()
    approvals_channel: str | None = None
    # A Monday incident is 200 `/svc status payment` from 50 people at once: 16 workers (commands mostly wait
    # on backends; the lanes bound what reaches each one) and a line of 500 answer it in full, acks first
    # (bench/ack_bench.py with these defaults). A queued command costs a closure, not a thread.
    workers: Annotated[int, Field(ge=1, le=64)] = 16
    queue_limit: Annotated[int, Field(ge=1, le=10_000)] = 500


class Cluster(_Model):
    context: str | None = None
    in_cluster: bool = False


class Environment(_Model):
    cluster: Name
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    protected: bool = False
    vars: dict[VarName, StrValue] = {}


class LokiLabels(_Model):
    namespace: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "namespace"
    service: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "app"


class Loki(_Model):
    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    tenant: str | None = None
    labels: LokiLabels = LokiLabels()
    grafana_url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    datasource_uid: str | None = None
    timeout: Duration = 10.0


class Secrets(_Model):
    key_patterns: tuple[str, ...] = DEFAULT_SECRET_KEY_PATTERNS


class Terminal(_Model):
    allow_as: bool = False
    users: dict[str, str] = {}  # OS user -> Slack user id


class Health(_Model):
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    liveness: Annotated[str, StringConstraints(pattern=r"^/[^\s]*$")] = "/healthz"
    readiness: Annotated[str, StringConstraints(pattern=r"^/[^\s]*$")] = "/readyz"


class ConfigSource(_Model):
    dir: str
    pattern: Annotated[str, StringConstraints(pattern=r"\{profile\}")] = "application-{profile}.yaml"
    ref: str | None = None


class Service(_Model):
    deployment: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] | None = None
    container: Name = "app"
    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$")] | None = None
    version_pattern: str = DEFAULT_VERSION_PATTERN
    health: Health = Health()
    config: ConfigSource | None = None
    pipeline: Name | None = None


class Approval(_Model):
    approvers: tuple[str, ...]
    quorum: Annotated[int, Field(ge=1, le=10)] = 1
    self_approval: bool = False
    expires: Duration = 1800.0


class Rule(_Model):
    verbs: tuple[RuleVerb, ...] = Field(min_length=1)
    envs: tuple[str, ...] = ("*",)
    who: tuple[str, ...] = ("*",)
    approval: Approval | None = None


class Access(_Model):
    groups: dict[Name, tuple[str, ...]] = {}
    rules: tuple[Rule, ...] = ()


# --- pipelines: a team's Makefile as data -------------------------------------------------------------

class RunStep(_Model):
    argv: tuple[str, ...] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, StrValue] = {}
    timeout: Duration = 600.0


class MakeStep(_Model):
    target: str
    dir: str
    vars: dict[VarName, StrValue] = {}
    timeout: Duration = 600.0


class SetImageStep(_Model):
    image: str
    container: Name | None = None


class WaitRolloutStep(_Model):
    timeout: Duration = 600.0
    unready_for: Duration = 120.0  # new pods failing readiness this long fail the step (steps/wait_rollout.py)


class ProbeStep(_Model):
    timeout: Duration = 60.0
    path: Annotated[str, StringConstraints(pattern=r"^/[^\s]*$")] | None = None  # default: health.readiness
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default: health.port


class JobStep(_Model):
    image: str
    command: tuple[str, ...] = ()
    env: dict[str, StrValue] = {}
    timeout: Duration = 600.0


class HttpStep(_Model):
    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    method: Literal["GET", "POST", "PUT"] = "POST"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    headers: dict[str, str] = {}
    body: dict[str, Any] | None = None
    timeout: Duration = 30.0


class Step(_Model):
    """Exactly one of the step kinds."""

    run: RunStep | None = None
    make: MakeStep | None = None
    set_image: SetImageStep | None = None
    wait_rollout: WaitRolloutStep | None = None
    probe: ProbeStep | None = None
    job: JobStep | None = None
    http: HttpStep | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Step:
        kinds = [name for name in STEP_KINDS if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)} (found: {', '.join(kinds) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in STEP_KINDS if getattr(self, name) is not None)

    @property
    def spec(self) -> _Model:
        spec = getattr(self, self.kind)
        assert isinstance(spec, _Model)
        return spec


STEP_KINDS = ("run", "make", "set_image", "wait_rollout", "probe", "job", "http")


class Target(_Model):
    needs: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    on_failure: Literal["rollback"] | None = None
    vars: dict[VarName, StrValue] = {}  # target-specific variables, like `deploy-prod: ENV = prod`


class Pipeline(_Model):
    vars: dict[VarName, StrValue] = {}
    targets: dict[str, Target]
    goal: str


def _shown(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def lookalike_note(text: str) -> str:
    """'; it holds a character that is not plain ASCII and may only look like it: 'а' (U+0430 CYRILLIC SMALL
    LETTER A)' for
    names typed with a look-alike (a Cyrillic a in `pаyment` reads exactly like `payment`); '' otherwise."""
    odd = [char for char in dict.fromkeys(text) if not char.isascii()]
    if not odd:
        return ""
    described = ", ".join(f"'{char}' (U+{ord(char):04X} {unicodedata.name(char, 'unnamed')})" for char in odd[:3])
    what = "a character that is" if len(odd) == 1 else "characters that are"
    return f"; it holds {what} not plain ASCII and may only look like it: {described}"


class Catalog(_Model):
    settings: Settings = Settings()
    clusters: dict[Name, Cluster]
    environments: dict[Name, Environment]
    loki: Loki | None = None
    secrets: Secrets = Secrets()
    terminal: Terminal = Terminal()
    services: dict[Name, Service]
    access: Access = Access()
    pipelines: dict[Name, Pipeline] = {}

    # The file this catalog came from (for relative config dirs); not a YAML key.
    source: Path | None = Field(default=None, exclude=True)

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise NotFound(f"unknown service '{_shown(name)}' (known: {', '.join(sorted(self.services))})"
                           f"{lookalike_note(name)}") from None

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise NotFound(f"unknown environment '{_shown(name)}' (known: {known}){lookalike_note(name)}") from None

    def deployment_name(self, service: str) -> str:
        return self.service(service).deployment or service

    def config_dir(self, service: str) -> Path | None:
        """The service's profile directory, relative paths taken from the catalog file's folder."""
        config = self.service(service).config
        if config is None:
            return None
        path = Path(config.dir).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path


# --- loading and validation -----------------------------------------------------------------------------

def load_catalog(path: str | Path) -> Catalog:
    """Read, validate and freeze a catalog file; raise CatalogError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([f"{path}: cannot read the catalog ({exc.strerror or exc})"]) from exc
    return parse_catalog(text, source=path)


def parse_catalog(text: str, source: Path | None = None) -> Catalog:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CatalogError([f"{source or 'catalog'}: YAML syntax error{where}: {problem}"]) from exc
    if not isinstance(raw, dict):
        raise CatalogError(["(top level): the catalog must be a mapping with clusters, environments, services"])
    problems: list[str] = []
    catalog: Catalog | None = None
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe_validation_error(exc))
    problems.extend(check_references(raw))
    if problems:
        raise CatalogError(_dedupe(problems))
    assert catalog is not None
    return catalog.model_copy(update={"source": source})


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _describe_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        # Union members (e.g. `str | None`) add their type name to the location; drop those.
        loc = [part for part in loc if part not in {"str", "float", "int", "constrained-str", "none", "[key]"}]
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(f"{'.'.join(loc)}: unknown key '{loc[-1]}'")
            continue
        where = ".".join(loc) or "(top level)"
        if kind == "missing":
            problems.append(f"{where}: required key is missing")
        elif kind == "string_pattern_mismatch":
            pattern = error.get("ctx", {}).get("pattern", "")
            problems.append(f"{where}: {error['input']!r} does not match {pattern}")
        elif kind == "literal_error":
            problems.append(f"{where}: {error['input']!r} is not allowed ({error['ctx']['expected']})")
        elif kind == "value_error":
            problems.append(f"{where}: {error['ctx']['error']}")
        else:
            problems.append(f"{where}: {error['msg']}")
    return problems


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _known(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "none defined"


def check_references(raw: Mapping[str, Any]) -> list[str]:
    """Cross-section checks on the raw mapping (tolerates wrong types: those are pass 1's job)."""
    problems: list[str] = []
    clusters = _mapping(raw.get("clusters"))
    envs = _mapping(raw.get("environments"))
    services = _mapping(raw.get("services"))
    pipelines = _mapping(raw.get("pipelines"))
    access = _mapping(raw.get("access"))
    groups = _mapping(access.get("groups"))
    settings = _mapping(raw.get("settings"))

    default_env = settings.get("default_env", "prod")
    if isinstance(default_env, str) and envs and default_env not in envs:
        problems.append(f"settings.default_env: unknown environment '{default_env}' (known: {_known(envs)})")

    for name, cluster in clusters.items():
        cluster = _mapping(cluster)
        has_context = bool(cluster.get("context"))
        if has_context == bool(cluster.get("in_cluster")):
            problems.append(f"clusters.{name}: set exactly one of context or in_cluster: true")

    namespaces: dict[tuple[object, object], str] = {}
    for name, env in envs.items():
        env = _mapping(env)
        cluster = env.get("cluster")
        if isinstance(cluster, str) and cluster not in clusters:
            problems.append(f"environments.{name}.cluster: unknown cluster '{cluster}' (known: {_known(clusters)})")
        key = (cluster, env.get("namespace"))
        if key in namespaces:
            problems.append(
                f"environments.{name}.namespace: '{key[1]}' on cluster '{cluster}' is already "
                f"environment '{namespaces[key]}'"
            )
        namespaces[key] = name

    for name, service in services.items():
        service = _mapping(service)
        pipeline = service.get("pipeline")
        if isinstance(pipeline, str) and pipeline not in pipelines:
            problems.append(
                f"services.{name}.pipeline: unknown pipeline '{pipeline}' (known: {_known(pipelines)})"
            )
        pattern = service.get("version_pattern")
        if isinstance(pattern, str):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                problems.append(f"services.{name}.version_pattern: not a valid regular expression ({exc})")
            else:
                if not (pattern.startswith("^") and pattern.endswith("$")):
                    problems.append(f"services.{name}.version_pattern: must be anchored with ^ and $")
                elif compiled.match("1.0;rm -rf /") or compiled.match("$(id)") or compiled.match("a b"):
                    problems.append(
                        f"services.{name}.version_pattern: admits shell metacharacters or spaces; "
                        "allow only letters, digits, '.', '_', '+' and '-'"
                    )
        if pipeline is not None and not service.get("image"):
            problems.append(f"services.{name}.image: required when the service has a pipeline")

    secrets = _mapping(raw.get("secrets"))
    patterns = secrets.get("key_patterns")
    for index, pattern in enumerate(patterns if isinstance(patterns, list) else []):
        try:
            re.compile(str(pattern))
        except re.error as exc:
            problems.append(f"secrets.key_patterns.{index}: not a valid regular expression ({exc})")

    problems.extend(_check_rules(access.get("rules"), groups, envs))
    for name, pipeline in pipelines.items():
        problems.extend(check_pipeline(f"pipelines.{name}", _mapping(pipeline), envs))
    return problems


def _check_rules(rules: object, groups: Mapping[str, Any], envs: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if not isinstance(rules, list):
        return problems
    gated: dict[str, list[bool]] = {}
    for index, rule in enumerate(rules):
        rule = _mapping(rule)
        where = f"access.rules.{index}"
        for position, who in enumerate(rule.get("who") or []):
            if isinstance(who, str) and not _is_principal(who) and who not in groups:
                problems.append(f"{where}.who.{position}: unknown group '{who}' (known: {_known(groups)})")
        rule_envs = [env for env in (rule.get("envs") or ["*"]) if isinstance(env, str)]
        for position, env in enumerate(rule_envs):
            if env != "*" and env not in envs:
                problems.append(f"{where}.envs.{position}: unknown environment '{env}' (known: {_known(envs)})")
        approval = _mapping(rule.get("approval"))
        for position, who in enumerate(approval.get("approvers") or []):
            if isinstance(who, str) and not _is_principal(who) and who not in groups:
                problems.append(
                    f"{where}.approval.approvers.{position}: unknown group '{who}' (known: {_known(groups)})"
                )
        verbs = [verb for verb in (rule.get("verbs") or []) if isinstance(verb, str)]
        if approval and not set(verbs) <= set(GATED_VERBS):
            problems.append(f"{where}.approval: approval applies only to deploy and rollback rules")
        if any(verb in GATED_VERBS for verb in verbs):
            covered = list(envs) if "*" in rule_envs else rule_envs
            for env in covered:
                gated.setdefault(env, []).append(bool(approval))
    for env, definition in envs.items():
        if _mapping(definition).get("protected") and not all(gated.get(env, [True])):
            problems.append(
                f"environments.{env}.protected: every deploy/rollback rule that names '{env}' "
                "needs an approval block"
            )
    return problems


def _is_principal(who: str) -> bool:
    """'*', a Slack user id (U..., W...) or a Slack user group id (S...)."""
    return who == "*" or re.fullmatch(r"[UWS][A-Z0-9]{2,}", who) is not None


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN_VARS = ("service", "env", "version", "image", "namespace", "deployment", "container")


def check_pipeline(where: str, pipeline: Mapping[str, Any], envs: Mapping[str, Any]) -> list[str]:
    """Unknown targets, cycles, a missing goal, and placeholders naming unknown variables."""
    problems: list[str] = []
    targets = _mapping(pipeline.get("targets"))
    goal = pipeline.get("goal")
    if isinstance(goal, str) and goal not in targets:
        problems.append(f"{where}.goal: unknown target '{goal}' (known: {_known(targets)})")
    for name, target in targets.items():
        for index, need in enumerate(_mapping(target).get("needs") or []):
            if need not in targets:
                problems.append(
                    f"{where}.targets.{name}.needs.{index}: unknown target '{need}' (known: {_known(targets)})"
                )
    for cycle in _find_cycles(targets):
        problems.append(f"{where}.targets: dependency cycle {' -> '.join(cycle)}")

    known_vars = set(BUILTIN_VARS) | set(_mapping(pipeline.get("vars")))
    for env in envs.values():
        known_vars |= set(_mapping(_mapping(env).get("vars")))
    for name, target in targets.items():
        target_vars = known_vars | set(_mapping(_mapping(target).get("vars")))
        for path, text in _strings(_mapping(target), f"{where}.targets.{name}"):
            for var in _PLACEHOLDER.findall(text):
                if var not in target_vars:
                    problems.append(f"{path}: unknown variable '{{{var}}}' (known: {', '.join(sorted(target_vars))})")
    return problems


def _find_cycles(targets: Mapping[str, Any]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for need in _mapping(targets.get(node)).get("needs") or []:
            if need not in targets:
                continue
            if state.get(need) == 1:
                cycles.append([*stack[stack.index(need):], need])
            elif need not in state:
                visit(need, [*stack, need])
        state[node] = 2

    for node in targets:
        if node not in state:
            visit(node, [node])
    return cycles


def _strings(value: object, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")
