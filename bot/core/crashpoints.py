"""Crash points for the crash-point suite (tests/crash): a process told to crash at a point kills itself with
SIGKILL when it reaches it, so a test can stop it between any two store transitions deterministically instead
of by luck. Outside that suite nothing is set and a point costs one check of an empty set.

Points are named where they are reached (`crash_point("after:request.approved")`). `SVCBOT_CRASH_AT` names
points (comma-separated) for the process's whole life; `SVCBOT_CRASH_FILE` names a file whose content
(points, comma- or line-separated) is read again whenever it changes, so a test can arm a running process
for its next request. `SVCBOT_CRASH_LOG`, if set, is a file the point's name is appended to right before the
kill, so the test knows the process died where it meant it to.
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "SVCBOT_CRASH_AT"
FILE_VARIABLE = "SVCBOT_CRASH_FILE"
LOG_VARIABLE = "SVCBOT_CRASH_LOG"


def _parse(text: str) -> frozenset[str]:
    return frozenset(point.strip() for point in text.replace("\n", ",").split(",") if point.strip())


_FIXED = _parse(os.environ.get(VARIABLE, ""))
_FILE = os.environ.get(FILE_VARIABLE, "")
_lock = threading.Lock()
_file_state: dict[str, tuple[float, frozenset[str]]] = {}  # the file's mtime and points, as last read


def armed() -> frozenset[str]:
    """The points this process crashes at now."""
    if not _FILE:
        return _FIXED
    with _lock:
        try:
            changed = os.stat(_FILE).st_mtime_ns / 1e9
        except OSError:
            return _FIXED
        seen = _file_state.get(_FILE)
        if seen is None or seen[0] != changed:
            with open(_FILE, encoding="utf-8") as file:
                seen = _file_state[_FILE] = (changed, _parse(file.read()))
        return _FIXED | seen[1]


def crash_point(name: str) -> None:
    """SIGKILL this process here when it is armed with `name`."""
    if not _FIXED and not _FILE:
        return
    if name not in armed():
        return
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(name + "\n")
            file.flush()
            os.fsync(file.fileno())
    os.kill(os.getpid(), signal.SIGKILL)
