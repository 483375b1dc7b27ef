"""HTTP front of one sandbox cluster: routing of Kubernetes API paths, content negotiation (JSON, Table),
watch streams, pod logs and the pods/services proxy, on the shared loopback server of sandbox.httpserver."""

from __future__ import annotations

import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from sandbox.httpserver import HttpServer, KeepAliveHandler

from . import protobuf, resources, tables
from .api import FieldValidation
from .auth import ADMIN_GROUP, ADMIN_USER, BOT_USER, PUBLIC_PATHS, User
from .resources import PODS, SERVICES, ResourceType
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .util import ApiError, bad_request, clone, fmt_micro, method_not_allowed

if TYPE_CHECKING:
    from .cluster import Cluster

log = logging.getLogger("sandbox.kube")

VERSION = {
    "major": "1", "minor": "36", "emulationMajor": "1", "emulationMinor": "36", "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "35", "gitVersion": "v1.36.2-sandbox", "gitCommit": "0" * 40,
    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.5", "compiler": "gc",
    "platform": "linux/amd64",
}
NOT_FOUND_RESOURCE = ApiError(404, "NotFound", "the server could not find the requested resource",
                              {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})
UNSUPPORTED_STREAMS = {"exec": "run a command in", "attach": "attach to", "portforward": "forward ports to"}
WATCH_MAX_SECONDS = 1800.0
BOOKMARK_EVERY = 5.0


class ClusterServer(HttpServer):
    """The HTTP server of one cluster. The "down" fault closes the port and cuts open connections
    (go_down), clearing it binds the same port again (come_up); stop() is final."""

    def __init__(self, cluster: Cluster):
        handler = type("Handler", (Handler,), {"cluster": cluster, "owner": self, "log_prefix": f"{cluster.name} "})
        super().__init__(handler, name=f"kube-http-{cluster.name}", error_log=log,
                         ssl_context=cluster.auth.server_context() if cluster.auth is not None else None)
        self.cluster = cluster
        self.stopped = False

    def go_down(self) -> None:
        """The "down" fault: connections are refused and pooled ones cut, until come_up()."""
        super().stop(drop_connections=True)
        self._wake_watches()

    def come_up(self) -> None:
        if not self.stopped:
            for _ in range(50):
                try:
                    self.start()
                    return
                except OSError:
                    time.sleep(0.05)
            raise RuntimeError(f"cannot re-bind 127.0.0.1:{self.port}")

    def stop(self, *, drop_connections: bool = True) -> None:
        """Final: come_up() no longer binds again."""
        self.stopped = True
        super().stop(drop_connections=drop_connections)
        self._wake_watches()

    def _wake_watches(self) -> None:
        # a watch waits on the store; woken, it sees the generation has changed and ends its stream
        with self.cluster.store.cond:
            self.cluster.store.cond.notify_all()


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("true", "1")


class Handler(KeepAliveHandler):
    server_version = "sandbox-kube-apiserver"
    sys_version = ""
    request_log = log
    cluster: Cluster
    owner: ClusterServer

    def version_string(self) -> str:
        return self.server_version

    # every method goes through one dispatcher
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        # kubectl and client-go stream some bodies chunked, without a Content-Length
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.read_body()

    def _send(self, code: int, body: bytes, content_type: str = "application/json",
              extra: dict[str, str] | None = None) -> None:
        warnings = [("Warning", _warning_header(w)) for w in getattr(self, "_warnings", ())]
        self._status_code = code
        self._record()  # before the answer leaves: a client that got it finds the request recorded
        self.send_body(code, body, content_type,
                       [("Cache-Control", "no-cache, private"), ("Audit-Id", fmt_micro()), *(extra or {}).items(),
                        *warnings])

    def _json(self, code: int, obj: Any) -> None:
        self._status_code = code
        self._send(code, json.dumps(obj, separators=(",", ":")).encode())

    def _error(self, err: ApiError) -> None:
        self._status_code = err.code
        self._send(err.code, json.dumps(err.status(), separators=(",", ":")).encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _start_stream(self, content_type: str) -> None:
        self._status_code = 200
        self._record()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self._status_code = 200

    def _end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, method: str) -> None:
        self._status_code = 0
        cluster = self.cluster
        split = urlsplit(self.path)
        raw_path = split.path
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if cluster.faults.down or self.owner.generation != getattr(self, "_gen", self.owner.generation):
            self.close_connection = True
            return
        self._gen = self.owner.generation
        self._warnings: list[str] = []
        self._recorded = False
        self.user: User | None = None
        self._key = key = ("", "", "", method.lower())
        try:
            body = self._read_body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
            self.user = self._authenticate()
            route = self._route(method, raw_path)
            self._key = key = route.key if route else ("", "", "", method.lower())
            self._authorize(method, raw_path, route)
            fault = cluster.faults.match(key[1] + (f"/{key[2]}" if key[2] else ""), key[3]) \
                if route else cluster.faults.match("", method.lower())
            if fault is not None:
                if fault.mode == "down":
                    self.close_connection = True
                    return
                if fault.mode == "stall":
                    cluster.faults.stall(fault.seconds)
                    if cluster.faults.down:
                        self.close_connection = True
                        return
                elif fault.mode == "500":
                    raise ApiError(500, "InternalError", "Internal error occurred: sandbox fault injection: "
                                   "etcdserver: request timed out", {"causes": [{"message": "etcdserver: request "
                                                                                 "timed out"}]})
                elif fault.mode == "403":
                    raise self._forbidden(route)
            if route is None:
                self._non_resource(method, raw_path)
            else:
                self._resource(method, route, body)
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except (ValueError, UnicodeDecodeError) as e:
            self._error(bad_request(f"malformed request: {e}"))
        except Exception as e:  # never a traceback to the client
            log.exception("sandbox kube request failed: %s %s", method, self.path)
            self._error(ApiError(500, "InternalError", f"Internal error occurred: {e!r}"))
        finally:
            self._record()

    def _record(self) -> None:
        if not self._recorded:
            self._recorded = True
            user = getattr(self, "user", None)
            self.cluster.record(self._key, self.command, self.path, self._status_code,
                                user.name if user is not None else "")

    def _authenticate(self) -> User | None:
        auth = self.cluster.auth
        if auth is None:
            return None
        user = auth.authenticate(self.cluster.name, self.headers.get("Authorization"))
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    def _authorize(self, method: str, raw_path: str, route: Route | None) -> None:
        """RBAC: the bot's Role in its namespaces; discovery and health paths for everyone signed in."""
        user = self.user
        if user is None:
            return
        if route is None:
            path = raw_path.rstrip("/") or "/"
            public = any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)
            if user.admin or (public and method in ("GET", "HEAD")):
                return
            raise self._forbidden(None, method)
        group, res, sub, verb = route.key
        full = f"{res}/{sub}" if sub else res
        if not user.allowed(group, full, verb, route.namespace, route.name):
            raise self._forbidden(route)

    def _forbidden(self, route: Route | None, method: str = "GET") -> ApiError:
        who = self.user.name if getattr(self, "user", None) is not None else BOT_USER
        if route is None:
            verb = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put", "PATCH": "patch",
                    "DELETE": "delete"}.get(method, method.lower())
            return ApiError(403, "Forbidden", f'forbidden: User "{who}" cannot {verb} path '
                                              f'"{urlsplit(self.path).path}"', {})
        group, res, sub, verb = route.key
        full = f"{res}/{sub}" if sub else res
        what = f"{res}.{group}" if group else res
        subject = f'{what} "{route.name}"' if route.name else what
        where = f' in the namespace "{route.namespace}"' if route.namespace else " at the cluster scope"
        return ApiError(403, "Forbidden",
                        f'{subject} is forbidden: User "{who}" cannot {verb} resource '
                        f'"{full}" in API group "{group}"{where}',
                        {"name": route.name, "group": group, "kind": res})

    def _non_resource(self, method: str, path: str) -> None:
        path = path.rstrip("/") or "/"
        if method not in ("GET", "HEAD"):
            raise method_not_allowed("", "", method)
        if path == "/version":
            return self._json(200, VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            self._status_code = 200
            return self._send(200, b"ok", "text/plain; charset=utf-8")
        if path == "/api":
            return self._json(200, resources.api_versions(f"127.0.0.1:{self.owner.port}"))
        if path == "/apis":
            return self._json(200, resources.api_group_list())
        parts = path.strip("/").split("/")
        if path == "/openapi/v3":
            return self._json(200, resources.openapi_v3_root())
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) == 5 else "")
            doc = resources.openapi_v3_group(group, version)
            if doc:
                return self._json(200, doc)
        if parts[0] == "api" and len(parts) == 2:
            rl = resources.resource_list("", parts[1])
            if rl:
                return self._json(200, rl)
        if parts[0] == "apis" and len(parts) == 2:
            versions = resources.groups().get(parts[1])
            if versions:
                return self._json(200, resources.api_group(parts[1], versions))
        if parts[0] == "apis" and len(parts) == 3:
            rl = resources.resource_list(parts[1], parts[2])
            if rl:
                return self._json(200, rl)
        raise NOT_FOUND_RESOURCE

    def _route(self, method: str, raw_path: str) -> Route | None:
        segs = [s for s in raw_path.split("/") if s != ""]
        if len(segs) >= 2 and segs[0] == "api":
            group, version, rest = "", segs[1], segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None
        if not rest:
            return None
        watch_prefix = False
        if rest[0] == "watch":
            watch_prefix, rest = True, rest[1:]
            if not rest:
                return None
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and resources.lookup(group, version, unquote(rest[2])):
            namespace, rest = unquote(rest[1]), rest[2:]
        resource = unquote(rest[0])
        rt = resources.lookup(group, version, resource)
        if rt is None:
            raise NOT_FOUND_RESOURCE
        name = unquote(rest[1]) if len(rest) > 1 else ""
        sub = unquote(rest[2]) if len(rest) > 2 else ""
        tail = rest[3:]
        if sub and sub not in rt.subresources:
            raise NOT_FOUND_RESOURCE
        if tail and sub != "proxy":
            raise NOT_FOUND_RESOURCE
        if rt.namespaced is False and namespace:
            raise NOT_FOUND_RESOURCE
        watch = watch_prefix or _truthy(self.query.get("watch"))
        if method in ("GET", "HEAD"):
            verb = "get" if name else ("watch" if watch else "list")
        elif method == "POST":
            verb = "create"
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = method.lower()
        return Route(rt, namespace, name, sub, [unquote(t) for t in tail], verb,
                     raw_tail="/".join(tail), trailing_slash=raw_path.endswith("/"))

    # ------------------------------------------------------------------ resources

    def _accept_table(self) -> bool:
        accept = self.headers.get("Accept", "")
        first = accept.split(",")[0]
        return "as=Table" in first

    def _selectors(self, rt: ResourceType) -> tuple[Any, Any]:
        try:
            labels = parse_label_selector(self.query.get("labelSelector", ""))
            fields = parse_field_selector(self.query.get("fieldSelector", ""), rt.kind)
        except SelectorError as e:
            raise bad_request(str(e)) from e
        return labels, fields

    def _resource(self, method: str, r: Route, body: bytes) -> None:
        api = self.cluster.api
        rt = r.rt
        dry = self.query.get("dryRun") == "All"
        if rt.review and method != "POST":
            raise method_not_allowed(rt.group, rt.plural, method)
        if r.sub == "proxy":
            return self._proxy(method, r, body)
        if r.sub in UNSUPPORTED_STREAMS:
            with self.cluster.store.lock:
                if self.cluster.store.get(PODS, r.namespace, r.name) is None:
                    raise ApiError(404, "NotFound", f'pods "{r.name}" not found',
                                   {"name": r.name, "group": "", "kind": "pods"})
            raise ApiError(400, "BadRequest", f"pods/{r.sub} is not supported by the sandbox: its pods run no "
                           f"processes to {UNSUPPORTED_STREAMS[r.sub]} (kubectl logs and the pods' proxy work)",
                           {"name": r.name, "group": "", "kind": f"pods/{r.sub}"})
        if r.sub == "log":
            if method not in ("GET", "HEAD"):
                raise method_not_allowed(rt.group, "pods/log", method)
            return self._logs(r)
        if rt.namespaced and not r.namespace and (r.name or method not in ("GET", "HEAD")):
            if r.name:
                raise NOT_FOUND_RESOURCE
            raise method_not_allowed(rt.group, rt.plural, method)
        if r.sub == "scale":
            if method in ("GET", "HEAD"):
                return self._json(200, api.get_scale(rt, r.namespace, r.name))
            if method == "PUT":
                return self._json(200, api.set_scale(rt, r.namespace, r.name, _loads(body), dry_run=dry))
            if method == "PATCH":
                return self._json(200, api.set_scale(rt, r.namespace, r.name, None, dry_run=dry,
                                                     patch_type=self.headers.get("Content-Type", ""), raw=body))
            raise method_not_allowed(rt.group, f"{rt.plural}/scale", method)
        if method in ("GET", "HEAD"):
            if r.name:
                obj = api.get(rt, r.namespace, r.name)
                if self._accept_table():
                    return self._json(200, tables.table(rt, [obj], obj["metadata"].get("resourceVersion", ""),
                                                        self.query.get("includeObject", "Metadata")))
                return self._json(200, obj)
            labels, fields = self._selectors(rt)
            if r.verb == "watch":
                return self._watch(r, labels, fields)
            try:
                limit = int(self.query.get("limit") or 0)
            except ValueError as e:
                raise bad_request(f"invalid limit: {self.query.get('limit')}") from e
            result = api.list(rt, r.namespace or None, labels, fields, limit, self.query.get("continue", ""))
            if self._accept_table():
                meta = {k: v for k, v in result["metadata"].items() if k != "resourceVersion"}
                return self._json(200, tables.table(rt, result["items"], result["metadata"]["resourceVersion"],
                                                    self.query.get("includeObject", "Metadata"), meta))
            return self._json(200, result)
        if method in ("POST", "PUT"):
            ctype = self.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
            if rt.review and method == "POST" and ctype == "application/vnd.kubernetes.protobuf":
                try:
                    return self._review(rt, r, protobuf.decode_review(body, rt.kind))
                except protobuf.ProtobufError as e:
                    raise bad_request(f"unable to decode the protobuf body: {e}") from e
            if ctype not in ("application/json", "application/yaml", "", "*/*"):
                raise ApiError(415, "UnsupportedMediaType",
                               f'the body of the request was in an unknown format - accepted media types include: '
                               f'application/json, application/yaml (the sandbox does not decode "{ctype}")')
        fields = FieldValidation(self.query.get("fieldValidation") or "Warn") \
            if method in ("POST", "PUT", "PATCH") else None
        if fields is not None:
            self._warnings = fields.warnings  # sent with the answer as Warning headers
        if method == "POST":
            if r.name:
                raise method_not_allowed(rt.group, rt.plural, method)
            if rt.review:
                return self._review(rt, r, _loads(body))
            obj = api.create(rt, r.namespace, _loads(body), dry_run=dry, fields=fields)
            return self._json(201, obj)
        if rt.review:
            raise method_not_allowed(rt.group, rt.plural, method)
        if method == "PUT":
            if not r.name:
                raise method_not_allowed(rt.group, rt.plural, method)
            obj = api.update(rt, r.namespace, r.name, _loads(body), subresource=r.sub, dry_run=dry, fields=fields)
            return self._json(200, obj)
        if method == "PATCH":
            if not r.name:
                raise method_not_allowed(rt.group, rt.plural, method)
            obj = api.patch(rt, r.namespace, r.name, self.headers.get("Content-Type", ""), body,
                            subresource=r.sub, dry_run=dry, fields=fields)
            return self._json(200, obj)
        if method == "DELETE":
            options = _loads(body) if body.strip() else {}
            if not isinstance(options, dict):
                raise bad_request("DeleteOptions must be an object")
            for k in ("propagationPolicy", "gracePeriodSeconds"):
                if k in self.query:
                    options[k] = int(self.query[k]) if k == "gracePeriodSeconds" else self.query[k]
            if r.name:
                result = api.delete(rt, r.namespace, r.name, options, dry_run=dry)
                return self._json(200, result)
            labels, fields = self._selectors(rt)
            return self._json(200, api.delete_collection(rt, r.namespace or None, labels, fields, options))
        raise method_not_allowed(rt.group, rt.plural, method)

    # ------------------------------------------------------------------ reviews (kubectl auth can-i / whoami)

    def _review(self, rt: ResourceType, r: Route, body: Any) -> None:
        if not isinstance(body, dict):
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}')
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        user = self.user if self.user is not None else User(ADMIN_USER, (ADMIN_GROUP, "system:authenticated"), "")
        status: dict[str, Any]
        if rt.kind == "SelfSubjectReview":
            status = {"userInfo": {"username": user.name, "groups": list(user.groups)}}
        elif rt.kind == "SelfSubjectRulesReview":
            ns = str(spec.get("namespace") or "")
            status = {"resourceRules": user.rules_in(ns),
                      "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": [f"{p}" for p in PUBLIC_PATHS]
                                            + [f"{p}/*" for p in PUBLIC_PATHS]}],
                      "incomplete": False}
        else:
            attrs = spec.get("resourceAttributes")
            non = spec.get("nonResourceAttributes")
            if isinstance(attrs, dict):
                res = str(attrs.get("resource") or "")
                if attrs.get("subresource"):
                    res += f"/{attrs['subresource']}"
                allowed = user.allowed(str(attrs.get("group") or ""), res, str(attrs.get("verb") or ""),
                                       str(attrs.get("namespace") or ""), str(attrs.get("name") or ""))
            elif isinstance(non, dict):
                path = str(non.get("path") or "")
                allowed = user.admin or (str(non.get("verb") or "") == "get" and any(
                    path == p or path.startswith(p + "/") for p in PUBLIC_PATHS))
            else:
                raise ApiError(422, "Invalid", 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                               "spec.resourceAttributes: Invalid value: \"null\": exactly one of "
                               "nonResourceAttributes or resourceAttributes must be specified")
            status = {"allowed": allowed}
            if allowed and not user.admin:
                status["reason"] = (f'RBAC: allowed by RoleBinding "svcbot/{attrs.get("namespace")}" of Role '
                                    '"svcbot" to ServiceAccount "svcbot/svcbot"') if isinstance(attrs, dict) \
                    else 'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery"'
            elif allowed:
                status["reason"] = 'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole ' \
                                   '"cluster-admin" to Group "system:masters"'
        answer = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"creationTimestamp": None},
                  "spec": spec, "status": status}
        return self._json(201, answer)

    # ------------------------------------------------------------------ watch

    def _watch(self, r: Route, labels: Any, fields: Any) -> None:
        store = self.cluster.store
        rt = r.rt
        try:
            timeout = float(self.query.get("timeoutSeconds") or WATCH_MAX_SECONDS)
        except ValueError as e:
            raise bad_request("invalid timeoutSeconds") from e
        timeout = min(max(timeout, 0.0), WATCH_MAX_SECONDS)
        bookmarks = _truthy(self.query.get("allowWatchBookmarks"))
        send_initial = _truthy(self.query.get("sendInitialEvents"))
        rv_param = self.query.get("resourceVersion", "")
        if send_initial and self.query.get("resourceVersionMatch") != "NotOlderThan":
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: '
                           "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
        as_table = self._accept_table()
        ns = r.namespace or None

        def matches(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            m = obj["metadata"]
            if ns is not None and m.get("namespace") != ns:
                return False
            return labels.matches(m.get("labels")) and fields.matches(obj)

        def encode(etype: str, obj: dict[str, Any]) -> bytes:
            if as_table and etype not in {"BOOKMARK", "ERROR"}:
                payload = tables.table(rt, [obj], obj["metadata"].get("resourceVersion", ""),
                                       self.query.get("includeObject", "Metadata"))
            else:
                payload = obj
            return json.dumps({"type": etype, "object": payload}, separators=(",", ":")).encode() + b"\n"

        initial: list[dict[str, Any]] = []
        with store.lock:
            current_rv = store.rv
            epoch = store.watch_epoch
            if send_initial or rv_param in ("", "0"):
                initial = [clone(o) for o in store.list(rt, ns) if matches(o)]
                cursor = current_rv
            else:
                try:
                    cursor = int(rv_param)
                except ValueError as e:
                    raise bad_request(f"invalid resource version: {rv_param}") from e
        gen = self.owner.generation
        self._start_stream("application/json")
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        try:
            for obj in initial:
                obj.setdefault("kind", rt.kind)
                obj.setdefault("apiVersion", rt.api_version)
                self._chunk(encode("ADDED", _with_kind(rt, obj)))
            if send_initial:
                self._chunk(encode("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                                "metadata": {"resourceVersion": str(cursor),
                                                             "annotations": {"k8s.io/initial-events-end": "true"}}}))
            while True:
                if self.owner.generation != gen or self.owner.stopped or self.cluster.faults.down:
                    self.close_connection = True
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with store.cond:
                    changes = store.changes_since(cursor)
                    if changes == []:
                        store.cond.wait(min(remaining, 0.5))
                        changes = store.changes_since(cursor)
                    if store.watch_epoch != epoch:
                        changes = None  # the watches were expired (control: expire-watches)
                if changes is None:
                    self._chunk(encode("ERROR", {
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": f"too old resource version: {cursor} ({store.rv})", "reason": "Expired",
                        "code": 410}))
                    break
                out: list[bytes] = []
                for ch in changes:
                    cursor = ch.rv
                    if ch.key != rt.key:
                        continue
                    was, now_m = matches(ch.old), matches(ch.obj)
                    if ch.type == "DELETED":
                        if was:
                            out.append(encode("DELETED", _with_kind(rt, ch.obj)))
                    elif was and now_m:
                        out.append(encode("MODIFIED", _with_kind(rt, ch.obj)))
                    elif now_m:
                        out.append(encode("ADDED", _with_kind(rt, ch.obj)))
                    elif was:
                        out.append(encode("DELETED", _with_kind(rt, ch.obj)))
                for data in out:
                    self._chunk(data)
                if bookmarks and time.monotonic() - last_bookmark > BOOKMARK_EVERY:
                    last_bookmark = time.monotonic()
                    self._chunk(encode("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                                    "metadata": {"resourceVersion": str(cursor)}}))
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    # ------------------------------------------------------------------ logs

    def _logs(self, r: Route) -> None:
        ctl = self.cluster.controller
        q = self.query
        container = q.get("container") or None
        previous = _truthy(q.get("previous"))
        follow = _truthy(q.get("follow"))
        timestamps = _truthy(q.get("timestamps"))
        try:
            tail = int(q["tailLines"]) if q.get("tailLines") else None
            since = int(q["sinceSeconds"]) if q.get("sinceSeconds") else None
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        except ValueError as e:
            raise bad_request(f"invalid log options: {e}") from e
        with self.cluster.store.lock:
            if self.cluster.store.get(PODS, r.namespace, r.name) is None:
                raise ApiError(404, "NotFound", f'pods "{r.name}" not found',
                               {"name": r.name, "group": "", "kind": "pods"})
            lines, finished = ctl.log_lines(r.namespace, r.name, container, previous)

        def fmt(entries: list[tuple[float, str]]) -> bytes:
            out = []
            for t, line in entries:
                out.append((fmt_micro(t).replace("Z", "000Z") + " " + line) if timestamps else line)
            return ("\n".join(out) + ("\n" if out else "")).encode()

        selected = lines
        if since is not None:
            cutoff = time.time() - since
            selected = [e for e in selected if e[0] >= cutoff]
        if tail is not None:
            selected = selected[-tail:] if tail > 0 else []
        data = fmt(selected)
        if limit is not None:
            data = data[:limit]
        if not follow or finished:
            self._status_code = 200
            return self._send(200, data, "text/plain")
        self._start_stream("text/plain")
        sent = len(lines)
        gen = self.owner.generation
        deadline = time.monotonic() + WATCH_MAX_SECONDS
        try:
            if data:
                self._chunk(data)
            while time.monotonic() < deadline and self.owner.generation == gen and not self.owner.stopped:
                time.sleep(0.05)
                with self.cluster.store.lock:
                    try:
                        lines, finished = ctl.log_lines(r.namespace, r.name, container, previous)
                    except ApiError:
                        break
                if len(lines) > sent:
                    self._chunk(fmt(lines[sent:]))
                    sent = len(lines)
                if finished:
                    break
            self._end_stream()
        except OSError:
            self.close_connection = True

    # ------------------------------------------------------------------ proxy

    def _proxy(self, method: str, r: Route, body: bytes) -> None:
        ctl = self.cluster.controller
        parts = r.name.split(":")
        if len(parts) == 3:
            _scheme, name, port = parts
        elif len(parts) == 2:
            if parts[0] in ("http", "https"):
                _scheme, name, port = parts[0], parts[1], ""
            else:
                name, port = parts
        else:
            name, port = parts[0], ""
        if not r.namespace:
            raise NOT_FOUND_RESOURCE
        path = "/" + "/".join(r.tail)
        if r.trailing_slash and r.tail and not path.endswith("/"):
            path += "/"
        with self.cluster.store.lock:
            if r.rt is SERVICES:
                pod_name, target = ctl.service_target(r.namespace, name, port)
                pod, c, _number = ctl.proxy_target(r.namespace, pod_name, target)
            else:
                pod, c, _number = ctl.proxy_target(r.namespace, name, port)
            ep = ctl.endpoint(pod, c, path)
        if ep.latency > 0:
            time.sleep(min(ep.latency, 120.0))
        content_type, payload = ep.payload()
        self._status_code = ep.status
        self._send(ep.status, payload, content_type)


@dataclass
class Route:
    rt: ResourceType
    namespace: str
    name: str
    sub: str
    tail: list[str]
    verb: str
    raw_tail: str = ""
    trailing_slash: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rt.group, self.rt.plural, self.sub, self.verb)


def _warning_header(text: str) -> str:
    """RFC 7234 warning as the apiserver writes it: `299 - "unknown field \\"spec.foo\\""`."""
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _with_kind(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == rt.kind and obj.get("apiVersion") == rt.api_version:
        return obj
    out = dict(obj)
    out["kind"], out["apiVersion"] = rt.kind, rt.api_version
    return out


def _loads(body: bytes) -> Any:
    if not body.strip():
        raise bad_request("the request body is empty")
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        try:
            doc = yaml.safe_load(body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise bad_request(f"couldn't get version/kind; json parse error: {e}") from e
        if not isinstance(doc, dict):
            raise bad_request("couldn't get version/kind; json parse error: the body is not an object") from None
        return json.loads(json.dumps(doc, default=str))

