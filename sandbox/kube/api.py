"""The REST semantics of the API server on top of the store: create, get, list, update, patch, delete with
defaults, validation, generation, resourceVersion preconditions and the status subresource."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
from typing import Any

import yaml

from . import objects
from .patch import PatchError, PatchFormatError, json_patch, merge_patch, strategic_merge
from .resources import EVENTS, JOBS, NAMESPACES, PODS, REPLICASETS, SERVICES, ResourceType
from .selectors import FieldSelector, LabelSelector, selector_string
from .store import Store
from .util import (
    ApiError,
    already_exists,
    as_dict,
    bad_request,
    clone,
    conflict,
    fmt_time,
    invalid,
    new_uid,
    not_found,
    rand_suffix,
    success_status,
)

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}

# kinds whose registry strategy says AllowUnconditionalUpdate() == false: a PUT must carry a resourceVersion
NO_UNCONDITIONAL_UPDATE = {"Lease"}
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


class FieldValidation:
    """The request's fieldValidation (Warn when absent, as the apiserver defaults it) and the warnings the
    answer carries (`Warning: 299 - "unknown field \"spec.foo\""`)."""

    def __init__(self, mode: str = "Warn") -> None:
        if mode not in FIELD_VALIDATION:
            raise bad_request(f'fieldValidation must be one of "Ignore", "Strict", "Warn", got "{mode}"')
        self.mode = mode
        self.warnings: list[str] = []

    def check(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        unknown = objects.drop_unknown_fields(rt.kind, obj)
        if not unknown or self.mode == "Ignore":
            return
        words = [f'unknown field "{path}"' for path in unknown]
        if self.mode == "Strict":
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict '
                              f"decoding error: {', '.join(words)}")
        self.warnings.extend(w for w in words if w not in self.warnings)


# kinds whose metadata carries a generation
_GENERATION_KINDS = {"Deployment", "ReplicaSet", "Job", "HorizontalPodAutoscaler", "Pod"}


def _decode_rv(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        return -1


class Api:
    def __init__(self, store: Store, cluster: str):
        self.store = store
        self.cluster = cluster
        self._ip_lock = threading.Lock()
        self._next_ip = 10

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.store.lock:
            obj = self.store.get(rt, namespace, name)
            if obj is None:
                raise not_found(rt.group, rt.plural, name)
            return clone(obj)

    def list(self, rt: ResourceType, namespace: str | None, labels: LabelSelector, fields: FieldSelector,  # noqa: PLR0917
             limit: int = 0, cont: str = "") -> dict[str, Any]:
        with self.store.lock:
            items = [o for o in self.store.list(rt, namespace)
                     if labels.matches(as_dict(o.get("metadata")).get("labels")) and fields.matches(o)]
            rv = self.store.rv
            start_after = ""
            if cont:
                try:
                    token = json.loads(base64.urlsafe_b64decode(cont.encode() + b"=="))
                    start_after = str(token["start"])
                    rv = int(token["rv"])
                except (ValueError, KeyError, TypeError, binascii.Error) as e:
                    raise bad_request(f"continue key is not valid: {e}") from e
            out = [clone(o) for o in items if not start_after or _sort_key(o) > start_after]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit > 0 and len(out) > limit:
            out = out[:limit]
            token = {"v": "meta.k8s.io/v1", "rv": rv, "start": _sort_key(out[-1])}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
            meta["remainingItemCount"] = len(items) - len(out) - sum(
                1 for o in items if start_after and _sort_key(o) <= start_after)
        for o in out:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": out}

    # ------------------------------------------------------------------ writes

    def _check_body(self, rt: ResourceType, body: Any, namespace: str,
                    fields: FieldValidation | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                              "json: cannot unmarshal into Go value of type struct")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version not in (None, "") and api_version != rt.api_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                              f"version ({rt.api_version})")
        if kind not in (None, "") and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        objects.check_shape(rt.kind, rt.version, body)
        obj = objects.normalize_times(rt.kind, objects.normalize_ints(objects.strip_nulls(body)))
        if fields is not None:
            fields.check(rt, obj)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _require_namespace(self, rt: ResourceType, namespace: str) -> None:
        if rt.namespaced and self.store.get(NAMESPACES, "", namespace) is None:
            raise not_found("", "namespaces", namespace)

    def create(self, rt: ResourceType, namespace: str, body: Any, *, dry_run: bool = False,
               fields: FieldValidation | None = None) -> dict[str, Any]:
        obj = self._check_body(rt, body, namespace, fields)
        meta = obj["metadata"]
        with self.store.lock:
            self._require_namespace(rt, namespace)
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = str(meta["generateName"]) + rand_suffix()
            for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "selfLink"):
                meta.pop(k, None)
            if rt.has_status and rt.kind not in ("Namespace", "Service"):
                obj.pop("status", None)
            self._prepare_create(rt, obj)
            objects.apply_defaults(rt, obj)
            objects.validate(rt, obj)
            if self.store.get(rt, namespace, meta["name"]) is not None:
                raise already_exists(rt.group, rt.plural, meta["name"])
            meta.setdefault("uid", new_uid())
            meta["creationTimestamp"] = fmt_time()
            if rt.kind in _GENERATION_KINDS:
                meta["generation"] = 1
            if dry_run:
                return clone(obj)
            return clone(self.store.put(rt, obj))

    def _prepare_create(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if rt is JOBS:
            spec = obj.setdefault("spec", {})
            uid_label = "batch.kubernetes.io/controller-uid"
            meta.setdefault("labels", {})
            if not spec.get("manualSelector"):
                # the uid is assigned later; reserve one now so selector and labels agree
                meta["uid"] = new_uid()
                uid = meta["uid"]
                tmpl = spec.setdefault("template", {}) if isinstance(spec.get("template", {}), dict) else {}
                tmeta = tmpl.setdefault("metadata", {}) if isinstance(tmpl.get("metadata", {}), dict) else {}
                labels = tmeta.setdefault("labels", {}) if isinstance(tmeta.get("labels", {}), dict) else {}
                labels.update({uid_label: uid, "batch.kubernetes.io/job-name": meta.get("name", ""),
                               "controller-uid": uid, "job-name": meta.get("name", "")})
                spec["selector"] = {"matchLabels": {uid_label: uid}}
                for k in ("batch.kubernetes.io/job-name", "job-name"):
                    meta["labels"].setdefault(k, meta.get("name", ""))
                meta["labels"].setdefault(uid_label, uid)
                meta["labels"].setdefault("controller-uid", uid)
        elif rt is SERVICES:
            spec = obj.setdefault("spec", {})
            if not spec.get("clusterIP") and spec.get("type") != "ExternalName":
                spec["clusterIP"] = self.allocate_cluster_ip()
            if spec.get("clusterIP"):
                spec["clusterIPs"] = [spec["clusterIP"]]
        elif rt is EVENTS:
            obj.setdefault("count", 1)
            now = fmt_time()
            obj.setdefault("firstTimestamp", now)
            obj.setdefault("lastTimestamp", obj["firstTimestamp"])
            obj.setdefault("involvedObject", {})
            obj.setdefault("source", {})
        elif rt is PODS:
            obj["status"] = {"phase": "Pending", "qosClass": objects.qos_class(as_dict(obj.get("spec")))}

    def allocate_cluster_ip(self) -> str:
        with self._ip_lock:
            self._next_ip += 1
            n = self._next_ip
        return f"10.96.{n // 250}.{n % 250 + 1}"

    def update(self, rt: ResourceType, namespace: str, name: str, body: Any, *, subresource: str = "",
               dry_run: bool = False, fields: FieldValidation | None = None) -> dict[str, Any]:
        obj = self._check_body(rt, body, namespace, fields)
        meta = obj["metadata"]
        if meta.get("name") in (None, ""):
            meta["name"] = name
        if meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        with self.store.lock:
            current = self.store.get(rt, namespace, name)
            if current is None:
                raise not_found(rt.group, rt.plural, name)
            want_rv = _decode_rv(meta.get("resourceVersion"))
            if want_rv is None and rt.kind in NO_UNCONDITIONAL_UPDATE:
                raise ApiError(422, "Invalid", f'{rt.plural}.{rt.group} "{name}" is invalid: metadata.resourceVersion: '
                               "Invalid value: 0x0: must be specified for an update",
                               {"name": name, "group": rt.group, "kind": rt.plural,
                                "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be "
                                            "specified for an update", "field": "metadata.resourceVersion"}]})
            if want_rv is not None and str(want_rv) != current["metadata"]["resourceVersion"]:
                if want_rv < 0:
                    raise bad_request(f'invalid resource version: {meta.get("resourceVersion")}')
                raise conflict(rt.group, rt.plural, name)
            new = self._merge_update(rt, current, obj, subresource)
            objects.apply_defaults(rt, new)
            objects.validate(rt, new, current)
            if new == current:
                return clone(current)
            if rt.kind in _GENERATION_KINDS and subresource != "status" and \
                    _strip_gen(new.get("spec")) != _strip_gen(current.get("spec")):
                new["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
            if _same_except_rv(new, current):
                return clone(current)
            if dry_run:
                return clone(new)
            return clone(self.store.put(rt, new))

    def _merge_update(self, rt: ResourceType, current: dict[str, Any], obj: dict[str, Any],
                      subresource: str) -> dict[str, Any]:
        cmeta = current["metadata"]
        if subresource == "status":
            new = clone(current)
            new["status"] = obj.get("status", {})
            return new
        new = obj
        meta = new["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "namespace", "name"):
            if k in cmeta:
                meta[k] = cmeta[k]
            else:
                meta.pop(k, None)
        meta["resourceVersion"] = cmeta["resourceVersion"]
        if rt.has_status and rt.kind != "Namespace":
            if "status" in current:
                new["status"] = clone(current["status"])
            else:
                new.pop("status", None)
        return new

    def patch(self, rt: ResourceType, namespace: str, name: str, content_type: str, raw: bytes, *,
              subresource: str = "", dry_run: bool = False, fields: FieldValidation | None = None) -> dict[str, Any]:
        ptype = PATCH_TYPES.get(content_type.split(";", maxsplit=1)[0].strip().lower())
        if ptype is None or ptype == "apply-cbor":
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           "application/json-patch+json, application/merge-patch+json, "
                           "application/apply-patch+yaml, application/strategic-merge-patch+json")
        try:
            if ptype == "apply":
                doc = yaml.safe_load(raw.decode("utf-8")) if raw else None
            else:
                doc = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, yaml.YAMLError) as e:
            raise bad_request(f"error decoding patch: {e}") from e
        with self.store.lock:
            current = self.store.get(rt, namespace, name)
            if current is None:
                if ptype == "apply":
                    if not isinstance(doc, dict):
                        raise bad_request("error decoding YAML: object expected")
                    doc = dict(doc)
                    doc.setdefault("metadata", {})
                    if isinstance(doc["metadata"], dict):
                        doc["metadata"].setdefault("name", name)
                    return self.create(rt, namespace, doc, dry_run=dry_run, fields=fields)
                raise not_found(rt.group, rt.plural, name)
            base = clone(current)
            try:
                if ptype == "json":
                    patched = json_patch(base, doc)
                elif ptype == "merge":
                    if not isinstance(doc, dict):
                        raise bad_request("error decoding patch: json: cannot unmarshal into Go value of type "
                                          "map[string]interface {}")
                    patched = merge_patch(base, doc)
                elif ptype == "strategic":
                    patched = strategic_merge(base, doc)
                else:
                    if not isinstance(doc, dict):
                        raise bad_request("error decoding YAML: object expected")
                    patched = strategic_merge(base, doc)
            except PatchFormatError as e:
                raise bad_request(str(e)) from e
            except PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from e
            except RecursionError as e:
                raise bad_request("patch nested too deeply") from e
            if not isinstance(patched, dict):
                raise bad_request("patch result is not an object")
            pmeta = patched.get("metadata")
            if not isinstance(pmeta, dict):
                raise bad_request("metadata must be an object")
            if pmeta.get("name") != name:
                raise bad_request(f"the name of the object ({pmeta.get('name')}) does not match the name on the URL "
                                  f"({name})")
            if pmeta.get("resourceVersion") != current["metadata"]["resourceVersion"] and \
                    pmeta.get("resourceVersion") not in (None, ""):
                raise conflict(rt.group, rt.plural, name)
            pmeta["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self.update(rt, namespace, name, patched, subresource=subresource, dry_run=dry_run, fields=fields)

    def delete(self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any] | None = None, *,
               dry_run: bool = False) -> dict[str, Any]:
        options = options or {}
        with self.store.lock:
            current = self.store.get(rt, namespace, name)
            if current is None:
                raise not_found(rt.group, rt.plural, name)
            pre = as_dict(options.get("preconditions"))
            cmeta = current["metadata"]
            if pre.get("uid") not in (None, "") and pre["uid"] != cmeta.get("uid"):
                raise conflict(rt.group, rt.plural, name,
                               f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                               f"{cmeta.get('uid')}")
            if pre.get("resourceVersion") not in (None, "") and pre["resourceVersion"] != cmeta["resourceVersion"]:
                raise conflict(rt.group, rt.plural, name,
                               f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                               f"ResourceVersion in object meta: {cmeta['resourceVersion']}")
            if dry_run:
                return success_status(rt.group, rt.plural, name, cmeta.get("uid", ""))
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is True:
                policy = "Orphan"
            if policy is None and rt is JOBS:
                policy = "Orphan"  # batch/v1 Jobs orphan their pods unless told otherwise
            if policy == "Orphan":
                self._orphan_dependents(cmeta.get("uid", ""), namespace)
            if rt is PODS:
                grace = options.get("gracePeriodSeconds")
                if grace is None:
                    grace = as_dict(current.get("spec")).get("terminationGracePeriodSeconds", 30)
                running = bool(as_dict(current.get("spec")).get("nodeName")) and \
                    as_dict(current.get("status")).get("phase") not in ("Succeeded", "Failed")
                if isinstance(grace, int) and grace > 0 and running:
                    if cmeta.get("deletionTimestamp"):
                        return clone(current)
                    new = clone(current)
                    new["metadata"]["deletionTimestamp"] = fmt_time()
                    new["metadata"]["deletionGracePeriodSeconds"] = grace
                    return clone(self.store.put(rt, new))
            self.store.remove(rt, namespace, name)
            return success_status(rt.group, rt.plural, name, cmeta.get("uid", ""))

    def _orphan_dependents(self, uid: str, namespace: str) -> None:
        for rt in (REPLICASETS, PODS):
            for o in self.store.list(rt, namespace):
                refs = o["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    new = clone(o)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    if not new["metadata"]["ownerReferences"]:
                        del new["metadata"]["ownerReferences"]
                    self.store.put(rt, new)

    def delete_collection(self, rt: ResourceType, namespace: str | None, labels: LabelSelector,
                          fields: FieldSelector, options: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.store.lock:
            items = self.list(rt, namespace, labels, fields)["items"]
            for o in items:
                with contextlib.suppress(ApiError):
                    self.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], options)
            return {"kind": rt.list_kind, "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(self.store.rv)}, "items": items}

    # ------------------------------------------------------------------ scale subresource

    def get_scale(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.get(rt, namespace, name)
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        meta = obj["metadata"]
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": selector_string(spec.get("selector")).replace("<none>", "")},
        }

    def set_scale(self, rt: ResourceType, namespace: str, name: str, scale: Any, *, patch_type: str = "",
                  raw: bytes = b"", dry_run: bool = False) -> dict[str, Any]:
        with self.store.lock:
            current_scale = self.get_scale(rt, namespace, name)
            if patch_type:
                ptype = PATCH_TYPES.get(patch_type.split(";", maxsplit=1)[0].strip().lower())
                try:
                    doc = json.loads(raw.decode("utf-8"))
                    if ptype == "json":
                        scale = json_patch(current_scale, doc)
                    elif ptype in ("merge", "strategic", "apply"):
                        scale = merge_patch(current_scale, doc)
                    else:
                        raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {patch_type}")
                except (ValueError, PatchFormatError) as e:
                    raise bad_request(f"error decoding patch: {e}") from e
                except PatchError as e:
                    raise ApiError(422, "Invalid", str(e)) from e
            if not isinstance(scale, dict):
                raise bad_request("Scale in version \"v1\" cannot be handled as a Scale")
            replicas = as_dict(scale.get("spec")).get("replicas")
            if isinstance(replicas, float) and replicas.is_integer():
                replicas = int(replicas)
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                raise bad_request('Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
                                  "into Go struct field ScaleSpec.spec.replicas of type int32")
            if replicas < 0:
                raise invalid("autoscaling", "Scale", name, [("spec.replicas", "FieldValueInvalid",
                                                               f"Invalid value: {replicas}: must be greater than "
                                                               "or equal to 0")])
            want_rv = as_dict(scale.get("metadata")).get("resourceVersion")
            current = self.store.get(rt, namespace, name)
            assert current is not None
            if want_rv not in (None, "") and want_rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt.group, rt.plural, name)
            new = clone(current)
            new["spec"]["replicas"] = replicas
            self.update(rt, namespace, name, new, dry_run=dry_run)
            return self.get_scale(rt, namespace, name)


def _sort_key(o: dict[str, Any]) -> str:
    m = o["metadata"]
    return f"{m.get('namespace', '')}/{m['name']}"


def _strip_gen(spec: Any) -> Any:
    return objects.strip_nulls(spec) if spec is not None else None


def _same_except_rv(a: dict[str, Any], b: dict[str, Any]) -> bool:
    a2 = dict(a, metadata={k: v for k, v in a["metadata"].items() if k != "resourceVersion"})
    b2 = dict(b, metadata={k: v for k, v in b["metadata"].items() if k != "resourceVersion"})
    return a2 == b2
