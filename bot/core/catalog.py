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
from collections.abc import Callable
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

from bot.core.catalog_checks import (
    NAME_PATTERN,
    check_references,
    check_yaml_shape,
    dedupe,
    describe_validation_error,
    shown,
)
from bot.core.errors import CatalogError, NotFound

VAR_PATTERN = r"^[A-Z][A-Z0-9_]{0,62}$"
DEFAULT_VERSION_PATTERN = r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$"
DEFAULT_SECRET_KEY_PATTERNS = (
    "password", "passwd", "secret", "token", "api_?key", "credential", "private", "dsn",
)
# The catalog's verb list: the verbs access rules may name (a new verb adds its name here). approve, reject
# and cancel are governed by the request itself, help by nobody.
RuleVerb = Literal["status", "probe", "logs", "trace", "diff", "deploy", "rollback", "history",
                   "metrics", "watch", "unwatch", "watches"]
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
            written = shown(value.strip(), 24)
        else:
            written = f"{seconds:g} seconds" if math.isfinite(seconds) else "that many seconds"
        raise ValueError(f"{written} is longer than this key allows (at most {show_duration(maximum)})")
    return seconds


def _duration_at_most(maximum: float) -> Callable[[object], float]:
    def parse(value: object) -> float:
        return parse_duration(value, maximum)
    return parse


CommandDeadline = Annotated[float, BeforeValidator(_duration_at_most(MAX_COMMAND_DEADLINE))]
LokiTimeout = Annotated[float, BeforeValidator(_duration_at_most(MAX_LOKI_TIMEOUT))]
ApprovalExpiry = Annotated[float, BeforeValidator(_duration_at_most(MAX_APPROVAL_EXPIRES))]
StepDuration = Annotated[float, BeforeValidator(_duration_at_most(MAX_STEP_TIMEOUT))]
MAX_WATCH_DURATION = 86400.0  # every watch: threshold: 24h
WatchDuration = Annotated[float, BeforeValidator(_duration_at_most(MAX_WATCH_DURATION))]


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


LabelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_:][A-Za-z0-9_:]*$")]
EnvPrefix = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,62}$")]


class PrometheusLabels(_Model):
    """The label names the scrape configuration gives every series (`cluster` only for a shared Prometheus)."""

    namespace: LabelName = "namespace"
    service: LabelName = "app"
    pod: LabelName = "pod"
    cluster: LabelName | None = None


class Prometheus(_Model):
    """A Prometheus (or a compatible API: Thanos, Mimir, VictoriaMetrics) svcbot reads metrics from.

    Credentials come from the environment, never the catalog: `<auth_env>_USER` + `<auth_env>_PASSWORD`
    (basic), `<auth_env>_USER` + `<auth_env>_TOKEN` (basic with a token), or `<auth_env>_TOKEN` (bearer)."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://")]
    tenant: str | None = None  # sent as X-Scope-OrgID (Mimir, Cortex, Thanos receive)
    timeout: LokiTimeout = 10.0
    labels: PrometheusLabels = PrometheusLabels()
    auth_env: EnvPrefix = "SVCBOT_PROMETHEUS"


class Cluster(_Model):
    context: str | None = None
    in_cluster: bool = False
    prometheus: Prometheus | None = None  # this cluster's own Prometheus (else the catalog's global one)


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


class ServiceMetrics(_Model):
    """The metric names a service exposes; the defaults follow Prometheus' client libraries and Go's runtime."""

    requests: MetricName = "http_requests_total"  # a counter with a status-code label
    code_label: LabelName = "code"
    duration: MetricName = "http_request_duration_seconds"  # a histogram (_bucket with le)
    cpu: MetricName = "process_cpu_seconds_total"
    memory: MetricName = "process_resident_memory_bytes"
    heap: MetricName = "go_memstats_heap_inuse_bytes"
    gomemlimit: MetricName = "go_gc_gomemlimit_bytes"
    goroutines: MetricName = "go_goroutines"


class Service(_Model):
    metrics: ServiceMetrics = ServiceMetrics()
    deployment: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] | None = None
    container: Name = "app"
    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$")] | None = None
    version_pattern: str = DEFAULT_VERSION_PATTERN
    health: Health = Health()
    config: ConfigSource | None = None
    pipeline: Name | None = None


class Watch(_Model):
    """`watch:` what counts as an incident for /svc watch (bot/watch/), and how its messages behave.

    Defaults are what a team without opinions gets: a crash loop once a container restarted 3 times, readiness
    failing for 2 minutes, fewer available replicas than needed for 2 minutes, an HPA at its maximum for 10
    minutes; an incident resolves once its trouble has been gone for a minute, and one that comes back within
    15 minutes re-opens in its thread; a message is updated at most every 5 seconds."""

    crash_loop_restarts: Annotated[int, Field(ge=1, le=1000)] = 3
    readiness_failing: WatchDuration = 120.0
    replicas_below: WatchDuration = 120.0
    hpa_at_max: WatchDuration = 600.0
    reopen_window: WatchDuration = 900.0
    resolve_after: WatchDuration = 60.0  # how long trouble must be gone before its incident is resolved
    update_every: WatchDuration = 5.0
    after_deploy: WatchDuration = 30.0  # how long trouble must outlive a svcbot deploy run before it is an incident
    storm: Annotated[int, Field(ge=2, le=1000)] = 3  # services with one kind of trouble in one env: one incident
    group_wait: Annotated[float, BeforeValidator(_duration_at_most(MAX_WATCH_DURATION))] = 2.0  # gather a storm
    cluster_gone: WatchDuration = 60.0  # a cluster none of whose streams answers this long: one incident


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


VERIFY_CHECK = re.compile(r"^\s*(error_rate|p50|p90|p99)\s*(<=|<)\s*(\d+(?:\.\d+)?)\s*(%|ms|s)\s*$")


def parse_verify_check(text: object) -> tuple[str, str, float]:
    """'error_rate <= 1%' -> ('error_rate', '<=', 0.01); 'p99 <= 500ms' -> ('p99', '<=', 0.5)."""
    match = VERIFY_CHECK.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{shown(str(text), 60)!r} is not a check (use e.g. 'error_rate <= 1%' or 'p99 <= 500ms'; "
                         "metrics: error_rate, p50, p90, p99)")
    metric, op, number, unit = match.groups()
    value = float(number)
    if metric == "error_rate":
        if unit != "%":
            raise ValueError(f"{text!r}: an error rate is a percentage (e.g. 'error_rate <= 1%')")
        return metric, op, value / 100
    if unit == "%":
        raise ValueError(f"{text!r}: a latency is a duration (e.g. 'p99 <= 500ms')")
    return metric, op, value / 1000 if unit == "ms" else value


def _verify_check(value: object) -> str:
    parse_verify_check(value)
    assert isinstance(value, str)
    return " ".join(value.split())


VerifyCheck = Annotated[str, BeforeValidator(_verify_check)]


class VerifyStep(_Model):
    """Checks on the new version's metrics, every `interval` for `duration`; `failures` failed checks fail it."""

    checks: tuple[VerifyCheck, ...] = Field(min_length=1)
    interval: StepDuration = 30.0
    duration: StepDuration = 300.0
    failures: Annotated[int, Field(ge=1, le=100)] = 2
    window: StepDuration = 60.0  # the rate window of each evaluation
    baseline: StepDuration = 300.0  # the old version's window before the image changed


class Step(_Model):
    """Exactly one of the step kinds."""

    run: RunStep | None = None
    make: MakeStep | None = None
    set_image: SetImageStep | None = None
    wait_rollout: WaitRolloutStep | None = None
    probe: ProbeStep | None = None
    job: JobStep | None = None
    http: HttpStep | None = None
    verify: VerifyStep | None = None

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


STEP_KINDS = ("run", "make", "set_image", "wait_rollout", "probe", "job", "http", "verify")


class Target(_Model):
    needs: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    on_failure: Literal["rollback"] | None = None
    vars: dict[VarName, StrValue] = {}  # target-specific variables, like `deploy-prod: ENV = prod`


class Pipeline(_Model):
    vars: dict[VarName, StrValue] = {}
    targets: dict[str, Target]
    goal: str




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
    prometheus: Prometheus | None = None  # one Prometheus for every cluster (labels.cluster tells them apart)
    secrets: Secrets = Secrets()
    terminal: Terminal = Terminal()
    services: dict[Name, Service]
    access: Access = Access()
    pipelines: dict[Name, Pipeline] = {}
    watch: Watch = Watch()

    # The file this catalog came from (for relative config dirs); not a YAML key.
    source: Path | None = Field(default=None, exclude=True)

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise NotFound(f"unknown service '{shown(name)}' (known: {', '.join(sorted(self.services))})"
                           f"{lookalike_note(name)}") from None

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise NotFound(f"unknown environment '{shown(name)}' (known: {known}){lookalike_note(name)}") from None

    def prometheus_for(self, cluster: str) -> tuple[Prometheus, str | None] | None:
        """The Prometheus holding a cluster's metrics and the `cluster` label value to match (None: the
        cluster has its own Prometheus, or the global one has no cluster label); None when none is configured."""
        spec = self.clusters.get(cluster)
        if spec is not None and spec.prometheus is not None:
            own = spec.prometheus
            return own, (cluster if own.labels.cluster else None)
        if self.prometheus is not None:
            return self.prometheus, (cluster if self.prometheus.labels.cluster else None)
        return None

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
        problems.extend(describe_validation_error(exc))
    problems.extend(check_references(raw))
    if problems:
        raise CatalogError(dedupe(problems))
    assert catalog is not None
    return catalog.model_copy(update={"source": source})


def missing_profile_dirs(catalog: Catalog) -> list[str]:
    """Services whose configuration-profile directory does not exist, each with its YAML path.

    A warning in `svcbot check` (CI may check a catalog whose profiles exist only in the pod), an error
    when `svcbot serve` starts."""
    problems = []
    for name, service in catalog.services.items():
        path = catalog.config_dir(name)
        if service.config is not None and path is not None and not path.is_dir():
            problems.append(f"services.{name}.config.dir: '{shown(service.config.dir, 80)}' is not a "
                            f"directory (looked at {path})")
    return problems
