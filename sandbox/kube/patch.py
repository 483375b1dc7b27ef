"""JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes strategic merge patch.

Strategic merge follows k8s.io/apimachinery/pkg/util/strategicpatch for the built-in types served here:
lists with a patch merge key (containers, env, volumes, ports, ...) merge element by element, other lists
are replaced; the `$patch` (replace/delete/merge), `$setElementOrder/<list>`, `$retainKeys` and
`$deleteFromPrimitiveList/<list>` directives are honoured.
"""

from __future__ import annotations

from typing import Any

import jsonpatch

from .util import clone


class PatchError(ValueError):
    """The patch cannot be applied (answered 422) ."""


class PatchFormatError(ValueError):
    """The patch document is malformed (answered 400)."""


# ---------------------------------------------------------------------------------------------------
# JSON patch


def json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise PatchFormatError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    for o in ops:
        if o.get("op") not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchFormatError(f"Unexpected kind: {o.get('op')}")
        if not isinstance(o.get("path"), str):
            raise PatchFormatError("missing path in operation")
    try:
        result = jsonpatch.JsonPatch(ops).apply(clone(doc), in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise PatchError(f"testing value {ops and ''}failed: {e}") from e
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
        raise PatchError(f"jsonpatch operation does not apply: {e}") from e
    except (TypeError, KeyError, IndexError, ValueError, AttributeError) as e:
        raise PatchError(f"jsonpatch operation does not apply: {e}") from e
    if not isinstance(result, dict):
        raise PatchError("jsonpatch result is not an object")
    return result


# ---------------------------------------------------------------------------------------------------
# JSON merge patch


def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


# ---------------------------------------------------------------------------------------------------
# Strategic merge patch

# field name -> patch merge key ("" = merge a list of primitives as a set)
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
    "finalizers": "",
}


def merge_key_for(path: tuple[str, ...]) -> str | None:
    if not path:
        return None
    last = path[-1]
    if last == "ports":
        parent = path[-2] if len(path) >= 2 else ""
        if parent in ("containers", "initContainers", "ephemeralContainers"):
            return "containerPort"
        if parent == "spec":
            return "port"  # ServiceSpec.ports
        return None
    if last == "conditions" and (len(path) < 2 or path[-2] != "status"):
        return None
    if last == "env" and (len(path) < 2 or path[-2] not in ("containers", "initContainers", "ephemeralContainers")):
        return None
    return _MERGE_KEYS.get(last)


_DIRECTIVE = "$patch"
_ORDER_PREFIX = "$setElementOrder/"
_DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"
_RETAIN = "$retainKeys"


def strategic_merge(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchFormatError("json: cannot unmarshal into Go value of type map[string]interface {}")
    return _merge_map(doc if isinstance(doc, dict) else {}, patch, ())


def _merge_map(original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    directive = patch.get(_DIRECTIVE)
    if directive is not None:
        if directive == "replace":
            return _strip_directives({k: v for k, v in patch.items() if k != _DIRECTIVE}, path)
        if directive == "delete":
            return None
        if directive != "merge":
            raise PatchFormatError(f"Unknown patch type: {directive} in map: {patch}")
    result = clone(original)
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchFormatError("$retainKeys must be a list")
        keep = {str(k) for k in retain}
        for k in list(result):
            if k not in keep:
                del result[k]
    orders: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k in (_DIRECTIVE, _RETAIN):
            continue
        if k.startswith(_ORDER_PREFIX):
            if not isinstance(v, list):
                raise PatchFormatError(f"{k} must be a list")
            orders[k[len(_ORDER_PREFIX):]] = v
            continue
        if k.startswith(_DELETE_PRIMITIVE_PREFIX):
            field = k[len(_DELETE_PRIMITIVE_PREFIX):]
            if not isinstance(v, list):
                raise PatchFormatError(f"{k} must be a list")
            cur = result.get(field)
            if isinstance(cur, list):
                result[field] = [x for x in cur if x not in v]
            continue
        sub = (*path, k)
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = _merge_map(result.get(k) if isinstance(result.get(k), dict) else {}, v, sub)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            key = merge_key_for(sub)
            if key is None:
                result[k] = _strip_directives(v, sub)
            else:
                result[k] = _merge_list(result.get(k) if isinstance(result.get(k), list) else [], v, key, sub)
        else:
            result[k] = v
    for field, order in orders.items():
        cur = result.get(field)
        if isinstance(cur, list):
            result[field] = _apply_order(cur, order, merge_key_for((*path, field)), patch.get(field))
    return result


def _strip_directives(value: Any, path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v, (*path, k))
            for k, v in value.items()
            if not (k in (_DIRECTIVE, _RETAIN) or k.startswith(_ORDER_PREFIX) or k.startswith(_DELETE_PRIMITIVE_PREFIX))
        }
    if isinstance(value, list):
        return [_strip_directives(v, path) for v in value
                if not (isinstance(v, dict) and v.get(_DIRECTIVE) in ("delete", "replace") and len(v) <= 2)]
    return value


def _merge_list(original: list[Any], patch: list[Any], key: str, path: tuple[str, ...]) -> list[Any]:
    if key == "":
        # set of primitives: union, keeping original order
        if any(isinstance(x, dict) and x.get(_DIRECTIVE) == "replace" for x in patch):
            return [x for x in patch if not isinstance(x, dict)]
        out = list(original)
        for x in patch:
            if isinstance(x, dict):
                continue
            if x not in out:
                out.append(x)
        return out
    if any(isinstance(x, dict) and x.get(_DIRECTIVE) == "replace" for x in patch):
        return [_strip_directives(x, path) for x in patch if not (isinstance(x, dict) and _DIRECTIVE in x)]
    result = [clone(x) for x in original]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchFormatError(f"unable to find api field in struct for the list item {item!r}")
        if key not in item:
            raise PatchFormatError(f"map: {item} does not contain declared merge key: {key}")
        kv = item[key]
        idx = next((i for i, x in enumerate(result) if isinstance(x, dict) and x.get(key) == kv), -1)
        if item.get(_DIRECTIVE) == "delete":
            if idx >= 0:
                result.pop(idx)
            continue
        if idx >= 0:
            merged = _merge_map(result[idx], item, path)
            if merged is None:
                result.pop(idx)
            else:
                result[idx] = merged
        else:
            merged = _merge_map({}, item, path)
            if merged is not None:
                result.append(merged)
    return result


def _apply_order(items: list[Any], order: list[Any], key: str | None, patch_list: Any) -> list[Any]:
    """Order items as $setElementOrder says; server-only items keep their relative position."""
    if key is None:
        return items

    def ident(x: Any) -> Any:
        if key == "":
            return x
        return x.get(key) if isinstance(x, dict) else x

    order_ids = [ident(o) for o in order]
    rank = {oid: i for i, oid in enumerate(order_ids) if isinstance(oid, str | int | float | bool)}
    in_order = [x for x in items if _hashable(ident(x)) and ident(x) in rank]
    in_order.sort(key=lambda x: rank[ident(x)])
    result: list[Any] = []
    it = iter(in_order)
    for x in items:
        if _hashable(ident(x)) and ident(x) in rank:
            result.append(next(it))
        else:
            result.append(x)
    return result


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True
