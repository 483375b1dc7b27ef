"""The resource types the sandbox serves, and the discovery documents built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # subresource name -> (kind, verbs, group, version) ; group/version None = same as parent
    subresources: dict[str, tuple[str, tuple[str, ...], str | None, str | None]] = field(default_factory=dict)
    has_status: bool = False
    verbs: tuple[str, ...] = ALL_VERBS
    review: bool = False  # a create-only review (SelfSubjectAccessReview ...): answered, never stored

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def discovery(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {
                "name": self.plural,
                "singularName": self.singular,
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(self.verbs),
            }
        ]
        if self.short_names:
            out[0]["shortNames"] = list(self.short_names)
        if self.categories:
            out[0]["categories"] = list(self.categories)
        for sub, (kind, verbs, group, version) in self.subresources.items():
            entry: dict[str, Any] = {
                "name": f"{self.plural}/{sub}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if group is not None:
                entry["group"] = group
                entry["version"] = version
            out.append(entry)
        return out


_STATUS = ("Pod", ("get", "patch", "update"), None, None)
_SCALE = ("Scale", ("get", "patch", "update"), "autoscaling", "v1")
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", "namespace", namespaced=False, short_names=("ns",),
                 subresources={"status": ("Namespace", ("get", "patch", "update"), None, None)}, has_status=True),
    ResourceType("", "v1", "Pod", "pods", "pod", short_names=("po",), categories=("all",), has_status=True,
                 subresources={"status": _STATUS, "log": ("Pod", ("get",), None, None),
                               "proxy": ("PodProxyOptions", _PROXY_VERBS, None, None),
                               "exec": ("PodExecOptions", ("create", "get"), None, None),
                               "attach": ("PodAttachOptions", ("create", "get"), None, None),
                               "portforward": ("PodPortForwardOptions", ("create", "get"), None, None)}),
    ResourceType("", "v1", "Event", "events", "event", short_names=("ev",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", short_names=("cm",)),
    ResourceType("", "v1", "Service", "services", "service", short_names=("svc",), categories=("all",),
                 has_status=True,
                 subresources={"status": ("Service", ("get", "patch", "update"), None, None),
                               "proxy": ("ServiceProxyOptions", _PROXY_VERBS, None, None)}),
    ResourceType("apps", "v1", "Deployment", "deployments", "deployment", short_names=("deploy",),
                 categories=("all",), has_status=True,
                 subresources={"status": ("Deployment", ("get", "patch", "update"), None, None),
                               "scale": _SCALE}),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", short_names=("rs",),
                 categories=("all",), has_status=True,
                 subresources={"status": ("ReplicaSet", ("get", "patch", "update"), None, None),
                               "scale": _SCALE}),
    ResourceType("batch", "v1", "Job", "jobs", "job", categories=("all",), has_status=True,
                 subresources={"status": ("Job", ("get", "patch", "update"), None, None)}),
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                 "horizontalpodautoscaler", short_names=("hpa",), categories=("all",), has_status=True,
                 subresources={"status": ("HorizontalPodAutoscaler", ("get", "patch", "update"), None, None)}),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease"),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "",
                 namespaced=False, verbs=("create",), review=True),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "",
                 namespaced=False, verbs=("create",), review=True),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "",
                 namespaced=False, verbs=("create",), review=True),
)

BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES}
BY_KIND: dict[str, ResourceType] = {r.kind: r for r in RESOURCES}

NAMESPACES = BY_KEY["/namespaces"]
PODS = BY_KEY["/pods"]
EVENTS = BY_KEY["/events"]
CONFIGMAPS = BY_KEY["/configmaps"]
SERVICES = BY_KEY["/services"]
DEPLOYMENTS = BY_KEY["apps/deployments"]
REPLICASETS = BY_KEY["apps/replicasets"]
JOBS = BY_KEY["batch/jobs"]
HPAS = BY_KEY["autoscaling/horizontalpodautoscalers"]
LEASES = BY_KEY["coordination.k8s.io/leases"]


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    rt = BY_KEY.get(f"{group}/{plural}")
    if rt is None or rt.version != version:
        return None
    return rt


def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group:
            versions = out.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
    return out


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> dict[str, Any]:
    items = []
    for name, versions in groups().items():
        g = api_group(name, versions)
        del g["kind"], g["apiVersion"]
        items.append(g)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": items}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    if not rs:
        return None
    resources: list[dict[str, Any]] = []
    for r in rs:
        resources.extend(r.discovery())
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def openapi_v3_root() -> dict[str, Any]:
    """Just enough OpenAPI v3 for kubectl to learn that the server validates fields itself
    (kubectl's QueryParamVerifierV3), so `kubectl apply/create` need no client-side schemas."""
    paths = {}
    gvs = {("", "v1")} | {(r.group, r.version) for r in RESOURCES}
    for group, version in sorted(gvs):
        key = f"apis/{group}/{version}" if group else f"api/{version}"
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash=sandbox"}
    return {"paths": paths}


def openapi_v3_group(group: str, version: str) -> dict[str, Any] | None:
    rs = [r for r in RESOURCES if r.group == group and r.version == version]
    if not rs:
        return None
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
              for n in ("dryRun", "fieldManager", "fieldValidation", "pretty")]
    paths: dict[str, Any] = {}
    for r in rs:
        gvk = {"group": group, "version": version, "kind": r.kind}
        prefix = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
        ok = {"responses": {"200": {"description": "OK"}}, "x-kubernetes-group-version-kind": gvk,
              "parameters": params}
        paths[prefix] = {"parameters": params, "post": dict(ok, operationId=f"create{r.kind}", **{
            "x-kubernetes-action": "post"})}
        paths[prefix + "/{name}"] = {
            "parameters": params,
            "put": dict(ok, operationId=f"replace{r.kind}", **{"x-kubernetes-action": "put"}),
            "patch": dict(ok, operationId=f"patch{r.kind}", **{
                "x-kubernetes-action": "patch",
                "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in (
                    "application/json-patch+json", "application/merge-patch+json",
                    "application/strategic-merge-patch+json", "application/apply-patch+yaml")}}}),
        }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.36.2-sandbox"}, "paths": paths,
            "components": {"schemas": {}}}
