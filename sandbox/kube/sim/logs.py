"""Container logs: the lines a simulated container prints when it starts and when it ends (a JSON-logging
service, a crash's panic, a job's make test or migrate output), and reading them back for pods/log
(the current or the previous run, and whether that run has finished, for follow)."""

from __future__ import annotations

import json
import random
import shlex
from collections.abc import Mapping
from typing import Any

from sandbox.kube.registry import split_image
from sandbox.kube.resources import PODS
from sandbox.kube.sim.commands import argv_of, plain_exit
from sandbox.kube.sim.network import container_ports
from sandbox.kube.sim.pod_state import ContainerSim, PodSim, container_spec
from sandbox.kube.store import Store
from sandbox.kube.util import ApiError, as_dict, as_list, fmt_micro


def start_lines(pod: dict[str, Any], sim: PodSim, c: ContainerSim, cspec: dict[str, Any],  # noqa: PLR0917
                behaviour: str, wall: float) -> list[tuple[float, str]]:
    ns = pod["metadata"]["namespace"]
    repo, tag = split_image(c.image)
    service = str(as_dict(pod["metadata"].get("labels")).get("app") or repo.rsplit("/", 1)[-1])

    def j(t: float, level: str, msg: str, **kw: Any) -> tuple[float, str]:
        return json_line(t, service, level, msg, **kw)

    if sim.kind == "job":
        argv = argv_of(as_list(cspec.get("command")), as_list(cspec.get("args")))
        lines = [(wall, "+ " + shlex.join(argv))] if argv else [(wall, f"+ {c.image} (the image's entrypoint)")]
        tool = argv[0].rsplit("/", 1)[-1] if argv else ""
        if plain_exit(argv) is not None:
            return lines  # `false`, `sh -c 'exit 3'`: nothing to print but what ran
        if tool == "make" and len(argv) > 1 and argv[1] == "test":
            lines += [(wall, "go vet ./..."), (wall, "go test -race -count=1 ./...")]
        elif tool == "migrate":
            lines += [(wall, "migrate: connecting to database"), (wall, "migrate: current schema version 41")]
        else:
            lines += [(wall, f"running {tool or 'job'} ({c.image})")]
        return lines
    port = next(iter(container_ports(cspec).values()), 8080)
    lines = [
        j(wall, "info", "starting", version=tag, env=ns, pod=pod["metadata"]["name"]),
        j(wall, "info", "configuration loaded", profile=ns, file=f"/etc/{service}/application-{ns}.yaml"),
        j(wall, "info", "http server listening", addr=f":{port}"),
    ]
    if behaviour == "leaking":
        lines.append(j(wall, "warn", "heap usage growing", heap_alloc_mb=412, limit_mb=512))
    return lines


def end_lines(pod: dict[str, Any], sim: PodSim, c: ContainerSim, code: int, reason: str,  # noqa: PLR0917
              wall: float) -> list[tuple[float, str]]:
    if sim.kind == "job":
        cspec = container_spec(pod, c.name)
        argv = argv_of(as_list(cspec.get("command")), as_list(cspec.get("args")))
        tool = argv[0].rsplit("/", 1)[-1] if argv else ""
        if plain_exit(argv) is not None:
            return []
        if tool == "make" and len(argv) > 1 and argv[1] == "test":
            pkg = split_image(c.image)[0].rsplit("/", 1)[-1]
            if code == 0:
                return [(wall, f"ok  \tregistry.example.com/{pkg}/internal/api\t0.412s"),
                        (wall, f"ok  \tregistry.example.com/{pkg}/internal/store\t1.093s"), (wall, "PASS")]
            return [(wall, "--- FAIL: TestRefundIdempotency (0.02s)"),
                    (wall, "    refund_test.go:88: expected status 200, got 409"), (wall, "FAIL"),
                    (wall, "make: *** [Makefile:21: test] Error 1")]
        if tool == "migrate":
            if code == 0:
                return [(wall, "migrate: applied 0042_add_refund_index.sql"), (wall, "migrate: schema at 42")]
            return [(wall, "migrate: applying 0042_add_refund_index.sql"),
                    (wall, 'migrate: error: pq: relation "refunds" does not exist'),
                    (wall, "migrate: rolled back, schema still at 41")]
        return [(wall, "done")] if code == 0 else [(wall, f"error: command failed with exit code {code}")]
    if reason == "OOMKilled":
        return [json_line(wall, _service_of(pod, c), "warn", "heap usage growing", heap_alloc_mb=509, limit_mb=512),
                (wall, "fatal error: runtime: out of memory")]
    if code != 0 and reason == "Error":
        return [
            json_line(wall, _service_of(pod, c), "error", "failed to initialise provider client",
                      error="missing required setting provider.api_key"),
            (wall, "panic: runtime error: invalid memory address or nil pointer dereference"),
            (wall, "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6b5c3a]"),
            (wall, ""), (wall, "goroutine 1 [running]:"), (wall, "main.main()"),
            (wall, "\t/src/cmd/server/main.go:42 +0x1ba"),
        ]
    return []


def json_line(t: float, service: str, level: str, message: str, trace_id: str = "", **fields: Any
              ) -> tuple[float, str]:
    """One line as the seed's services write them (sandbox/seed/logs.py): timestamp, level, service,
    trace_id, message, then the fields."""
    record: dict[str, Any] = {"timestamp": fmt_micro(t), "level": level, "service": service}
    if trace_id:
        record["trace_id"] = trace_id
    record["message"] = message
    record.update(fields)
    return t, json.dumps(record, separators=(",", ":"))


GAPS = {"prod": 40.0, "staging": 90.0, "dev": 150.0}  # simulated seconds between a pod's lines, as in the seed
FAILING_GAP = 20.0  # the orders staging database: an error every ~20 s


def next_gap(pod: dict[str, Any], rng: random.Random, *, failing: bool) -> float:
    """Simulated seconds until the service's next line."""
    gap = FAILING_GAP if failing else GAPS.get(pod["metadata"]["namespace"], 60.0)
    return rng.uniform(gap * 0.75, gap * 1.25)


def down_checks(status: int, body: Any) -> list[tuple[str, str]]:
    """The failing checks a readiness answer names: [(check, error)] (empty while it answers < 500)."""
    if status < 500 or not isinstance(body, dict):
        return []
    checks = body.get("checks")
    out = []
    for name, check in (checks.items() if isinstance(checks, dict) else []):
        if isinstance(check, dict) and check.get("status") == "down":
            out.append((str(name), str(check.get("error") or "down")))
    return out


_TRAFFIC = {
    "gateway": ("info", "POST /api/checkout 200 in {ms}ms", {"status": 200}),
    "orders": ("info", "order created", {}),
    "payment": ("info", "charge authorized", {"currency": "EUR"}),
    "inventory": ("info", "stock reserved", {}),
}


def tick_lines(pod: dict[str, Any], c: ContainerSim, wall: float, rng: random.Random,  # noqa: PLR0917
               down: list[tuple[str, str]], tick: int) -> list[tuple[float, str]]:
    """What a running service logs at one of its ticks: a request it served (with a trace id), now and then
    a cache refresh; while a check is down, the error (and every third time, the retry)."""
    service = _service_of(pod, c)
    ns = pod["metadata"]["namespace"]
    if down:
        name, error = down[0]
        lines = [json_line(wall, service, "error", f"{name} unreachable: {error}",
                           db_host=f"{service}-db.{ns}" if name == "database" else name, attempt=tick)]
        if tick % 3 == 0:
            lines.append(json_line(wall + 0.001, service, "warn", f"retrying {name} connection (attempt {tick})",
                                   backoff_ms=min(30_000, 250 * tick)))
        return lines
    if tick % 6 == 0:
        return [json_line(wall, service, "debug", "cache refreshed", entries=rng.randint(50, 900))]
    trace = f"{rng.getrandbits(128):032x}"
    level, message, fields = _TRAFFIC.get(service, ("info", "request handled", {"status": 200}))
    ms = rng.randint(3, 180)
    extra = dict(fields)
    if service == "gateway":
        extra["duration_ms"] = ms
    elif service in ("orders", "payment", "inventory"):
        extra["order_id"] = f"ord_{rng.randint(10_000, 99_999)}"
        if service == "payment":
            extra["amount_cents"] = rng.randint(500, 25_000)
    else:
        extra["duration_ms"] = ms
    return [json_line(wall, service, level, message.format(ms=ms), trace, **extra)]


def _service_of(pod: dict[str, Any], c: ContainerSim) -> str:
    app = as_dict(pod["metadata"].get("labels")).get("app")
    return str(app) if app else split_image(c.image)[0].rsplit("/", 1)[-1]


def read(store: Store, sims: Mapping[str, PodSim], namespace: str, name: str, container: str | None,  # noqa: PLR0917
         previous: bool) -> tuple[list[tuple[float, str]], bool]:
    """The lines of a container instance, and whether that instance has finished."""
    pod = store.get(PODS, namespace, name)
    if pod is None:
        raise ApiError(404, "NotFound", f'pods "{name}" not found',
                       {"name": name, "group": "", "kind": "pods"})
    names = [str(as_dict(c).get("name")) for c in as_list(as_dict(pod.get("spec")).get("containers"))]
    if not container:
        if len(names) != 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one "
                                              f"of: [{' '.join(names)}]")
        container = names[0]
    if container not in names:
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    sim = sims.get(pod["metadata"].get("uid", ""))
    c = sim.containers.get(container) if sim else None
    if c is None or not c.logs:
        waiting = as_dict(c.state.get("waiting")) if c else {}
        reason = str(waiting.get("reason") or "ContainerCreating")
        if reason in ("ErrImagePull", "ImagePullBackOff"):
            reason = "trying and failing to pull image"
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: '
                                          f"{reason}")
    if previous:
        if len(c.logs) < 2:
            raise ApiError(400, "BadRequest",
                           f'previous terminated container "{container}" in pod "{name}" not found')
        return list(c.logs[-2]), True
    return list(c.logs[-1]), c.stage != "running"
