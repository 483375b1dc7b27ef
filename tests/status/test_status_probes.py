"""Pure probe checks: probe configuration, /readyz bodies, misconfigurations, Go runtime, the verdict."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from status_objects import container

from bot.core.tone import Tone
from bot.insight.probes import (
    container_probes,
    dependency_checks,
    excerpt,
    go_runtime_findings,
    looks_like_go,
    parse_go_bytes,
    parse_quantity,
    probe_findings,
    verdict,
)


def http_probe(path: str, port: object = 8080, **timing: int) -> dict[str, object]:
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"}, **timing}


def titles(findings: list) -> list[str]:  # type: ignore[type-arg]
    return [finding.title for finding in findings]


class TestProbeConfiguration:
    def test_defaults_and_named_port(self) -> None:
        """Unset timings take the kubelet's defaults; a named port resolves to the container port."""
        probes = container_probes(container(livenessProbe=http_probe("/healthz", "http"),
                                            readinessProbe=http_probe("/readyz", periodSeconds=5)))
        liveness = probes["liveness"]
        assert (liveness.port, liveness.port_name, liveness.period, liveness.timeout, liveness.failure_threshold) == (
            8080, "http", 10, 1, 3)
        assert liveness.target == "GET :8080/healthz"
        assert probes["readiness"].period == 5
        assert "startup" not in probes

    def test_other_handlers(self) -> None:
        """tcpSocket, grpc and exec probes are described too."""
        probes = container_probes(container(livenessProbe={"tcpSocket": {"port": 5432}},
                                            readinessProbe={"exec": {"command": ["pg_isready", "-q"]}},
                                            startupProbe={"grpc": {"port": 9090}}))
        assert probes["liveness"].target == "tcp :5432"
        assert probes["readiness"].target == "exec pg_isready -q"
        assert probes["startup"].target == "grpc :9090"


class TestDependencyChecks:
    def test_json_mapping(self) -> None:
        """A {"checks": {...}} body gives one check per dependency, with the failure's words."""
        body = json.dumps({"status": "fail", "checks": {"database": {"status": "down", "error":
                                                                      "dial tcp 10.0.0.9:5432: connection refused"},
                                                         "cache": "ok"}})
        checks = dependency_checks(body.encode())
        assert [(c.name, c.ok) for c in checks] == [("database", False), ("cache", True)]
        assert checks[0].detail == "dial tcp 10.0.0.9:5432: connection refused"

    def test_json_list_and_flat(self) -> None:
        """Lists of named checks and flat {"db": true} bodies are read as well."""
        listed = dependency_checks(json.dumps({"checks": [{"name": "redis", "status": "UP"}]}))
        assert [(c.name, c.ok) for c in listed] == [("redis", True)]
        flat = dependency_checks(json.dumps({"status": "ok", "db": True, "version": "1.2"}))
        assert [(c.name, c.ok) for c in flat] == [("db", True)]

    def test_kubernetes_text_format(self) -> None:
        """The `[+]name ok` / `[-]name failed: reason` text format of Kubernetes components is read."""
        checks = dependency_checks(b"[+]ping ok\n[-]database failed: reason withheld\nreadyz check failed")
        assert [(c.name, c.ok, c.detail) for c in checks] == [("ping", True, ""), ("database", False,
                                                                                    "reason withheld")]

    def test_plain_body_has_no_checks(self) -> None:
        """A plain 'ok' body lists no dependencies."""
        assert dependency_checks(b"ok") == []
        assert dependency_checks(json.dumps({"status": "ok"})) == []

    def test_excerpt_masks_secret_keys(self) -> None:
        """JSON values under secret-looking keys never reach the excerpt."""
        body = json.dumps({"status": "ok", "db_password": "hunter2", "nested": {"apiKey": "abc"}})
        text = excerpt(body.encode(), secret_keys=("password", "api_?key"))
        assert "hunter2" not in text
        assert "abc" not in text
        assert "***" in text


class TestProbeFindings:
    def test_liveness_on_readiness_path(self) -> None:
        """A liveness probe on the readiness endpoint is flagged with why."""
        probes = container_probes(container(livenessProbe=http_probe("/readyz"), readinessProbe=http_probe("/readyz")))
        findings = probe_findings(probes)
        assert "liveness probe on the readiness path /readyz" in titles(findings)
        assert "every pod is restarted" in findings[0].why

    def test_liveness_checking_dependencies(self) -> None:
        """A liveness endpoint whose body lists dependency checks is flagged."""
        probes = container_probes(container(livenessProbe=http_probe("/healthz"), readinessProbe=http_probe("/readyz")))
        checks = dependency_checks(json.dumps({"checks": {"database": "ok"}}))
        assert "liveness probe /healthz checks dependencies (database)" in titles(
            probe_findings(probes, liveness_checks=checks))

    def test_no_readiness_probe(self) -> None:
        """A container without a readiness probe is flagged."""
        assert "no readiness probe" in titles(probe_findings(container_probes(container(
            livenessProbe=http_probe("/healthz")))))

    def test_timeout_at_or_below_latency(self) -> None:
        """timeoutSeconds at or below the observed latency is flagged."""
        probes = container_probes(container(livenessProbe=http_probe("/healthz"),
                                            readinessProbe=http_probe("/readyz", timeoutSeconds=1)))
        assert "readiness timeoutSeconds 1 ≤ observed 1.20s" in titles(probe_findings(probes, latency={
            "readiness": 1.2, "liveness": 0.01}))
        assert probe_findings(probes, latency={"readiness": 0.3}) == []

    def test_slow_start_without_startup_probe(self) -> None:
        """failureThreshold × periodSeconds shorter than the observed start-up, without a startup probe."""
        probes = container_probes(container(livenessProbe=http_probe("/healthz", periodSeconds=5, failureThreshold=3),
                                            readinessProbe=http_probe("/readyz")))
        assert "liveness gives up after 15s but start-up took 40s" in titles(probe_findings(
            probes, startup_seconds=40))
        with_startup = container_probes(container(livenessProbe=http_probe("/healthz", periodSeconds=5),
                                                  readinessProbe=http_probe("/readyz"),
                                                  startupProbe=http_probe("/healthz", failureThreshold=30)))
        assert probe_findings(with_startup, startup_seconds=40) == []

    def test_good_configuration_is_quiet(self) -> None:
        """Separate liveness and readiness endpoints with room to spare give no findings."""
        probes = container_probes(container(livenessProbe=http_probe("/healthz"), readinessProbe=http_probe("/readyz")))
        assert probe_findings(probes, latency={"liveness": 0.01, "readiness": 0.02}, startup_seconds=3) == []


def go_container(env: dict[str, str], cpu: str | None = "2", memory: str | None = "512Mi") -> dict[str, object]:
    limits = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value}
    return container(env=[{"name": k, "value": v} for k, v in env.items()], resources={"limits": limits})


class TestGoRuntime:
    def test_gomaxprocs_over_cpu_limit_and_missing_gomemlimit(self) -> None:
        """GOMAXPROCS=8 over a CPU limit of 2 and a missing GOMEMLIMIT are both warnings."""
        findings = go_runtime_findings(go_container({"GOMAXPROCS": "8"}))
        assert titles(findings) == ["GOMAXPROCS=8 over CPU limit 2", "GOMEMLIMIT unset with a memory limit of 512Mi"]
        assert all(finding.tone is Tone.WARN for finding in findings)
        assert "460MiB" in findings[1].why

    def test_unset_gomaxprocs_is_a_note(self) -> None:
        """Unset GOMAXPROCS with a CPU limit is a note about Go 1.25+, not a warning."""
        findings = go_runtime_findings(go_container({"GOMEMLIMIT": "450MiB"}))
        assert [(f.tone, f.title) for f in findings] == [(Tone.INFO, "GOMAXPROCS unset")]
        assert "1.25" in findings[0].why

    def test_gomemlimit_above_limit_or_wrong_syntax(self) -> None:
        """GOMEMLIMIT above the memory limit, or in Kubernetes syntax Go rejects, is flagged."""
        assert "GOMEMLIMIT=1GiB above memory limit 512Mi" in titles(go_runtime_findings(go_container(
            {"GOMAXPROCS": "2", "GOMEMLIMIT": "1GiB"})))
        assert "GOMEMLIMIT=450Mi is not in Go's syntax" in titles(go_runtime_findings(go_container(
            {"GOMAXPROCS": "2", "GOMEMLIMIT": "450Mi"})))

    def test_go_detection(self) -> None:
        """A container is treated as Go when it sets a Go runtime variable."""
        assert looks_like_go(go_container({"GOGC": "100"}))
        assert not looks_like_go(go_container({"JAVA_OPTS": "-Xmx1g"}))

    def test_quantities(self) -> None:
        """Kubernetes quantities and Go byte counts parse as their owners define them."""
        assert parse_quantity("500m") == 0.5
        assert parse_quantity("512Mi") == 512 * 2**20
        assert parse_quantity("1G") == 1e9
        assert parse_quantity("lots") is None
        assert parse_go_bytes("450MiB") == 450 * 2**20
        assert parse_go_bytes("1073741824") == 2**30
        assert parse_go_bytes("1Gi") is None

    @given(st.integers(1, 64), st.integers(1, 64))
    def test_gomaxprocs_rule(self, procs: int, cpu: int) -> None:
        """GOMAXPROCS is flagged exactly when it exceeds the CPU limit."""
        findings = go_runtime_findings(go_container({"GOMAXPROCS": str(procs), "GOMEMLIMIT": "400MiB"}, cpu=str(cpu)))
        assert bool(findings) == (procs > cpu)


class TestVerdict:
    def test_healthy(self) -> None:
        """Every pod passing both probes is healthy."""
        assert verdict([("a", True, True, ""), ("b", True, True, "")], 2).word == "healthy"

    def test_degraded_names_what(self) -> None:
        """Failing readiness with live processes is degraded, naming what failed."""
        result = verdict([("a", True, False, "readiness 503 (database: connection refused)")], 1)
        assert (result.word, result.tone) == ("degraded", Tone.WARN)
        assert "readiness 503 (database: connection refused)" in result.detail

    def test_down(self) -> None:
        """No pods, or no pod answering at all, is down."""
        assert verdict([], 0).word == "down"
        assert verdict([("a", False, False, "liveness no answer")], 1).word == "down"


def test_plain_text_body_excerpt_is_masked() -> None:
    """A /readyz body that is not JSON still has its secrets masked before it is shown."""
    shown = excerpt(b"db down; password=hunter2 dsn=postgres://app:s3cret@db:5432/x", secret_keys=("password",))
    assert "hunter2" not in shown
    assert "s3cret" not in shown
    assert "db down" in shown
