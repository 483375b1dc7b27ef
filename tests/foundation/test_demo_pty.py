"""`svcbot demo` as a new user meets it, in a pseudo-terminal: the banner, every README example, the versions
the banner says are built to fail, and Ctrl-D to leave. Nothing on screen may be a
Python traceback or a log line: answers only."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_readme_examples import MUTATING, readme_examples

ROOT = Path(__file__).resolve().parents[2]
PROMPT = b"svc> "
LOG_LINE = re.compile(r'^\s*(\{"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d.*\[(debug|info|warning|error|critical)\s*\])',
                      re.MULTILINE)


class Demo:
    """`python -m bot.cli demo` on a pseudo-terminal; `send` types a line and returns the screen until the
    next prompt."""

    def __init__(self, tmp_path: Path) -> None:
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "SVCBOT_HISTORY": str(tmp_path / "hist"),
               "COLUMNS": "120", "LINES": "40", "TERM": "dumb"}
        env.pop("SVCBOT_DB", None)  # the demo keeps its own store with its world
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the demo
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "bot.cli", "demo"], env)
        self.screen = ""

    def read_until(self, marker: bytes, timeout: float = 300.0) -> str:
        # A wide deadline: it waits for the prompt, and a busy 2-core machine starting the sandbox (a CA,
        # three stand-ins, the seed) took over 120 s once.
        got = b""
        deadline = time.monotonic() + timeout
        while not got.endswith(marker):
            assert time.monotonic() < deadline, f"no {marker!r} within {timeout}s; screen ends: {got[-1500:]!r}"
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
        text = got.decode(errors="replace").replace("\r\n", "\n")
        self.screen += text
        return text

    def send(self, line: str, timeout: float = 300.0) -> str:
        os.write(self.fd, line.encode() + b"\n")
        return self.read_until(PROMPT, timeout)

    def finish(self) -> int:
        """Ctrl-D at the prompt; the demo's exit status."""
        os.write(self.fd, b"\x04")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                with contextlib.suppress(OSError):
                    self.screen += os.read(self.fd, 65536).decode(errors="replace")
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("the demo did not leave on Ctrl-D")


@pytest.fixture(name="demo")
def _demo(tmp_path: Path) -> Iterator[Demo]:
    demo = Demo(tmp_path)
    yield demo
    try:
        os.kill(demo.pid, signal.SIGKILL)
        os.waitpid(demo.pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def request_id(screen: str) -> str:
    found = re.findall(r"\b([0-9a-f]{8})\b", screen)
    assert found, screen
    return found[0]


def test_a_new_users_first_ten_minutes(demo: Demo) -> None:
    """The banner, every read-only README example, an approved prod deploy, the versions built to crash, leak
    and fail their migration, help, Ctrl-D: no traceback, no log line on screen (Ctrl-C during a deploy in the demo:
    tests/deploy/test_graceful_shutdown.py)."""
    banner = demo.read_until(PROMPT)
    for words in ("alice", "bob", "carol", "dave", "Versions built to fail", "logs go to"):
        assert words in banner
    for example in readme_examples():
        if example.split()[0] not in MUTATING:
            assert "internal error" not in demo.send(example), example
    pending = demo.send("deploy payment prod 1.4.2")
    assert "waiting for approval" in pending or "approve" in pending
    demo.send("as carol")
    approved = demo.send(f"approve {request_id(pending)}", timeout=300)
    assert "SUCCEEDED" in approved
    demo.send("as alice")
    crashed = demo.send("deploy payment staging 1.5.0", timeout=300)
    assert "ROLLED_BACK" in crashed
    leaked = demo.send("deploy gateway staging 1.0.1", timeout=300)
    assert "ROLLED_BACK" in leaked
    migration = demo.send("deploy payment dev 1.5.3", timeout=300)
    assert "FAILED" in migration
    assert "1.5.2" in demo.send("deploy payment staging 1.5.2 --dry-run")
    assert "whoami" in demo.send("help")
    assert demo.finish() == 0
    assert "Traceback" not in demo.screen
    assert not LOG_LINE.search(demo.screen), LOG_LINE.search(demo.screen)
