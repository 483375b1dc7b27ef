"""The catalog: one YAML file describing clusters, environments, services, access rules and pipelines.

Loaded once at start-up into frozen pydantic models. Validation happens in two passes so that every
problem is reported at once, each with its YAML path:

1. structure (pydantic, unknown keys forbidden, strict names), and
2. references between sections (a service naming an unknown pipeline, a rule naming an unknown group...),
   checked on the raw mapping so it still runs when pass 1 found problems elsewhere.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
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
# The most any duration key may say, whatever its own maximum: far below what Python's clocks, waits and
# timedeltas overflow on (`99999999999d` used to load, then every command failed with OverflowError).
MAX_DURATION = 366 * 86400.0
# Each duration key's own maximum (docs/design-notes.md lists them): longer is a mistake, not a wish.
MAX_COMMAND_DEADLINE = 600.0  # settings.command_deadline: 10m (Slack's response_url lives 30 minutes)
MAX_LOKI_TIMEOUT = 600.0  # loki.timeout: 10m (cut to the command deadline anyway)
MAX_APPROVAL_EXPIRES = 7 * 86400.0  # access.rules.*.approval.expires: 7d
MAX_STEP_TIMEOUT = 86400.0  # every step's timeout and wait_rollout.unready_for: 24h


def show_duration(seconds: float) -> str:
    """600.0 -> '10m', 7200.0 -> '2h', 604800.0 -> '7d' (the largest unit that divides it)."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_duration(value: object, maximum: float = MAX_DURATION) -> float:
    """'20s', '10m', '1.5h', '2d', '250ms' or a number of seconds -> seconds (float, > 0, <= maximum)."""
    if isinstance(value, bool):
        raise ValueError("a duration like 30s, 10m, 1h or 2d")
    try:
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
        else:
            raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 1h, 2d)")
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if math.isnan(seconds):
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 10m, 1h, 2d)")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    if seconds > maximum:
        if isinstance(value, str):
            shown = _shown(value.strip(), 24)
        else:
            shown = f"{seconds:g} seconds" if math.isfinite(seconds) else "that many seconds"
        raise ValueError(f"{shown} is longer than this key allows (at most {show_duration(maximum)})")
    return seconds


def _duration_at_most(maximum: float) -> Callable[[object], float]:
    def parse(value: object) -> float:
        return parse_duration(value, maximum)
    return parse


CommandDeadline = Annotated[float, BeforeValidator(_duration_at_most(MAX_COMMAND_DEADLINE))]
LokiTimeout = Annotated[float, BeforeValidator(_duration_at_most(MAX_LOKI_TIMEOUT))]
ApprovalExpiry = Annotated[float, BeforeValidator(_duration_at_most(MAX_APPROVAL_EXPIRES))]
StepDuration = Annotated[float, BeforeValidator(_duration_at_most(MAX_STEP_TIMEOUT))]


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
    command_deadline: CommandDeadline = 20.0
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
    timeout: LokiTimeout = 10.0


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
    expires: ApprovalExpiry = 1800.0


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
    timeout: StepDuration = 600.0


class MakeStep(_Model):
    target: str
    dir: str
    vars: dict[VarName, StrValue] = {}
    timeout: StepDuration = 600.0


class SetImageStep(_Model):
    image: str
    container: Name | None = None


class WaitRolloutStep(_Model):
    timeout: StepDuration = 600.0
    unready_for: StepDuration = 120.0  # new pods failing readiness this long fail the step (steps/wait_rollout.py)


class ProbeStep(_Model):
    timeout: StepDuration = 60.0
    path: Annotated[str, StringConstraints(pattern=r"^/[^\s]*$")] | None = None  # default: health.readiness
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default: health.port


class JobStep(_Model):
    image: str
    command: tuple[str, ...] = ()
    env: dict[str, StrValue] = {}
    timeout: StepDuration = 600.0


class HttpStep(_Model):
    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    method: Literal["GET", "POST", "PUT"] = "POST"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    headers: dict[str, str] = {}
    body: dict[str, Any] | None = None
    timeout: StepDuration = 30.0


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


MAX_DEPTH = 20  # levels of nesting in a catalog file; the deepest key the models define is 8 levels down


def parse_catalog(text: str, source: Path | None = None) -> Catalog:
    try:
        problems = check_yaml_shape(text)
        if problems:
            raise CatalogError(problems)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise CatalogError([f"{source or 'catalog'}: YAML syntax error{where}: {problem}"]) from exc
    if not isinstance(raw, dict):
        raise CatalogError(["(top level): the catalog must be a mapping with clusters, environments, services"])
    problems = []
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


class _Node:
    """One open mapping or sequence while the YAML events are read: its path, and what comes next in it."""

    __slots__ = ("expect_key", "index", "is_mapping", "key", "keys", "path")

    def __init__(self, path: str, is_mapping: bool) -> None:
        self.path = path
        self.is_mapping = is_mapping
        self.keys: dict[str, int] = {}  # key -> line it was first seen on
        self.expect_key = True
        self.key = "?"
        self.index = 0

    def child(self) -> str:
        part = self.key if self.is_mapping else str(self.index)
        return f"{self.path}.{part}" if self.path else part

    def done_child(self) -> None:
        if self.is_mapping:
            self.expect_key = not self.expect_key
        else:
            self.index += 1


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def check_yaml_shape(text: str) -> list[str]:
    """Duplicate keys at any level and nesting deeper than MAX_DEPTH, each with its YAML path.

    Read from the parser's events, without building anything: PyYAML keeps the later of two equal keys
    silently, and builds nested nodes recursively (a deep document was a RecursionError traceback)."""
    problems: list[str] = []
    stack: list[_Node] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
            if stack:
                stack[-1].done_child()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        parent = stack[-1] if stack else None
        as_key = parent is not None and parent.is_mapping and parent.expect_key
        if as_key and parent is not None:
            key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
            line = _line(event)
            if isinstance(event, yaml.ScalarEvent) and key != "<<":
                if key in parent.keys:
                    where = f"{parent.path}.{_shown(key)}" if parent.path else _shown(key)
                    problems.append(f"{where}: duplicate key '{_shown(key)}' (line {line}; first on line "
                                    f"{parent.keys[key]}): YAML keeps only the later one")
                else:
                    parent.keys[key] = line
            parent.key = _shown(key)
        path = parent.child() if parent is not None and not as_key else (parent.path if parent else "")
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(stack) >= MAX_DEPTH:
                problems.append(f"{path or '(top level)'}: nested deeper than {MAX_DEPTH} levels "
                                f"(line {_line(event)})")
                return problems
            stack.append(_Node(path, isinstance(event, yaml.MappingStartEvent)))
        elif parent is not None:
            parent.done_child()
    return problems


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

    problems.extend(_check_groups(groups, _mapping(raw.get("terminal"))))
    problems.extend(_check_rules(access.get("rules"), groups, envs))
    for name, pipeline in pipelines.items():
        problems.extend(check_pipeline(f"pipelines.{name}", _mapping(pipeline), envs))
    return problems


PRINCIPALS = ("catalog group names (access.groups), Slack user ids (U…, W…), Slack user group ids (S…) "
              "or '*' (everyone)")


def _principal_problem(where: str, who: object, groups: Mapping[str, Any], *, star: bool = True) -> str | None:
    """Why an entry of who/approvers/a group is not a user, a group or '*' (None when it is one)."""
    if not isinstance(who, str):
        return None  # a wrong type: pass 1 says so
    if who in groups or (_is_principal(who) and (star or who != "*")):
        return None
    allowed = PRINCIPALS if star else PRINCIPALS.replace(" or '*' (everyone)", "")
    if re.fullmatch(NAME_PATTERN, who):
        return f"{where}: unknown group '{_shown(who)}' (known: {_known(groups)}); entries are {allowed}"
    return f"{where}: '{_shown(who)}' is not a Slack user or group id; entries are {allowed}"


def _check_groups(groups: Mapping[str, Any], terminal: Mapping[str, Any]) -> list[str]:
    """Group members are users, Slack user groups or other groups (no cycles); terminal users map to user ids."""
    problems: list[str] = []
    for name, members in groups.items():
        for position, member in enumerate(members if isinstance(members, list) else []):
            problem = _principal_problem(f"access.groups.{name}.{position}", member, groups, star=False)
            if problem:
                problems.append(problem)
    for cycle in _find_cycles({name: {"needs": [m for m in members if isinstance(m, str) and m in groups]}
                               for name, members in groups.items() if isinstance(members, list)}):
        problems.append(f"access.groups: groups contain each other in a cycle {' -> '.join(cycle)}")
    for os_user, user_id in _mapping(terminal.get("users")).items():
        if isinstance(user_id, str) and not re.fullmatch(r"[UW][A-Z0-9]{2,}", user_id):
            problems.append(f"terminal.users.{os_user}: '{_shown(user_id)}' is not a Slack user id (U… or W…)")
    return problems


def _check_rules(rules: object, groups: Mapping[str, Any], envs: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if not isinstance(rules, list):
        return problems
    gated: dict[str, list[bool]] = {}
    for index, rule in enumerate(rules):
        rule = _mapping(rule)
        where = f"access.rules.{index}"
        who_list = rule.get("who")
        for position, who in enumerate(who_list if isinstance(who_list, list) else []):
            if problem := _principal_problem(f"{where}.who.{position}", who, groups):
                problems.append(problem)
        rule_envs = [env for env in (rule.get("envs") or ["*"]) if isinstance(env, str)]
        for position, env in enumerate(rule_envs):
            if env != "*" and env not in envs:
                problems.append(f"{where}.envs.{position}: unknown environment '{env}' (known: {_known(envs)})")
        approval = _mapping(rule.get("approval"))
        approvers = approval.get("approvers")
        for position, who in enumerate(approvers if isinstance(approvers, list) else []):
            if problem := _principal_problem(f"{where}.approval.approvers.{position}", who, groups):
                problems.append(problem)
        if isinstance(approvers, list) and not approvers:
            problems.append(f"{where}.approval.approvers: empty, so nobody could ever approve; name who may "
                            f"({PRINCIPALS})")
        elif isinstance(approvers, list) and all(isinstance(who, str) and who in groups
                                                 and not _group_has_members(who, groups) for who in approvers):
            problems.append(f"{where}.approval.approvers: every group named is empty, so nobody could ever "
                            "approve")
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


def _group_has_members(name: str, groups: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """Whether a catalog group stands for anyone: a user, a Slack user group, or a group that does."""
    members = groups.get(name)
    for member in members if isinstance(members, list) else []:
        if not isinstance(member, str):
            continue
        if member in groups:
            if member not in seen and _group_has_members(member, groups, seen | {name}):
                return True
        elif _is_principal(member):
            return True
    return False


def _is_principal(who: str) -> bool:
    """'*', a Slack user id (U..., W...) or a Slack user group id (S...)."""
    return who == "*" or re.fullmatch(r"[UWS][A-Z0-9]{2,}", who) is not None


def missing_profile_dirs(catalog: Catalog) -> list[str]:
    """Services whose configuration-profile directory does not exist, each with its YAML path.

    A warning in `svcbot check` (CI may check a catalog whose profiles exist only in the pod), an error
    when `svcbot serve` starts."""
    problems = []
    for name, service in catalog.services.items():
        path = catalog.config_dir(name)
        if service.config is not None and path is not None and not path.is_dir():
            problems.append(f"services.{name}.config.dir: '{_shown(service.config.dir, 80)}' is not a "
                            f"directory (looked at {path})")
    return problems


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
