"""Server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` answers, with the columns
of pkg/printers/internalversion/printers.go, so `kubectl get` looks like it does against a real cluster."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .resources import ResourceType
from .selectors import selector_string
from .util import as_dict, as_int, as_list, human_duration, parse_time

Col = tuple[str, str, int, str]  # name, type, priority, format


def _age(ts: Any) -> str:
    t = parse_time(ts)
    return "<unknown>" if t is None else human_duration(time.time() - t)


def _name_col() -> Col:
    return ("Name", "string", 0, "name")


def _age_col() -> Col:
    return ("Age", "string", 0, "")


def _containers(tmpl_spec: dict[str, Any]) -> tuple[str, str]:
    cs = [as_dict(c) for c in as_list(tmpl_spec.get("containers"))]
    return ",".join(str(c.get("name", "")) for c in cs), ",".join(str(c.get("image", "")) for c in cs)


def _deployment(o: dict[str, Any]) -> list[Any]:
    spec, st = as_dict(o.get("spec")), as_dict(o.get("status"))
    names, images = _containers(as_dict(as_dict(spec.get("template")).get("spec")))
    return [o["metadata"]["name"], f"{as_int(st.get('readyReplicas'))}/{as_int(spec.get('replicas'), 1)}",
            as_int(st.get("updatedReplicas")), as_int(st.get("availableReplicas")),
            _age(o["metadata"].get("creationTimestamp")), names, images, selector_string(spec.get("selector"))]


def _replicaset(o: dict[str, Any]) -> list[Any]:
    spec, st = as_dict(o.get("spec")), as_dict(o.get("status"))
    names, images = _containers(as_dict(as_dict(spec.get("template")).get("spec")))
    return [o["metadata"]["name"], as_int(spec.get("replicas"), 1), as_int(st.get("replicas")),
            as_int(st.get("readyReplicas")), _age(o["metadata"].get("creationTimestamp")), names, images,
            selector_string(spec.get("selector"))]


def pod_reason(o: dict[str, Any]) -> tuple[str, int, int, str]:
    """(STATUS column, ready containers, total containers, RESTARTS column) as printPod computes them."""
    spec, st = as_dict(o.get("spec")), as_dict(o.get("status"))
    total = len(as_list(spec.get("containers")))
    reason = st.get("reason") or st.get("phase") or "Unknown"
    restarts = 0
    last_restart: float | None = None
    ready = 0
    has_running = False
    for cs in reversed(as_list(st.get("containerStatuses"))):
        cs = as_dict(cs)
        restarts += as_int(cs.get("restartCount"))
        fin = parse_time(as_dict(as_dict(cs.get("lastState")).get("terminated")).get("finishedAt"))
        if fin is not None and (last_restart is None or fin > last_restart):
            last_restart = fin
        state = as_dict(cs.get("state"))
        waiting, term = as_dict(state.get("waiting")), as_dict(state.get("terminated"))
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif term.get("reason"):
            reason = term["reason"]
        elif term:
            reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{as_int(term.get('exitCode'))}"
        elif "running" in state and cs.get("ready"):
            has_running = True
            ready += 1
        elif "running" in state:
            has_running = True
    if reason == "Completed" and has_running:
        reason = "Running" if any(as_dict(c).get("type") == "Ready" and as_dict(c).get("status") == "True"
                                  for c in as_list(st.get("conditions"))) else "NotReady"
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restart_s = str(restarts)
    if last_restart is not None and restarts:
        restart_s = f"{restarts} ({human_duration(time.time() - last_restart)} ago)"
    return reason, ready, total, restart_s


def _pod(o: dict[str, Any]) -> list[Any]:
    reason, ready, total, restarts = pod_reason(o)
    st = as_dict(o.get("status"))
    return [o["metadata"]["name"], f"{ready}/{total}", reason, restarts, _age(o["metadata"].get("creationTimestamp")),
            st.get("podIP") or "<none>", as_dict(o.get("spec")).get("nodeName") or "<none>", "<none>", "<none>"]


def _service(o: dict[str, Any]) -> list[Any]:
    spec = as_dict(o.get("spec"))
    ports = ",".join(f"{as_dict(p).get('port')}/{as_dict(p).get('protocol', 'TCP')}"
                     for p in as_list(spec.get("ports")))
    sel = as_dict(spec.get("selector"))
    return [o["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", "<none>",
            ports or "<none>", _age(o["metadata"].get("creationTimestamp")),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"]


def _event(o: dict[str, Any]) -> list[Any]:
    io = as_dict(o.get("involvedObject"))
    last = o.get("lastTimestamp") or o.get("eventTime") or o["metadata"].get("creationTimestamp")
    src = as_dict(o.get("source"))
    source = src.get("component", "")
    if src.get("host"):
        source += f", {src['host']}"
    obj = f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}"
    return [_age(last), o.get("type", ""), o.get("reason", ""), obj,
            io.get("fieldPath", ""), source, str(o.get("message", "")).strip(),
            _age(o.get("firstTimestamp")), str(as_int(o.get("count"), 1)), o["metadata"]["name"]]


def _job(o: dict[str, Any]) -> list[Any]:
    spec, st = as_dict(o.get("spec")), as_dict(o.get("status"))
    conds = {as_dict(c).get("type"): as_dict(c).get("status") for c in as_list(st.get("conditions"))}
    status = "Complete" if conds.get("Complete") == "True" else "Failed" if conds.get("Failed") == "True" else \
        "Suspended" if spec.get("suspend") else "Running"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = human_duration((end or time.time()) - start) if start else ""
    names, images = _containers(as_dict(as_dict(spec.get("template")).get("spec")))
    return [o["metadata"]["name"], status, f"{as_int(st.get('succeeded'))}/{as_int(spec.get('completions'), 1)}",
            duration, _age(o["metadata"].get("creationTimestamp")), names, images,
            selector_string(spec.get("selector"))]


def _configmap(o: dict[str, Any]) -> list[Any]:
    return [o["metadata"]["name"], len(as_dict(o.get("data"))) + len(as_dict(o.get("binaryData"))),
            _age(o["metadata"].get("creationTimestamp"))]


def _lease(o: dict[str, Any]) -> list[Any]:
    return [o["metadata"]["name"], as_dict(o.get("spec")).get("holderIdentity") or "",
            _age(o["metadata"].get("creationTimestamp"))]


def _hpa(o: dict[str, Any]) -> list[Any]:
    spec, st = as_dict(o.get("spec")), as_dict(o.get("status"))
    ref = as_dict(spec.get("scaleTargetRef"))
    targets = []
    current = {as_dict(as_dict(m).get("resource")).get("name"): as_dict(as_dict(m).get("resource")).get("current")
               for m in as_list(st.get("currentMetrics"))}
    for m in as_list(spec.get("metrics")):
        res = as_dict(as_dict(m).get("resource"))
        target = as_dict(res.get("target"))
        if target.get("averageUtilization") is not None:
            cur = as_dict(current.get(res.get("name"))).get("averageUtilization")
            targets.append(f"{res.get('name')}: {cur if cur is not None else '<unknown>'}%/"
                           f"{target['averageUtilization']}%")
    return [o["metadata"]["name"], f"{ref.get('kind')}/{ref.get('name')}", ", ".join(targets) or "<none>",
            as_int(spec.get("minReplicas"), 1), as_int(spec.get("maxReplicas")), as_int(st.get("currentReplicas")),
            _age(o["metadata"].get("creationTimestamp"))]


def _namespace(o: dict[str, Any]) -> list[Any]:
    return [o["metadata"]["name"], as_dict(o.get("status")).get("phase", "Active"),
            _age(o["metadata"].get("creationTimestamp"))]


def _generic(o: dict[str, Any]) -> list[Any]:
    return [o["metadata"]["name"], _age(o["metadata"].get("creationTimestamp"))]


PRINTERS: dict[str, tuple[list[Col], Callable[[dict[str, Any]], list[Any]]]] = {
    "Deployment": ([_name_col(), ("Ready", "string", 0, ""), ("Up-to-date", "string", 0, ""),
                    ("Available", "string", 0, ""), _age_col(), ("Containers", "string", 1, ""),
                    ("Images", "string", 1, ""), ("Selector", "string", 1, "")], _deployment),
    "ReplicaSet": ([_name_col(), ("Desired", "integer", 0, ""), ("Current", "integer", 0, ""),
                    ("Ready", "integer", 0, ""), _age_col(), ("Containers", "string", 1, ""),
                    ("Images", "string", 1, ""), ("Selector", "string", 1, "")], _replicaset),
    "Pod": ([_name_col(), ("Ready", "string", 0, ""), ("Status", "string", 0, ""), ("Restarts", "string", 0, ""),
             _age_col(), ("IP", "string", 1, ""), ("Node", "string", 1, ""), ("Nominated Node", "string", 1, ""),
             ("Readiness Gates", "string", 1, "")], _pod),
    "Service": ([_name_col(), ("Type", "string", 0, ""), ("Cluster-IP", "string", 0, ""),
                 ("External-IP", "string", 0, ""), ("Port(s)", "string", 0, ""), _age_col(),
                 ("Selector", "string", 1, "")], _service),
    "Event": ([("Last Seen", "string", 0, ""), ("Type", "string", 0, ""), ("Reason", "string", 0, ""),
               ("Object", "string", 0, ""), ("Subobject", "string", 1, ""), ("Source", "string", 1, ""),
               ("Message", "string", 0, ""), ("First Seen", "string", 1, ""), ("Count", "string", 1, ""),
               ("Name", "string", 1, "name")], _event),
    "Job": ([_name_col(), ("Status", "string", 0, ""), ("Completions", "string", 0, ""),
             ("Duration", "string", 0, ""), _age_col(), ("Containers", "string", 1, ""), ("Images", "string", 1, ""),
             ("Selector", "string", 1, "")], _job),
    "ConfigMap": ([_name_col(), ("Data", "integer", 0, ""), _age_col()], _configmap),
    "Lease": ([_name_col(), ("Holder", "string", 0, ""), _age_col()], _lease),
    "HorizontalPodAutoscaler": ([_name_col(), ("Reference", "string", 0, ""), ("Targets", "string", 0, ""),
                                 ("MinPods", "string", 0, ""), ("MaxPods", "string", 0, ""),
                                 ("Replicas", "string", 0, ""), _age_col()], _hpa),
    "Namespace": ([_name_col(), ("Status", "string", 0, ""), _age_col()], _namespace),
}


def _partial(rt: ResourceType, o: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}


def table(rt: ResourceType, items: list[dict[str, Any]], resource_version: str, include: str = "Metadata",
          list_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    cols, fn = PRINTERS.get(rt.kind, ([_name_col(), _age_col()], _generic))
    rows = []
    for o in items:
        row: dict[str, Any] = {"cells": fn(o)}
        if include == "Object":
            full = dict(o)
            full.setdefault("kind", rt.kind)
            full.setdefault("apiVersion", rt.api_version)
            row["object"] = full
        elif include != "None":
            row["object"] = _partial(rt, o)
        rows.append(row)
    meta = dict(list_meta or {})
    meta["resourceVersion"] = resource_version
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": [{"name": n, "type": t, "format": f, "description": n, "priority": p}
                              for n, t, p, f in cols],
        "rows": rows,
    }
