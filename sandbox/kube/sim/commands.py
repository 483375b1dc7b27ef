"""What a Job's command means, where it is plain: `true`, `false`, `exit N`, and a shell running one of
them (`sh -c 'exit 3'`, `/bin/bash -c "false"`). Anything else is decided by the image (the registry's
`failing` marker), since the sandbox runs no programs."""

from __future__ import annotations

import contextlib
import re
import shlex

_SHELLS = {"sh", "bash", "ash", "dash", "zsh", "busybox"}
_EXIT = re.compile(r"exit(?:\s+(\d+))?")


def argv_of(command: list[object], args: list[object]) -> list[str]:
    """The container's argv (command + args); a single string with spaces is split as a shell would."""
    argv = [str(x) for x in [*command, *args]]
    if len(argv) == 1 and any(ch.isspace() for ch in argv[0]):
        with contextlib.suppress(ValueError):
            argv = shlex.split(argv[0])
    return argv


def _script_exit(script: str) -> int | None:
    try:
        words = shlex.split(script, comments=True)
    except ValueError:
        return None
    return _words_exit(words)


def _words_exit(words: list[str]) -> int | None:
    if not words:
        return 0  # an empty script or a comment: the shell exits 0
    tool = words[0].rsplit("/", 1)[-1]
    if tool == "true" and len(words) == 1:
        return 0
    if tool == "false" and len(words) == 1:
        return 1
    match = _EXIT.fullmatch(" ".join(words))
    if match:
        return int(match.group(1) or 0) % 256
    return None


def plain_exit(argv: list[str]) -> int | None:
    """The exit code the command plainly has, or None when only running it would tell."""
    if not argv:
        return None
    tool = argv[0].rsplit("/", 1)[-1]
    if tool in _SHELLS:
        rest = argv[1:]
        if tool == "busybox" and rest and rest[0] in _SHELLS:
            rest = rest[1:]
        if len(rest) >= 2 and rest[0] in ("-c", "-ec", "-ce", "-xc", "-exc"):
            return _script_exit(rest[1])
        return None
    return _words_exit(argv)
