"""Just enough of Kubernetes' protobuf encoding to read the reviews kubectl sends that way (`kubectl auth
can-i` and `auth whoami` post SelfSubjectAccessReview, SelfSubjectRulesReview and SelfSubjectReview as
application/vnd.kubernetes.protobuf). The envelope is the magic `k8s\\0` and a runtime.Unknown
(typeMeta=1, raw=2); the review's fields are read from generated.proto's field numbers."""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"
# field number -> name, for the messages the reviews are made of (staging/src/k8s.io/api/*/v1/generated.proto)
RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource",
                       7: "name"}
NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


class ProtobufError(ValueError):
    """A request body that is not the protobuf the sandbox decodes (answered 400 or 415)."""


def _varint(data: bytes, index: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if index >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index
        shift += 7


def fields(data: bytes) -> dict[int, list[Any]]:
    """The fields of one message: number -> values (ints for varints, bytes for length-delimited)."""
    out: dict[int, list[Any]] = {}
    index = 0
    while index < len(data):
        key, index = _varint(data, index)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, index = _varint(data, index)
        elif wire == 2:
            size, index = _varint(data, index)
            value, index = data[index:index + size], index + size
        elif wire == 1:
            value, index = data[index:index + 8], index + 8
        elif wire == 5:
            value, index = data[index:index + 4], index + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    found = fields(data)
    return {name: found[number][-1].decode("utf-8") for number, name in names.items() if number in found}


def decode_review(body: bytes, kind: str) -> dict[str, Any]:
    """A review object as JSON would have carried it: {"spec": {...}}."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the protobuf magic number")
    unknown = fields(body[len(MAGIC):])
    raw = unknown.get(2, [b""])[-1]
    message = fields(raw)
    spec_bytes = message.get(2, [b""])[-1] if kind != "SelfSubjectReview" else b""
    spec: dict[str, Any] = {}
    if kind == "SelfSubjectAccessReview":
        parts = fields(spec_bytes)
        if 1 in parts:
            spec["resourceAttributes"] = _strings(parts[1][-1], RESOURCE_ATTRIBUTES)
        if 2 in parts:
            spec["nonResourceAttributes"] = _strings(parts[2][-1], NON_RESOURCE_ATTRIBUTES)
    elif kind == "SelfSubjectRulesReview":
        spec = _strings(spec_bytes, {1: "namespace"})
    return {"spec": spec}
