"""Fixtures for the status/probe tests: a scripted HTTP API server for client-level tests, and the sandbox."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from status_scripted import ScriptedApi

from bot.runtime import build_runtime
from sandbox.stack import SandboxStack

Answer = tuple[int, dict[str, str], bytes]


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_kubeconfig(path: Path, contexts: dict[str, str]) -> Path:
    """A kubeconfig with one context per (name -> server URL), no credentials."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": next(iter(contexts)),
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in contexts.items()],
        "users": [{"name": "svcbot", "user": {"token": "test-token-not-secret"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "svcbot"}} for name in contexts],
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(name="scripted_api")
def _scripted_api() -> Iterator[ScriptedApi]:
    api: ScriptedApi

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = api.next_answer(self.path)
            if status == 0:  # drop the connection without answering
                self.connection.close()
                return
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            """Clients that gave up (timeouts under test) break the pipe; that is expected."""

    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api = ScriptedApi(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture(name="kubeconfig")
def _kubeconfig(tmp_path: Path, scripted_api: ScriptedApi, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_kubeconfig(tmp_path / "kubeconfig", {"prod-ctx": scripted_api.url,
                                                      "dead-ctx": f"http://127.0.0.1:{closed_port()}"})
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


# --- the sandbox (one stack for the status tests; tests that break it restore it) -----------------------

TIME_SCALE = 0.02


@pytest.fixture(name="stack", scope="session")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    directory = tmp_path_factory.mktemp("status-sandbox")
    with SandboxStack() as stack:
        stack.start(directory, time_scale=TIME_SCALE)
        yield stack


@pytest.fixture(name="sandbox_catalog")
def _sandbox_catalog(stack: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The sandbox's catalog as a mapping (edit it, then `runtime_for`); KUBECONFIG points at the sandbox."""
    monkeypatch.setenv("KUBECONFIG", str(stack.directory / "kubeconfig"))
    return dict(yaml.safe_load((stack.directory / "catalog.yaml").read_text()))


@pytest.fixture(name="runtime_for")
def _runtime_for(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Any]]:
    runtimes: list[Any] = []

    def build(catalog: dict[str, Any]) -> Any:
        path = tmp_path / f"catalog-{len(runtimes)}.yaml"
        path.write_text(yaml.safe_dump(catalog, sort_keys=False))
        runtime = build_runtime(path)
        runtimes.append(runtime)
        return runtime

    yield build
    for runtime in runtimes:
        runtime.close()


@pytest.fixture(name="runtime")
def _runtime(sandbox_catalog: dict[str, Any], runtime_for: Callable[[dict[str, Any]], Any]) -> Any:
    """A runtime (dispatcher, backends) on the unmodified sandbox catalog."""
    return runtime_for(sandbox_catalog)
