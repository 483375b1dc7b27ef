"""Container logs: the lines a simulated container prints when it starts and when it ends (a JSON-logging
service, a crash's panic, a job's make test or migrate output), and reading them back for pods/log
(the current or the previous run, and whether that run has finished, for follow)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sandbox.kube.registry import split_image
from sandbox.kube.resources import PODS
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
        return t, json.dumps({"time": fmt_micro(t), "level": level, "service": service, "msg": msg, **kw},
                             separators=(",", ":"))

    if sim.kind == "job":
        argv = [str(x) for x in as_list(cspec.get("command")) + as_list(cspec.get("args"))]
        lines = [(wall, "+ " + " ".join(argv))] if argv else []
        tool = argv[0].rsplit("/", 1)[-1] if argv else ""
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
        argv = [str(x) for x in as_list(cspec.get("command")) + as_list(cspec.get("args"))]
        tool = argv[0].rsplit("/", 1)[-1] if argv else ""
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
        return []
    if code != 0 and reason == "Error":
        return [
            (wall, json.dumps({"time": fmt_micro(wall), "level": "error", "service": _service_of(pod, c),
                               "msg": "failed to initialise provider client",
                               "error": "missing required setting provider.api_key"}, separators=(",", ":"))),
            (wall, "panic: runtime error: invalid memory address or nil pointer dereference"),
            (wall, "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6b5c3a]"),
            (wall, ""), (wall, "goroutine 1 [running]:"), (wall, "main.main()"),
            (wall, "\t/src/cmd/server/main.go:42 +0x1ba"),
        ]
    return []


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
