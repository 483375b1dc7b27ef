"""Health-probe and Go-runtime checks, as pure functions over pod JSON and observed answers.

- `container_probes`: the liveness/readiness/startup probes of a container, with the kubelet's defaults.
- `dependency_checks`: the checks a /readyz body lists (JSON in the usual shapes, or the Kubernetes
  `[+]name ok` text format).
- `probe_findings`: misconfigurations, each with a one-line why.
- `go_runtime_findings`: GOMAXPROCS against the CPU limit, GOMEMLIMIT against the memory limit.
- `verdict`: healthy / degraded (what) / down for a set of pods' answers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.core.tone import Tone
from bot.insight.secrets import mask_text

JSON = Mapping[str, Any]
# The kubelet's defaults (k8s.io/api core/v1 Probe).
DEFAULT_PERIOD = 10
DEFAULT_TIMEOUT = 1
DEFAULT_FAILURE_THRESHOLD = 3
PROBE_KINDS = ("liveness", "readiness", "startup")
_DEPENDENCY_WORDS = ("ready", "deps", "dependencies", "db", "database")


def _dict(value: object) -> JSON:
    return value if isinstance(value, Mapping) else {}


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# --- probe configuration --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeSpec:
    kind: str  # liveness | readiness | startup
    handler: str  # http | tcp | exec | grpc
    path: str = ""
    port: int | None = None
    port_name: str = ""
    scheme: str = "HTTP"
    command: tuple[str, ...] = ()
    initial_delay: int = 0
    period: int = DEFAULT_PERIOD
    timeout: int = DEFAULT_TIMEOUT
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    success_threshold: int = 1

    @property
    def target(self) -> str:
        """'GET :8080/healthz', 'tcp :5432', 'exec pg_isready', 'grpc :9090'."""
        port = f":{self.port}" if self.port is not None else (f":{self.port_name}" if self.port_name else "")
        if self.handler == "http":
            return f"{'GET' if self.scheme == 'HTTP' else 'GET https'} {port}{self.path}"
        if self.handler == "exec":
            return "exec " + " ".join(self.command)[:60]
        return f"{self.handler} {port}"

    @property
    def gives_up_after(self) -> int:
        """Seconds from container start until the kubelet acts on a probe that never passes."""
        return self.initial_delay + self.failure_threshold * self.period

    def same_endpoint(self, other: ProbeSpec) -> bool:
        return (self.handler == other.handler == "http" and self.path == other.path
                and (self.port, self.port_name) == (other.port, other.port_name))


def _resolve_port(value: object, container: JSON) -> tuple[int | None, str]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, ""
    if isinstance(value, str):
        if value.isdigit():
            return int(value), ""
        for port in container.get("ports") or []:
            if isinstance(port, Mapping) and port.get("name") == value:
                return _int(port.get("containerPort"), 0) or None, value
        return None, value
    return None, ""


def probe_spec(kind: str, probe: JSON, container: JSON) -> ProbeSpec:
    timing = ProbeSpec(
        kind=kind, handler="exec",
        initial_delay=_int(probe.get("initialDelaySeconds"), 0),
        period=_int(probe.get("periodSeconds"), DEFAULT_PERIOD),
        timeout=_int(probe.get("timeoutSeconds"), DEFAULT_TIMEOUT),
        failure_threshold=_int(probe.get("failureThreshold"), DEFAULT_FAILURE_THRESHOLD),
        success_threshold=_int(probe.get("successThreshold"), 1),
    )
    if "httpGet" in probe:
        http = _dict(probe["httpGet"])
        port, port_name = _resolve_port(http.get("port"), container)
        return replace(timing, handler="http", path=str(http.get("path") or "/"), port=port,
                       port_name=port_name, scheme=str(http.get("scheme") or "HTTP").upper())
    for key, handler in (("tcpSocket", "tcp"), ("grpc", "grpc")):
        if key in probe:
            port, port_name = _resolve_port(_dict(probe[key]).get("port"), container)
            return replace(timing, handler=handler, port=port, port_name=port_name)
    command = _dict(probe.get("exec")).get("command") or []
    return replace(timing, command=tuple(str(part) for part in command))


def container_probes(container: JSON) -> dict[str, ProbeSpec]:
    """kind -> probe, for the probes the container defines."""
    probes = {}
    for kind in PROBE_KINDS:
        probe = container.get(f"{kind}Probe")
        if isinstance(probe, Mapping):
            probes[kind] = probe_spec(kind, probe, container)
    return probes


# --- what /readyz bodies say ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DependencyCheck:
    name: str
    ok: bool
    detail: str = ""


_GOOD = {"ok", "up", "pass", "passed", "healthy", "ready", "true", "available", "serving"}
_BAD = {"fail", "failed", "down", "error", "unhealthy", "not ready", "false", "unavailable", "degraded",
        "not_serving", "critical"}
_TEXT_CHECK = re.compile(r"^\[([+-])\]\s*([\w.:/-]+)\s*(.*)$")
_META_KEYS = {"status", "version", "uptime", "time", "timestamp", "service", "build", "commit", "name",
              "message", "error", "details", "info"}


def _check_from_value(name: str, value: object) -> DependencyCheck | None:
    if isinstance(value, bool):
        return DependencyCheck(name, value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _GOOD:
            return DependencyCheck(name, True)
        if word in _BAD:
            return DependencyCheck(name, False)
        return DependencyCheck(name, False, value.strip()) if name not in _META_KEYS else None
    if isinstance(value, Mapping):
        status = value.get("status", value.get("state", value.get("ok", value.get("healthy"))))
        detail = str(value.get("error") or value.get("message") or value.get("output") or "")
        if isinstance(status, bool):
            return DependencyCheck(name, status, detail)
        if isinstance(status, str):
            return DependencyCheck(name, status.strip().lower() in _GOOD, detail)
    return None


def dependency_checks(body: bytes | str) -> list[DependencyCheck]:
    """The dependency checks a health body reports; empty when it reports none."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    checks: list[DependencyCheck] = []
    if isinstance(data, Mapping):
        container = data.get("checks", data.get("dependencies", data.get("components", data.get("details"))))
        if isinstance(container, Mapping):
            for name, value in container.items():
                check = _check_from_value(str(name), value)
                if check is not None:
                    checks.append(check)
        elif isinstance(container, list):
            for item in container:
                if isinstance(item, Mapping) and item.get("name"):
                    check = _check_from_value(str(item["name"]), item)
                    if check is not None:
                        checks.append(check)
        else:
            for name, value in data.items():
                if str(name).lower() in _META_KEYS:
                    continue
                if isinstance(value, bool | Mapping) or (isinstance(value, str) and value.lower() in
                                                         _GOOD | _BAD):
                    check = _check_from_value(str(name), value)
                    if check is not None:
                        checks.append(check)
        return checks
    for line in text.splitlines():
        match = _TEXT_CHECK.match(line.strip())
        if match:
            sign, name, rest = match.groups()
            detail = rest.strip()
            if detail.lower() in {"ok", "failed"}:
                detail = ""
            checks.append(DependencyCheck(name, sign == "+", detail.removeprefix("failed:").strip()))
    return checks


def excerpt(body: bytes | str, limit: int = 160, secret_keys: Sequence[str] = ()) -> str:
    """One line of a response body; JSON values under secret-looking keys replaced by '***', and secrets in
    a plain-text body (key=value pairs, tokens, URLs with passwords) masked."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    patterns = [re.compile(pattern, re.IGNORECASE) for pattern in secret_keys]
    if patterns:
        try:
            data = json.loads(text)
        except ValueError:
            text = mask_text(text, secret_keys)
        else:
            text = json.dumps(_redact(data, patterns), separators=(",", ":"), ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _redact(value: Any, patterns: Sequence[re.Pattern[str]]) -> Any:
    if isinstance(value, Mapping):
        return {key: "***" if any(p.search(str(key)) for p in patterns) else _redact(item, patterns)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, patterns) for item in value]
    return value


# --- findings -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """A misconfiguration (WARN) or something worth knowing (INFO), with a one-line why."""

    tone: Tone
    title: str
    why: str


def probe_findings(
    probes: Mapping[str, ProbeSpec],
    *,
    latency: Mapping[str, float] | None = None,
    liveness_checks: Sequence[DependencyCheck] = (),
    startup_seconds: float | None = None,
) -> list[Finding]:
    """Probe misconfigurations.

    `latency`: the slowest observed answer per probe kind (seconds); `liveness_checks`: dependency
    checks the liveness endpoint's body lists; `startup_seconds`: observed time from container start to
    Ready.
    """
    findings: list[Finding] = []
    liveness, readiness, startup = probes.get("liveness"), probes.get("readiness"), probes.get("startup")
    if readiness is None:
        findings.append(Finding(Tone.WARN, "no readiness probe",
                                "pods get traffic as soon as the process starts, and keep getting it while "
                                "they cannot serve"))
    if liveness is None:
        findings.append(Finding(Tone.INFO, "no liveness probe",
                                "a hung process is never restarted (fine if it exits on fatal errors)"))
    if liveness is not None and readiness is not None and liveness.same_endpoint(readiness):
        findings.append(Finding(Tone.WARN, f"liveness probe on the readiness path {liveness.path}",
                                "when a dependency fails, every pod is restarted instead of taken out of "
                                "rotation, and the outage gets worse"))
    elif liveness is not None and (liveness_checks or _looks_like_dependency_path(liveness.path)):
        names = ", ".join(check.name for check in liveness_checks[:4])
        what = f" ({names})" if names else ""
        findings.append(Finding(Tone.WARN, f"liveness probe {liveness.path} checks dependencies{what}",
                                "a database or cache outage then restarts every pod; liveness should only "
                                "ask whether the process itself is stuck"))
    for kind, spec in probes.items():
        observed = (latency or {}).get(kind)
        if observed is not None and spec.handler == "http" and spec.timeout <= observed:
            findings.append(Finding(Tone.WARN,
                                    f"{kind} timeoutSeconds {spec.timeout} ≤ observed {observed:.2f}s",
                                    "the probe times out under normal load; raise timeoutSeconds above the "
                                    "slowest answer"))
    if liveness is not None and startup is None and startup_seconds is not None \
            and liveness.gives_up_after < startup_seconds:
        findings.append(Finding(
            Tone.WARN,
            f"liveness gives up after {liveness.gives_up_after}s but start-up took {startup_seconds:.0f}s",
            f"initialDelaySeconds {liveness.initial_delay} + failureThreshold {liveness.failure_threshold} × "
            f"periodSeconds {liveness.period} is shorter than a start: the kubelet kills slow starts; "
            "add a startupProbe"))
    return findings


def _looks_like_dependency_path(path: str) -> bool:
    lowered = path.lower()
    return any(word in re.split(r"[/_.-]+", lowered) or lowered.endswith(word + "z")
               for word in _DEPENDENCY_WORDS)


# --- Go runtime -----------------------------------------------------------------------------------------

_SUFFIXES = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40, "Pi": 2.0 ** 50, "Ei": 2.0 ** 60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_GO_BYTES = re.compile(r"^(\d+)(B|KiB|MiB|GiB|TiB)?$")
_GO_UNITS = {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def parse_quantity(value: object) -> float | None:
    """A Kubernetes resource quantity ('500m', '2', '512Mi', '1e9') -> a number; None if unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match:
        return None
    return float(match.group(1)) * _SUFFIXES[match.group(2) or ""]


def parse_go_bytes(value: str) -> int | None:
    """GOMEMLIMIT's syntax (runtime: a byte count with optional B/KiB/MiB/GiB/TiB); None if Go rejects it."""
    match = _GO_BYTES.match(value.strip())
    if not match:
        return None
    return int(match.group(1)) * _GO_UNITS[match.group(2)]


def format_bytes(count: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            shown = count / size
            return f"{shown:.0f}{unit}" if shown == int(shown) else f"{shown:.1f}{unit}"
    return f"{count:.0f}B"


def env_values(container: JSON) -> dict[str, str]:
    """Literal environment values of a container (valueFrom references are not resolved)."""
    values = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and item.get("name") and "value" in item:
            values[str(item["name"])] = str(item.get("value") or "")
    return values


def looks_like_go(container: JSON) -> bool:
    """Whether the container sets any Go runtime variable (GOMAXPROCS, GOMEMLIMIT, GOGC, GODEBUG...)."""
    names = {str(item.get("name")) for item in container.get("env") or [] if isinstance(item, Mapping)}
    return any(name in {"GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "GOTRACEBACK"} for name in names)


def go_runtime_findings(container: JSON) -> list[Finding]:
    """GOMAXPROCS against the CPU limit, GOMEMLIMIT against the memory limit."""
    findings: list[Finding] = []
    env = env_values(container)
    limits = _dict(_dict(container.get("resources")).get("limits"))
    cpu_limit = parse_quantity(limits.get("cpu"))
    memory_limit = parse_quantity(limits.get("memory"))

    maxprocs = env.get("GOMAXPROCS")
    if maxprocs is not None:
        try:
            procs = int(maxprocs)
        except ValueError:
            findings.append(Finding(Tone.WARN, f"GOMAXPROCS={maxprocs} is not a number",
                                    "the Go runtime ignores it and picks its own value"))
        else:
            if cpu_limit is not None and procs > math.ceil(cpu_limit):
                findings.append(Finding(
                    Tone.WARN, f"GOMAXPROCS={procs} over CPU limit {limits.get('cpu')}",
                    f"{procs} threads share {cpu_limit:g} CPU of quota: the container is throttled in every "
                    f"scheduling period and latency spikes; set GOMAXPROCS to {max(1, math.ceil(cpu_limit))} "
                    "or leave it unset on Go 1.25+"))
    elif cpu_limit is not None:
        findings.append(Finding(
            Tone.INFO, "GOMAXPROCS unset",
            f"Go 1.25+ derives it from the CPU limit ({limits.get('cpu')}); older Go uses every CPU of the node"))

    memlimit = env.get("GOMEMLIMIT")
    if memlimit is None or memlimit.strip().lower() == "off":
        if memory_limit is not None:
            suggested = format_bytes(memory_limit * 0.9 // 2**20 * 2**20)
            findings.append(Finding(
                Tone.WARN, f"GOMEMLIMIT unset with a memory limit of {limits.get('memory')}",
                f"Go does not derive it from the limit, so the GC does not push back before the OOM kill; "
                f"set GOMEMLIMIT to about 90% of the limit ({suggested})"))
    else:
        value = parse_go_bytes(memlimit)
        if value is None:
            findings.append(Finding(Tone.WARN, f"GOMEMLIMIT={memlimit} is not in Go's syntax",
                                    "Go accepts a byte count with B, KiB, MiB, GiB or TiB (not Mi/Gi)"))
        elif memory_limit is not None and value > memory_limit:
            findings.append(Finding(
                Tone.WARN, f"GOMEMLIMIT={memlimit} above memory limit {limits.get('memory')}",
                "the kernel kills the container before the GC starts working hard; set it to about 90% of "
                "the limit"))
    return findings


# --- observed start-up and the verdict ------------------------------------------------------------------

def startup_seconds(pod: JSON, container: str) -> float | None:
    """Seconds from the container's start to the pod's Ready condition, when it became ready after starting."""
    from bot.insight.kube_facts import parse_time  # noqa: PLC0415 - keeps this module importable on its own

    status = _dict(pod.get("status"))
    started = None
    for item in status.get("containerStatuses") or []:
        if isinstance(item, Mapping) and item.get("name") == container:
            started = parse_time(_dict(_dict(item.get("state")).get("running")).get("startedAt"))
    ready_at = None
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready" and condition.get("status") == "True":
            ready_at = parse_time(condition.get("lastTransitionTime"))
    if started is None or ready_at is None or ready_at < started:
        return None
    return ready_at - started


@dataclass(frozen=True)
class Verdict:
    word: str  # healthy | degraded | down
    detail: str
    tone: Tone


def verdict(answers: Iterable[tuple[str, bool | None, bool | None, str]], pods_total: int) -> Verdict:
    """From (pod, liveness ok, readiness ok, what failed) per pod; None = endpoint not asked.

    down: no pods, or no pod passes readiness and none answers liveness; degraded: any failure;
    healthy: every pod passes both.
    """
    rows = list(answers)
    if pods_total == 0 or not rows:
        return Verdict("down", "no pods", Tone.BAD)
    failures = [(pod, what) for pod, live, ready, what in rows if live is False or ready is False]
    nothing_ready = all(ready is False for _, _, ready, _ in rows)
    nothing_alive = all(live is False for _, live, _, _ in rows)
    if nothing_ready and nothing_alive:
        return Verdict("down", f"no pod answers ({_first_reason(failures)})", Tone.BAD)
    if failures:
        reason = _first_reason(failures)
        return Verdict("degraded", f"{len(failures)} of {len(rows)} pods failing: {reason}", Tone.WARN)
    return Verdict("healthy", f"{len(rows)} of {len(rows)} pods answer both probes", Tone.OK)


def _first_reason(failures: Sequence[tuple[str, str]]) -> str:
    reasons = list(dict.fromkeys(what for _, what in failures if what))
    return "; ".join(reasons[:2]) or "probe failed"
