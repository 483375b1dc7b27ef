"""Helpers for the several-replicas tests: a PostgreSQL schema per test (SVCBOT_TEST_DATABASE_URL), bot
replicas as OS processes (replica.py) that print JSON lines, and requests to race on.

Without SVCBOT_TEST_DATABASE_URL the PostgreSQL tests are skipped with the reason; under CI (CI=true) they
fail instead, so CI can never pass by skipping them. .ci/run starts a PostgreSQL on loopback and sets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.deploys.store import NewRequest, State, Store

REPLICA = Path(__file__).resolve().parent / "replica.py"


class Replica:
    """One replica.py process: its JSON lines arrive on a queue as it prints them."""

    def __init__(self, *args: str) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(REPLICA), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.events: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                event["seen_at"] = time.monotonic()
                self._lines.put(event)
        self._lines.put(None)

    def wait_for(self, event: str, timeout: float = 20.0, where: Callable[[dict[str, Any]], bool] | None = None,
                 ) -> dict[str, Any]:
        """The first line with this event (and matching `where`), reading on from what was already seen."""
        for seen in self.events:
            if seen["event"] == event and (where is None or where(seen)):
                return seen
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, left))
            except queue.Empty:
                raise AssertionError(f"no {event!r} from the replica within {timeout}s; it said {self.said()}") \
                    from None
            if line is None:
                raise AssertionError(f"the replica ended without {event!r}: {self.said()}; "
                                     f"stderr: {self.stderr_tail()}")
            self.events.append(line)
            if line["event"] == event and (where is None or where(line)):
                return line

    def said(self) -> list[str]:
        return [event["event"] for event in self.events]

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, like a pod on a node that lost power."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(5)  # every line it printed, up to its end
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                self.events.append(line)
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            return self._stderr.read()[-2000:]
        return ""



def pending_request(store: Store, *, expires_at: float | None = None) -> str:
    """A PENDING prod deploy request (approval required), unexpired unless told otherwise."""
    new = NewRequest(kind="deploy", service="payment", env="prod", version="9.9.9", requester="U0ALICE",
                     plan={"action": "deploy", "steps": []}, state=State.PENDING,
                     approval={"approvers": ["release-managers"], "quorum": 1},
                     expires_at=time.time() + 600 if expires_at is None else expires_at)
    return store.create_request(new).id
