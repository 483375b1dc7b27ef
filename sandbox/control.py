"""The sandbox's control interface over HTTP on loopback, so a user rehearsing an incident, a test or a script
in another process can break the Kubernetes and Loki stand-ins (the Slack stand-in has its own `/_sandbox/`
URLs, sandbox/slack/control.py). `SandboxStack.start` runs it and writes DIR/control.json (mode 0600: the URL,
a bearer token, the Slack control URL); `svcbot sandbox fault --dir DIR ...` reads that file (run_cli below).

    GET  /_sandbox/                                  what is switched on now (and the clusters)
    POST /_sandbox/kube/<cluster>/fault   {"mode": "down"|"stall"|"500"|"403", "seconds", "resource", "verb",
                                           "count"}
    POST /_sandbox/kube/<cluster>/expire-watches     open watches end with 410 Expired (clients relist)
    POST /_sandbox/kube/<cluster>/clear
    POST /_sandbox/loki/fault             {"status": 429|500|502|503|504, "times", "matching"} or
                                          {"mode": "stall", "seconds"}
    POST /_sandbox/loki/clear
    POST /_sandbox/clear                             every fault off

Every request carries `Authorization: Bearer <token>`; answers are JSON {"ok": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sandbox.httpserver import LOOPBACK, HttpServer, KeepAliveHandler
from sandbox.kube.faults import MODES

if TYPE_CHECKING:
    from sandbox.stack import SandboxStack

CONTROL_FILE = "control.json"
LOKI_STATUSES = (429, 500, 502, 503, 504)


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlServer:
    def __init__(self, stack: SandboxStack, host: str = LOOPBACK) -> None:
        self.stack = stack
        self.token = secrets.token_urlsafe(24)
        self._http = HttpServer(type("ControlHandler", (_Handler,), {"control": self}), name="sandbox-control",
                                host=host)

    @property
    def url(self) -> str:
        return self._http.url + "/_sandbox/"

    def start(self) -> ControlServer:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop(drop_connections=True)

    def addresses(self) -> dict[str, str]:
        return {"control": self.url}

    def write(self, directory: Path) -> Path:
        """DIR/control.json: where the control URL is and its token (readable by the user only)."""
        path = Path(directory) / CONTROL_FILE
        info: dict[str, Any] = {"url": self.url, "token": self.token}
        slack = self.stack.slack
        slack_addresses = slack.addresses() if slack is not None else {}
        if "control_url" in slack_addresses:
            info["slack_control_url"] = slack_addresses["control_url"]
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return path

    # ------------------------------------------------------------------ actions

    def state(self) -> dict[str, Any]:
        kube = self.stack.kube
        clusters: dict[str, Any] = {}
        for name, cluster in (kube.clusters.items() if kube is not None else []):
            f = cluster.faults.current
            clusters[name] = {"fault": None if f is None else {
                "mode": f.mode, "seconds": f.seconds, "resource": f.resource, "verb": f.verb,
                "remaining": cluster.faults.remaining}}
        loki = self.stack.loki
        return {"ok": True, "kube": clusters,
                "loki": loki.fault_state() if loki is not None and hasattr(loki, "fault_state") else None}

    def answer(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "_sandbox":
            raise ControlError(404, "not a control URL; try /_sandbox/")
        parts = parts[1:]
        if method == "GET" and not parts:
            return self.state()
        if method != "POST":
            raise ControlError(405, f"{method} {path}: the control actions are POSTs")
        if parts == ["clear"]:
            if self.stack.kube is not None:
                self.stack.kube.clear_faults()
            self._loki().clear_faults()
            return self.state()
        if len(parts) == 3 and parts[0] == "kube":
            return self._kube(parts[1], parts[2], body)
        if len(parts) == 2 and parts[0] == "loki":
            return self._loki_action(parts[1], body)
        raise ControlError(404, f"no control action {path}")

    def _kube(self, name: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        kube = self.stack.kube
        if kube is None or name not in kube.clusters:
            known = sorted(kube.clusters) if kube is not None else []
            raise ControlError(404, f"no sandbox cluster {name!r}; clusters: {', '.join(known)}")
        cluster = kube.clusters[name]
        if action == "fault":
            mode = str(body.get("mode", ""))
            if mode not in MODES:
                raise ControlError(400, f"mode must be one of {', '.join(MODES)}")
            count = body.get("count")
            if count is not None and (not isinstance(count, int) or count < 1):
                raise ControlError(400, "count must be a positive number of requests")
            if mode == "down" and (count or body.get("resource") or body.get("verb")):
                raise ControlError(400, "down closes the cluster's port: no resource, verb or count")
            seconds = float(body.get("seconds") or (3600.0 if mode == "stall" else 0.0))
            cluster.faults.set(mode, seconds, resource=body.get("resource") or None, verb=body.get("verb") or None,
                               count=count)
        elif action == "expire-watches":
            cluster.store.expire_watches()
        elif action == "clear":
            cluster.faults.clear()
        else:
            raise ControlError(404, f"no kube action {action!r}: fault, expire-watches or clear")
        return self.state()

    def _loki(self) -> Any:
        loki = self.stack.loki
        if loki is None or not hasattr(loki, "fail_next"):
            raise ControlError(404, "no Loki stand-in in this sandbox")
        return loki

    def _loki_action(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        loki = self._loki()
        if action == "clear":
            loki.clear_faults()
        elif action == "fault" and body.get("mode") == "stall":
            loki.stall(float(body.get("seconds") or 3600.0))
        elif action == "fault":
            status = body.get("status")
            if status not in LOKI_STATUSES:
                raise ControlError(400, f"status must be one of {', '.join(map(str, LOKI_STATUSES))} (or mode stall)")
            times = body.get("times", 1)
            if not isinstance(times, int) or times < 1:
                raise ControlError(400, "times must be a positive number of requests")
            loki.fail_next(int(status), times, matching=str(body.get("matching") or ""))
        else:
            raise ControlError(404, f"no loki action {action!r}: fault or clear")
        return self.state()


class _Handler(KeepAliveHandler):
    control: ControlServer
    server_version = "sandbox-control"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            raw = self.read_body()
            if self.headers.get("Authorization", "") != f"Bearer {self.control.token}":
                raise ControlError(401, "unauthorized: send the token from DIR/control.json as a Bearer token")
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError as exc:
                raise ControlError(400, f"the body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise ControlError(400, "the body must be a JSON object")
            status, answer = 200, self.control.answer(method, urlsplit(self.path).path, body)
        except ControlError as exc:
            status, answer = exc.status, {"ok": False, "error": str(exc)}
        except (ValueError, TypeError) as exc:
            status, answer = 400, {"ok": False, "error": str(exc)}
        try:
            self.send_body(status, json.dumps(answer).encode(), "application/json")
        except (BrokenPipeError, ConnectionResetError):
            return


# ---------------------------------------------------------------------------------------------------- client


def request(directory: Path, method: str, path: str, body: dict[str, Any] | None = None,
            timeout: float = 10.0) -> dict[str, Any]:
    """One control request to the sandbox whose files are in `directory` (its control.json)."""
    path_file = Path(directory) / CONTROL_FILE
    try:
        info = json.loads(path_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ControlError(2, f"no sandbox running with files in {directory} (no {CONTROL_FILE}); start one "
                              f"with `svcbot sandbox --dir {directory}`") from None
    where = urlsplit(str(info["url"]))
    url = f"{where.scheme}://{where.netloc}/{path.lstrip('/')}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error") or str(exc)
        except ValueError:
            message = str(exc)
        raise ControlError(1, message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ControlError(2, f"the sandbox in {directory} does not answer ({exc}); is it still running?") from None


FAULT_USAGE = """\
svcbot sandbox fault [--dir DIR] WHAT...

  kube CLUSTER down                         the cluster's port closes (connection refused)
  kube CLUSTER stall [--seconds S]          requests hang (until clear, or S seconds)
  kube CLUSTER 500|403 [--resource R] [--verb V] [--count N]
                                            answer InternalError / Forbidden (e.g. --resource deployments
                                            --verb patch --count 2; pods/log, leases ...)
  kube CLUSTER expire-watches               open watches end with 410 Expired
  kube CLUSTER clear
  loki 429|500|502|503|504 [--times N]      Loki's next N queries answer that status
  loki stall [--seconds S]                  queries hang
  loki clear
  clear                                     everything back to normal
  show                                      what is switched on
"""


def _describe(state: dict[str, Any]) -> str:
    lines = []
    for name, info in (state.get("kube") or {}).items():
        f = info.get("fault")
        if f is None:
            lines.append(f"kube {name}: normal")
            continue
        scope = " ".join(x for x in (f.get("verb"), f.get("resource")) if x) or "every request"
        left = f" ({f['remaining']} left)" if f.get("remaining") is not None else ""
        lines.append(f"kube {name}: {f['mode']} for {scope}{left}")
    loki = state.get("loki")
    if loki is not None:
        parts = [f"{n} x {s}" for s, n in (loki.get("failing") or {}).items()]
        if loki.get("stalled"):
            parts.append("stalled")
        lines.append(f"loki: {', '.join(parts) if parts else 'normal'}")
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> tuple[int, str]:
    """`svcbot sandbox fault ...`: (exit code, what to print). Exit 1 for a refused action, 2 without a sandbox."""
    words = [str(w) for w in args.what]
    directory = Path(args.fault_dir)
    try:
        if words == ["show"]:
            return 0, _describe(request(directory, "GET", "/_sandbox/"))
        if words == ["clear"]:
            return 0, _describe(request(directory, "POST", "/_sandbox/clear", {}))
        if words[0] == "kube" and len(words) == 3:
            cluster, mode = words[1], words[2]
            if mode in ("clear", "expire-watches"):
                state = request(directory, "POST", f"/_sandbox/kube/{cluster}/{mode}", {})
            else:
                body: dict[str, Any] = {"mode": mode, "resource": args.resource, "verb": args.verb,
                                        "count": args.count}
                if args.seconds is not None:
                    body["seconds"] = args.seconds
                state = request(directory, "POST", f"/_sandbox/kube/{cluster}/fault", body)
            return 0, _describe(state)
        if words[0] == "loki" and len(words) == 2:
            mode = words[1]
            if mode == "clear":
                state = request(directory, "POST", "/_sandbox/loki/clear", {})
            elif mode == "stall":
                state = request(directory, "POST", "/_sandbox/loki/fault",
                                {"mode": "stall", "seconds": args.seconds or 3600.0})
            elif mode.isdigit():
                state = request(directory, "POST", "/_sandbox/loki/fault", {"status": int(mode), "times": args.times})
            else:
                return 1, f"svcbot sandbox fault: unknown Loki fault {mode!r}\n\n{FAULT_USAGE}"
            return 0, _describe(state)
    except ControlError as exc:
        return exc.status if exc.status in (1, 2) else 1, f"svcbot sandbox fault: {exc}"
    return 1, f"svcbot sandbox fault: cannot read {' '.join(words)!r}\n\n{FAULT_USAGE}"
