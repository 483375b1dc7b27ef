"""Per-kind knowledge: the typed shape of objects (decode errors -> 400), server-side defaults, validation
(-> 422 Invalid with field causes), and the pod-template hash the deployment controller uses."""

from __future__ import annotations

import json
import re
from typing import Any

from .resources import ResourceType
from .selectors import from_label_selector, valid_label_key, valid_label_value
from .util import ApiError, as_dict, as_list, clone, fmt_micro, fmt_time, invalid, parse_time, safe_hash

# ---------------------------------------------------------------------------------------------------
# Shapes. Leaf codes: s=string i=int32/64 b=bool q=quantity(int|str) is=int-or-string t=time o=object a=any
STR, INT, BOOL, QTY, INTSTR, TIME, OBJ, ANY = "s", "i", "b", "q", "is", "t", "o", "a"
MICRO = "mt"  # metav1.MicroTime (TIME is metav1.Time: second precision)

OWNER_REF = {"apiVersion": STR, "kind": STR, "name": STR, "uid": STR, "controller": BOOL, "blockOwnerDeletion": BOOL}
META = {
    "name": STR, "generateName": STR, "namespace": STR, "uid": STR, "resourceVersion": STR, "generation": INT,
    "labels": {"*": STR}, "annotations": {"*": STR}, "ownerReferences": [OWNER_REF], "finalizers": [STR],
    "creationTimestamp": TIME, "deletionTimestamp": TIME, "deletionGracePeriodSeconds": INT, "selfLink": STR,
    "managedFields": [OBJ],
}
LABEL_SELECTOR = {"matchLabels": {"*": STR}, "matchExpressions": [{"key": STR, "operator": STR, "values": [STR]}]}
HANDLER = {"path": STR, "port": INTSTR, "host": STR, "scheme": STR, "httpHeaders": [{"name": STR, "value": STR}]}
PROBE = {
    "httpGet": HANDLER, "tcpSocket": {"port": INTSTR, "host": STR}, "exec": {"command": [STR]},
    "grpc": {"port": INT, "service": STR}, "initialDelaySeconds": INT, "timeoutSeconds": INT, "periodSeconds": INT,
    "successThreshold": INT, "failureThreshold": INT, "terminationGracePeriodSeconds": INT,
}
ENV_VAR = {
    "name": STR, "value": STR,
    "valueFrom": {
        "configMapKeyRef": {"name": STR, "key": STR, "optional": BOOL},
        "secretKeyRef": {"name": STR, "key": STR, "optional": BOOL},
        "fieldRef": {"apiVersion": STR, "fieldPath": STR},
        "resourceFieldRef": {"containerName": STR, "resource": STR, "divisor": QTY},
        "fileKeyRef": OBJ,
    },
}
CONTAINER = {
    "name": STR, "image": STR, "command": [STR], "args": [STR], "workingDir": STR,
    "ports": [{"name": STR, "containerPort": INT, "hostPort": INT, "protocol": STR, "hostIP": STR}],
    "env": [ENV_VAR], "envFrom": [OBJ],
    "resources": {"limits": {"*": QTY}, "requests": {"*": QTY}, "claims": [OBJ]},
    "volumeMounts": [{"name": STR, "mountPath": STR, "subPath": STR, "readOnly": BOOL, "recursiveReadOnly": STR,
                      "mountPropagation": STR, "subPathExpr": STR}],
    "volumeDevices": [OBJ], "resizePolicy": [OBJ], "restartPolicyRules": [OBJ], "stdinOnce": BOOL,
    "livenessProbe": PROBE, "readinessProbe": PROBE, "startupProbe": PROBE, "lifecycle": OBJ,
    "terminationMessagePath": STR, "terminationMessagePolicy": STR, "imagePullPolicy": STR,
    "securityContext": OBJ, "stdin": BOOL, "tty": BOOL, "restartPolicy": STR,
}
_OTHER_VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd",
    "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image")
VOLUME = {
    "name": STR,
    "configMap": {"name": STR, "items": [{"key": STR, "path": STR, "mode": INT}], "defaultMode": INT, "optional": BOOL},
    "secret": {"secretName": STR, "items": [{"key": STR, "path": STR, "mode": INT}], "defaultMode": INT,
               "optional": BOOL},
    "emptyDir": {"medium": STR, "sizeLimit": QTY}, "projected": OBJ, "persistentVolumeClaim": OBJ, "downwardAPI": OBJ,
    **dict.fromkeys(_OTHER_VOLUME_SOURCES, OBJ),
}
POD_SPEC = {
    "containers": [CONTAINER], "initContainers": [CONTAINER], "ephemeralContainers": [OBJ], "volumes": [VOLUME],
    "restartPolicy": STR, "terminationGracePeriodSeconds": INT, "activeDeadlineSeconds": INT, "dnsPolicy": STR,
    "nodeSelector": {"*": STR}, "serviceAccountName": STR, "serviceAccount": STR, "nodeName": STR, "hostNetwork": BOOL,
    "securityContext": OBJ, "imagePullSecrets": [{"name": STR}], "schedulerName": STR, "tolerations": [OBJ],
    "affinity": OBJ, "priority": INT, "priorityClassName": STR, "enableServiceLinks": BOOL, "preemptionPolicy": STR,
    "automountServiceAccountToken": BOOL, "hostname": STR, "subdomain": STR, "topologySpreadConstraints": [OBJ],
    "hostPID": BOOL, "hostIPC": BOOL, "shareProcessNamespace": BOOL, "hostAliases": [OBJ], "dnsConfig": OBJ,
    "readinessGates": [OBJ], "runtimeClassName": STR, "overhead": {"*": QTY}, "setHostnameAsFQDN": BOOL, "os": OBJ,
    "hostUsers": BOOL, "schedulingGates": [OBJ], "resourceClaims": [OBJ], "resources": OBJ, "hostnameOverride": STR,
}
POD_TEMPLATE = {"metadata": META, "spec": POD_SPEC}
CONDITION = {"type": STR, "status": STR, "reason": STR, "message": STR, "lastUpdateTime": TIME,
             "lastTransitionTime": TIME,
             "lastProbeTime": TIME, "observedGeneration": INT}
CONTAINER_STATE = {
    "waiting": {"reason": STR, "message": STR},
    "running": {"startedAt": TIME},
    "terminated": {"exitCode": INT, "signal": INT, "reason": STR, "message": STR, "startedAt": TIME, "finishedAt": TIME,
                   "containerID": STR},
}
CONTAINER_STATUS = {"name": STR, "image": STR, "imageID": STR, "containerID": STR, "ready": BOOL, "started": BOOL,
                    "restartCount": INT, "state": CONTAINER_STATE, "lastState": CONTAINER_STATE}

SHAPES: dict[str, dict[str, Any]] = {
    "Deployment": {
        "spec": {"replicas": INT, "selector": LABEL_SELECTOR, "template": POD_TEMPLATE,
                 "strategy": {"type": STR, "rollingUpdate": {"maxSurge": INTSTR, "maxUnavailable": INTSTR}},
                 "minReadySeconds": INT, "revisionHistoryLimit": INT, "paused": BOOL, "progressDeadlineSeconds": INT},
        "status": {"observedGeneration": INT, "replicas": INT, "updatedReplicas": INT, "readyReplicas": INT,
                   "availableReplicas": INT, "unavailableReplicas": INT, "terminatingReplicas": INT,
                   "conditions": [CONDITION], "collisionCount": INT},
    },
    "ReplicaSet": {
        "spec": {"replicas": INT, "minReadySeconds": INT, "selector": LABEL_SELECTOR, "template": POD_TEMPLATE},
        "status": {"replicas": INT, "fullyLabeledReplicas": INT, "readyReplicas": INT, "availableReplicas": INT,
                   "terminatingReplicas": INT, "observedGeneration": INT, "conditions": [CONDITION]},
    },
    "Pod": {
        "spec": POD_SPEC,
        "status": {"phase": STR, "conditions": [CONDITION], "message": STR, "reason": STR, "hostIP": STR, "podIP": STR,
                   "podIPs": [{"ip": STR}], "hostIPs": [{"ip": STR}], "startTime": TIME, "qosClass": STR,
                   "containerStatuses": [CONTAINER_STATUS], "initContainerStatuses": [CONTAINER_STATUS]},
    },
    "Job": {
        "spec": {"parallelism": INT, "completions": INT, "activeDeadlineSeconds": INT, "backoffLimit": INT,
                 "selector": LABEL_SELECTOR, "manualSelector": BOOL, "template": POD_TEMPLATE,
                 "ttlSecondsAfterFinished": INT, "completionMode": STR, "suspend": BOOL, "podReplacementPolicy": STR,
                 "backoffLimitPerIndex": INT, "maxFailedIndexes": INT, "podFailurePolicy": OBJ, "successPolicy": OBJ,
                 "managedBy": STR},
        "status": {"conditions": [CONDITION], "startTime": TIME, "completionTime": TIME, "active": INT,
                   "succeeded": INT,
                   "failed": INT, "ready": INT, "terminating": INT, "uncountedTerminatedPods": OBJ},
    },
    "Service": {
        "spec": {"ports": [{"name": STR, "protocol": STR, "port": INT, "targetPort": INTSTR, "nodePort": INT,
                            "appProtocol": STR}],
                 "selector": {"*": STR}, "clusterIP": STR, "clusterIPs": [STR], "type": STR, "sessionAffinity": STR,
                 "externalIPs": [STR], "ipFamilies": [STR], "ipFamilyPolicy": STR, "internalTrafficPolicy": STR,
                 "externalName": STR, "publishNotReadyAddresses": BOOL, "loadBalancerIP": STR,
                 "loadBalancerSourceRanges": [STR], "externalTrafficPolicy": STR, "healthCheckNodePort": INT,
                 "sessionAffinityConfig": OBJ, "allocateLoadBalancerNodePorts": BOOL, "loadBalancerClass": STR,
                 "trafficDistribution": STR},
        "status": OBJ,
    },
    "ConfigMap": {"data": {"*": STR}, "binaryData": {"*": STR}, "immutable": BOOL},
    "Lease": {"spec": {"holderIdentity": STR, "leaseDurationSeconds": INT, "acquireTime": MICRO, "renewTime": MICRO,
                       "leaseTransitions": INT, "strategy": STR, "preferredHolder": STR}},
    "HorizontalPodAutoscaler": {
        "spec": {"scaleTargetRef": {"apiVersion": STR, "kind": STR, "name": STR}, "minReplicas": INT,
                 "maxReplicas": INT,
                 "metrics": [OBJ], "behavior": OBJ},
        "status": {"observedGeneration": INT, "lastScaleTime": TIME, "currentReplicas": INT, "desiredReplicas": INT,
                   "currentMetrics": [OBJ], "conditions": [CONDITION]},
    },
    "Event": {
        "involvedObject": {"kind": STR, "namespace": STR, "name": STR, "uid": STR, "apiVersion": STR,
                           "resourceVersion": STR, "fieldPath": STR},
        "reason": STR, "message": STR, "source": {"component": STR, "host": STR}, "firstTimestamp": TIME,
        "lastTimestamp": TIME, "count": INT, "type": STR, "eventTime": MICRO, "series": OBJ, "action": STR,
        "related": OBJ,
        "reportingComponent": STR, "reportingInstance": STR,
    },
    "Namespace": {"spec": {"finalizers": [STR]}, "status": {"phase": STR, "conditions": [OBJ]}},
}

_GO = {STR: "string", INT: "int32", BOOL: "bool", QTY: "resource.Quantity", INTSTR: "intstr.IntOrString",
       TIME: "v1.Time", MICRO: "v1.MicroTime",
       OBJ: "map[string]interface {}"}


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def strip_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [strip_nulls(x) for x in v if x is not None]
    return v


def check_shape(kind: str, version: str, obj: dict[str, Any]) -> None:
    """Raise 400 BadRequest the way the apiserver's JSON decoder would."""
    shape = {"apiVersion": STR, "kind": STR, "metadata": META, **SHAPES.get(kind, {})}

    def fail(path: str, value: Any, code: Any) -> None:
        gotype = _GO.get(code, "[]interface {}" if isinstance(code, list) else "struct") if isinstance(code, str) \
            else ("[]" + "struct" if isinstance(code, list) else "map[string]interface {}")
        raise ApiError(
            400, "BadRequest",
            f'{kind} in version "{version}" cannot be handled as a {kind}: json: cannot unmarshal '
            f"{_json_type(value)} into Go struct field {kind}.{path} of type {gotype}",
        )

    def walk(value: Any, code: Any, path: str) -> None:
        if value is None:
            return
        if isinstance(code, dict):
            if not isinstance(value, dict):
                fail(path, value, code)
            if "*" in code and len(code) == 1:
                for v in value.values():
                    walk(v, code["*"], path)
                return
            for k, sub in code.items():
                if k in value:
                    walk(value[k], sub, f"{path}.{k}" if path else k)
            return
        if isinstance(code, list):
            if not isinstance(value, list):
                fail(path, value, code)
            for v in value:
                walk(v, code[0], path)
            return
        if code == STR and not isinstance(value, str):
            fail(path, value, code)
        elif code == INT:
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    (isinstance(value, float) and not value.is_integer()) or abs(value) > 2**53:
                fail(path, value, code)
        elif code == BOOL and not isinstance(value, bool):
            fail(path, value, code)
        elif code in (QTY, INTSTR):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                fail(path, value, code)
        elif code in (TIME, MICRO):
            if not isinstance(value, str) or parse_time(value) is None:
                if isinstance(value, str):
                    raise ApiError(400, "BadRequest", f'{kind} in version "{version}" cannot be handled as a '
                                   f'{kind}: parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse')
                fail(path, value, code)
        elif code == OBJ and not isinstance(value, dict):
            fail(path, value, code)

    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", f'{kind} in version "{version}" cannot be handled as a {kind}: '
                       f"json: cannot unmarshal {_json_type(obj)} into Go value of type struct")
    walk(obj, shape, "")


def drop_unknown_fields(kind: str, obj: dict[str, Any]) -> list[str]:
    """Remove the fields the kind's schema does not declare, as the apiserver's decoder does, and return
    their paths the way it reports them (`spec.foo`, `spec.template.spec.containers[0].bar`). Status
    subtrees are left alone (a write to the main resource ignores them, and their shapes here are partial)."""
    shape = {"apiVersion": STR, "kind": STR, "metadata": META, **SHAPES.get(kind, {})}
    found: list[str] = []

    def walk(value: Any, code: Any, path: str) -> None:
        if isinstance(code, dict) and isinstance(value, dict):
            if "*" in code and len(code) == 1:
                for key, inner in value.items():
                    walk(inner, code["*"], f"{path}.{key}")
                return
            for key in list(value):
                sub = f"{path}.{key}" if path else key
                if key not in code:
                    found.append(sub)
                    del value[key]
                elif not (path == "" and key == "status"):
                    walk(value[key], code[key], sub)
        elif isinstance(code, list) and isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, code[0], f"{path}[{index}]")

    if kind in SHAPES:
        walk(obj, shape, "")
    return found


def normalize_times(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Times as the server writes them back: RFC 3339 in UTC, seconds for Time, microseconds for MicroTime."""
    shape = {"metadata": META, **SHAPES.get(kind, {})}

    def walk(value: Any, code: Any) -> Any:
        if isinstance(code, dict) and isinstance(value, dict):
            if "*" in code and len(code) == 1:
                return value
            for k, sub in code.items():
                if k in value:
                    value[k] = walk(value[k], sub)
            return value
        if isinstance(code, list) and isinstance(value, list):
            return [walk(v, code[0]) for v in value]
        if code in (TIME, MICRO) and isinstance(value, str):
            t = parse_time(value)
            if t is not None:
                return fmt_micro(t) if code == MICRO else fmt_time(t)
        return value

    return walk(obj, shape)  # type: ignore[no-any-return]


def normalize_ints(v: Any) -> Any:
    """Floats that are whole numbers become ints (JSON numbers decoded into int32 fields)."""
    if isinstance(v, dict):
        return {k: normalize_ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normalize_ints(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


# ---------------------------------------------------------------------------------------------------
# Defaults (pkg/apis/*/v1/defaults.go)


def _default_probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    p.setdefault("timeoutSeconds", 1)
    p.setdefault("periodSeconds", 10)
    p.setdefault("successThreshold", 1)
    p.setdefault("failureThreshold", 3)
    if isinstance(p.get("httpGet"), dict):
        p["httpGet"].setdefault("scheme", "HTTP")


def image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return ""
    return last.split(":", 1)[1] if ":" in last else ""


def _default_container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in c:
        tag = image_tag(str(c.get("image", "")))
        c["imagePullPolicy"] = "Always" if tag in ("", "latest") and "@" not in str(c.get("image", "")) \
            else "IfNotPresent"
    c.setdefault("resources", {})
    for port in as_list(c.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in as_list(c.get("env")):
        ref = as_dict(as_dict(as_dict(env).get("valueFrom")).get("fieldRef"))
        if ref:
            ref.setdefault("apiVersion", "v1")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(key))


def default_pod_spec(spec: dict[str, Any], *, pod: bool = False) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in as_list(spec.get("containers")) + as_list(spec.get("initContainers")):
        if isinstance(c, dict):
            _default_container(c)
    for v in as_list(spec.get("volumes")):
        if isinstance(v, dict):
            for src in ("configMap", "secret"):
                if isinstance(v.get(src), dict):
                    v[src].setdefault("defaultMode", 420)
    if pod:
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec.setdefault("tolerations", [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
        ])


def _default_template(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    tmpl = spec.setdefault("template", {})
    if isinstance(tmpl, dict):
        tmpl.setdefault("metadata", {})
        default_pod_spec(tmpl.setdefault("spec", {}))


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    kind = rt.kind
    if kind == "Deployment":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _default_template(obj)
        obj.setdefault("status", {})
    elif kind == "ReplicaSet":
        obj.setdefault("spec", {}).setdefault("replicas", 1)
        _default_template(obj)
        obj.setdefault("status", {"replicas": 0})
        obj["status"].setdefault("replicas", 0)
    elif kind == "Pod":
        default_pod_spec(obj.setdefault("spec", {}), pod=True)
        obj.setdefault("status", {"phase": "Pending", "qosClass": qos_class(obj["spec"])})
    elif kind == "Job":
        spec = obj.setdefault("spec", {})
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        _default_template(obj)
        obj.setdefault("status", {})
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in as_list(spec.get("ports")):
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "targetPort" not in p and "port" in p:
                    p["targetPort"] = p["port"]
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "HorizontalPodAutoscaler":
        obj.setdefault("spec", {}).setdefault("minReplicas", 1)
        obj.setdefault("status", {"desiredReplicas": 0, "currentReplicas": 0})
        obj["status"].setdefault("desiredReplicas", 0)
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        name = obj.get("metadata", {}).get("name")
        if name:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif kind == "Lease":
        obj.setdefault("spec", {})


def qos_class(spec: dict[str, Any]) -> str:
    containers = [c for c in as_list(spec.get("containers")) if isinstance(c, dict)]
    any_set = False
    guaranteed = bool(containers)
    for c in containers:
        res = as_dict(c.get("resources"))
        lim, req = as_dict(res.get("limits")), as_dict(res.get("requests"))
        if lim or req:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if guaranteed and any_set:
        return "Guaranteed"
    return "Burstable" if any_set else "BestEffort"


# ---------------------------------------------------------------------------------------------------
# Validation (pkg/apis/*/validation)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CM_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS_LABEL_KINDS = {"Namespace", "Service"}

Cause = tuple[str, str, str]


def _required(field: str) -> Cause:
    return (field, "FieldValueRequired", "Required value")


def _invalid(field: str, value: Any, msg: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {_go_repr(value)}: {msg}")


def _go_repr(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))}:{json.dumps(str(v))}" for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}"
    return str(value)


def validate_name(kind: str, name: str, field: str = "metadata.name") -> list[Cause]:
    if kind in _DNS_LABEL_KINDS:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            return [_invalid(field, name, "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                             "characters or '-', and must start and end with an alphanumeric character (e.g. "
                             "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]
        return []
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [_invalid(field, name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                         "'example.com', regex used for validation is "
                         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]
    return []


def _validate_labels(labels: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    for k, v in as_dict(labels).items():
        if not valid_label_key(str(k)):
            causes.append(_invalid(field, k, "name part must consist of alphanumeric characters, '-', '_' or "
                                   "'.', and must start and end with an alphanumeric character"))
        elif not valid_label_value(str(v)):
            causes.append(_invalid(f"{field}", v, "a valid label must be an empty string or consist of "
                                   "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                                   "alphanumeric character"))
    return causes


def _validate_containers(spec: dict[str, Any], field: str) -> list[Cause]:
    causes: list[Cause] = []
    containers = as_list(spec.get("containers"))
    if not containers:
        return [_required(f"{field}.containers")]
    seen: set[str] = set()
    for i, c in enumerate(containers):
        c = as_dict(c)
        f = f"{field}.containers[{i}]"
        name = c.get("name")
        if not name:
            causes.append(_required(f"{f}.name"))
        elif not _DNS_LABEL.match(name) or len(name) > 63:
            causes.append(_invalid(f"{f}.name", name, "a lowercase RFC 1123 label must consist of lower case "
                                   "alphanumeric characters or '-', and must start and end with an alphanumeric "
                                   "character"))
        elif name in seen:
            causes.append((f"{f}.name", "FieldValueDuplicate", f"Duplicate value: {json.dumps(name)}"))
        else:
            seen.add(name)
        image = c.get("image")
        if not image or not str(image).strip():
            causes.append(_required(f"{f}.image"))
        for j, p in enumerate(as_list(c.get("ports"))):
            cp = as_dict(p).get("containerPort")
            if not isinstance(cp, int) or not 1 <= cp <= 65535:
                causes.append(_invalid(f"{f}.ports[{j}].containerPort", cp, "must be between 1 and 65535, "
                                       "inclusive"))
        for j, e in enumerate(as_list(c.get("env"))):
            if not as_dict(e).get("name"):
                causes.append(_required(f"{f}.env[{j}].name"))
        policy = c.get("imagePullPolicy")
        if policy not in (None, "Always", "IfNotPresent", "Never"):
            causes.append((f"{f}.imagePullPolicy", "FieldValueNotSupported",
                           f'Unsupported value: {json.dumps(policy)}: supported values: "Always", '
                           '"IfNotPresent", "Never"'))
    volumes = {as_dict(v).get("name") for v in as_list(spec.get("volumes"))}
    for i, c in enumerate(containers):
        for j, m in enumerate(as_list(as_dict(c).get("volumeMounts"))):
            if as_dict(m).get("name") not in volumes:
                causes.append((f"{field}.containers[{i}].volumeMounts[{j}].name", "FieldValueNotFound",
                               f"Not found: {json.dumps(as_dict(m).get('name'))}"))
    return causes


def _validate_template(obj: dict[str, Any], allowed_restart: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    spec = as_dict(obj.get("spec"))
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        return [_required("spec.template")]
    tmeta = as_dict(tmpl.get("metadata"))
    causes += _validate_labels(tmeta.get("labels"), "spec.template.metadata.labels")
    tspec = as_dict(tmpl.get("spec"))
    causes += _validate_containers(tspec, "spec.template.spec")
    rp = tspec.get("restartPolicy")
    if rp not in allowed_restart:
        supported = ", ".join(json.dumps(x) for x in allowed_restart)
        if rp is None:
            causes.append(("spec.template.spec.restartPolicy", "FieldValueRequired",
                           f"Required value: valid values: {supported}"))
        else:
            causes.append(("spec.template.spec.restartPolicy", "FieldValueNotSupported",
                           f"Unsupported value: {json.dumps(rp)}: supported values: {supported}"))
    return causes


def _validate_selector_matches(obj: dict[str, Any]) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    sel = spec.get("selector")
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return [_required("spec.selector"), ("spec.selector", "FieldValueInvalid",
                                             "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                                             "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector "
                                             "is invalid for deployment")]
    for i, expr in enumerate(as_list(sel.get("matchExpressions"))):
        op = as_dict(expr).get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return [(f"spec.selector.matchExpressions[{i}].operator", "FieldValueInvalid",
                     f"Invalid value: {json.dumps(op)}: not a valid selector operator")]
    labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
    if not from_label_selector(sel).matches(labels):
        return [_invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")]
    return []


def _nonneg(obj: dict[str, Any], field: str) -> list[Cause]:
    v = as_dict(obj.get("spec")).get(field)
    if isinstance(v, int) and v < 0:
        return [_invalid(f"spec.{field}", v, "must be greater than or equal to 0")]
    return []


def _int_or_percent(v: Any, total: int, round_up: bool) -> int:
    if isinstance(v, int):
        return v
    text = str(v)
    if text.endswith("%"):
        try:
            pct = int(text[:-1])
        except ValueError:
            return 0
        val = pct * total / 100
        return int(-(-val // 1)) if round_up else int(val // 1)
    try:
        return int(text)
    except ValueError:
        return 0


def resolve_surge_unavailable(d: dict[str, Any]) -> tuple[int, int]:
    """deploymentutil.ResolveFenceposts."""
    spec = as_dict(d.get("spec"))
    replicas = spec.get("replicas", 1) if isinstance(spec.get("replicas"), int) else 1
    ru = as_dict(as_dict(spec.get("strategy")).get("rollingUpdate"))
    surge = _int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = _int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


_PCT = re.compile(r"^(\d+)%$")


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    kind = rt.kind
    meta = as_dict(obj.get("metadata"))
    name = str(meta.get("name") or "")
    causes: list[Cause] = []
    if not name:
        causes.append(("metadata.name", "FieldValueRequired",
                       "Required value: name or generateName is required"))
    else:
        causes += validate_name(kind, name)
    causes += _validate_labels(meta.get("labels"), "metadata.labels")
    spec = as_dict(obj.get("spec"))
    if kind == "Deployment":
        causes += _nonneg(obj, "replicas") + _nonneg(obj, "minReadySeconds")
        causes += _nonneg(obj, "revisionHistoryLimit")
        causes += _validate_selector_matches(obj)
        causes += _validate_template(obj, ("Always",))
        strategy = as_dict(spec.get("strategy"))
        stype = strategy.get("type")
        if stype not in ("RollingUpdate", "Recreate"):
            causes.append(("spec.strategy.type", "FieldValueNotSupported",
                           f'Unsupported value: {json.dumps(stype)}: supported values: "Recreate", "RollingUpdate"'))
        elif stype == "Recreate" and strategy.get("rollingUpdate"):
            causes.append(("spec.strategy.rollingUpdate", "FieldValueForbidden",
                           "Forbidden: may not be specified when strategy `type` is 'Recreate'"))
        elif stype == "RollingUpdate":
            ru = as_dict(strategy.get("rollingUpdate"))
            for f in ("maxSurge", "maxUnavailable"):
                v = ru.get(f)
                if isinstance(v, str) and not _PCT.match(v):
                    causes.append(_invalid(f"spec.strategy.rollingUpdate.{f}", v,
                                           "a valid percent string must be a numeric string followed by an "
                                           "ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                                           "'[0-9]+%')"))
                elif isinstance(v, int) and v < 0:
                    causes.append(_invalid(f"spec.strategy.rollingUpdate.{f}", v,
                                           "must be greater than or equal to 0"))
            if not causes and _int_or_percent(ru.get("maxSurge", 0), 100, True) == 0 and \
                    _int_or_percent(ru.get("maxUnavailable", 0), 100, False) == 0:
                causes.append(_invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                                       "may not be 0 when `maxSurge` is 0"))
        pds = spec.get("progressDeadlineSeconds")
        if isinstance(pds, int) and pds <= as_dict(spec).get("minReadySeconds", 0):
            causes.append(_invalid("spec.progressDeadlineSeconds", pds,
                                   "must be greater than minReadySeconds"))
        if old is not None and as_dict(old.get("spec")).get("selector") != spec.get("selector"):
            causes.append(_invalid("spec.selector", spec.get("selector"), "field is immutable"))
    elif kind == "ReplicaSet":
        causes += _nonneg(obj, "replicas")
        causes += _validate_selector_matches(obj)
        causes += _validate_template(obj, ("Always",))
    elif kind == "Pod":
        causes += _validate_containers(spec, "spec")
        rp = spec.get("restartPolicy")
        if rp not in ("Always", "OnFailure", "Never"):
            causes.append(("spec.restartPolicy", "FieldValueNotSupported",
                           f'Unsupported value: {json.dumps(rp)}: supported values: "Always", "OnFailure", "Never"'))
    elif kind == "Job":
        for f in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
            causes += _nonneg(obj, f)
        causes += _validate_template(obj, ("OnFailure", "Never"))
        if old is not None:
            if as_dict(old.get("spec")).get("selector") != spec.get("selector"):
                causes.append(_invalid("spec.selector", spec.get("selector"), "field is immutable"))
            old_t = strip_nulls(clone(as_dict(old.get("spec")).get("template")))
            if old_t != strip_nulls(clone(spec.get("template"))):
                causes.append(("spec.template", "FieldValueInvalid", "Invalid value: core.PodTemplateSpec{...}: "
                               "field is immutable"))
    elif kind == "Service":
        ports = as_list(spec.get("ports"))
        if not ports and spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
            causes.append(_required("spec.ports"))
        for i, p in enumerate(ports):
            port = as_dict(p).get("port")
            if not isinstance(port, int) or not 1 <= port <= 65535:
                causes.append(_invalid(f"spec.ports[{i}].port", port, "must be between 1 and 65535, inclusive"))
            if len(ports) > 1 and not as_dict(p).get("name"):
                causes.append(_required(f"spec.ports[{i}].name"))
        stype = spec.get("type")
        if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            causes.append(("spec.type", "FieldValueNotSupported",
                           f'Unsupported value: {json.dumps(stype)}: supported values: "ClusterIP", '
                           '"ExternalName", "LoadBalancer", "NodePort"'))
    elif kind == "ConfigMap":
        for k in list(as_dict(obj.get("data"))) + list(as_dict(obj.get("binaryData"))):
            if not _CM_KEY.match(str(k)) or len(str(k)) > 253:
                causes.append(_invalid(f"data[{k}]", k, "a valid config key must consist of alphanumeric "
                                       "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                       "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
        if old is not None and as_dict(old).get("immutable") and (
                old.get("data") != obj.get("data") or old.get("binaryData") != obj.get("binaryData")):
            causes.append(("data", "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set"))
    elif kind == "Lease":
        lds = spec.get("leaseDurationSeconds")
        if isinstance(lds, int) and lds <= 0:
            causes.append(_invalid("spec.leaseDurationSeconds", lds, "must be greater than 0"))
        lt = spec.get("leaseTransitions")
        if isinstance(lt, int) and lt < 0:
            causes.append(_invalid("spec.leaseTransitions", lt, "must be greater than or equal to 0"))
    elif kind == "HorizontalPodAutoscaler":
        ref = as_dict(spec.get("scaleTargetRef"))
        if not ref.get("kind"):
            causes.append(_required("spec.scaleTargetRef.kind"))
        if not ref.get("name"):
            causes.append(_required("spec.scaleTargetRef.name"))
        mn, mx = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if not isinstance(mx, int):
            causes.append(_required("spec.maxReplicas"))
        elif isinstance(mn, int) and mx < mn:
            causes.append(_invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
        if isinstance(mn, int) and mn < 1:
            causes.append(_invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
    elif kind == "Event":
        io = as_dict(obj.get("involvedObject"))
        ns = meta.get("namespace")
        if io.get("namespace") not in (None, "", ns):
            causes.append(_invalid("involvedObject.namespace", io.get("namespace"), "does not match event.namespace"))
    if causes:
        raise_invalid(rt, name, causes)


def raise_invalid(rt: ResourceType, name: str, causes: list[Cause]) -> None:
    raise invalid(rt.group, rt.kind, name, causes)


# ---------------------------------------------------------------------------------------------------
# Pod templates


def canonical_template(tmpl: Any) -> dict[str, Any]:
    """A pod template normalised for comparison: nulls and empty values dropped, defaults applied,
    pod-template-hash removed (deploymentutil.EqualIgnoreHash)."""
    t = strip_nulls(clone(tmpl)) if isinstance(tmpl, dict) else {}
    t.setdefault("metadata", {})
    default_pod_spec(t.setdefault("spec", {}))
    labels = t["metadata"].get("labels")
    if isinstance(labels, dict):
        labels.pop("pod-template-hash", None)
    t["metadata"].pop("creationTimestamp", None)
    return _drop_empty(t)


def _drop_empty(v: Any) -> Any:
    if isinstance(v, dict):
        out = {k: _drop_empty(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in ({}, [], None)}
    if isinstance(v, list):
        return [_drop_empty(x) for x in v]
    return v


def template_hash(tmpl: Any, collision_count: int = 0) -> str:
    data = json.dumps(canonical_template(tmpl), sort_keys=True) + f"/{collision_count}"
    return safe_hash(data, 10)
