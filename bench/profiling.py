"""Sampling profiles for the benchmarks: py-spy attached to a process while a phase runs.

`python -m bench --profile DIR ...` (or PROFILE_DIR below set by it) makes the benchmarks that support it
record the phase they measure with `py-spy record --gil` (only samples that hold the interpreter lock, so
the figures are CPU, not waiting), write the raw collapsed stacks to DIR/<name>.txt and print the top
functions by own time and by total time. py-spy is a dev dependency; it attaches with ptrace (root, or
kernel.yama.ptrace_scope 0).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROFILE_DIR: Path | None = None  # set by `python -m bench --profile DIR`
RATE = 250  # samples a second
# Frames that every thread has: they are everyone's total, so they say nothing.
PLUMBING = ("Thread._bootstrap", "Thread.run (threading", "_worker (concurrent/futures/thread",
            "_WorkItem.run (concurrent/futures/thread", "<module>", "_run_module_as_main", "_run_code")


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


@contextmanager
def profiled(pid: int, name: str, directory: Path | None = None) -> Iterator[None]:
    """Record `pid` with py-spy while the block runs (no-op unless a profile directory is set)."""
    directory = directory or PROFILE_DIR
    binary = py_spy()
    if directory is None or binary is None:
        if directory is not None:
            print("  (py-spy not installed: no profile; pip install -e '.[dev]')")
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"{name}.txt"
    recorder = subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(output), "--rate", str(RATE),
         "--gil", "--function", "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            _, errors = recorder.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, errors = recorder.communicate()
        if output.exists():
            print(summary(output, name))
        else:
            print(f"  (py-spy wrote no profile: {errors.strip()[-300:]})")


def top(path: Path, count: int = 15) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, top by own time, top by total time) of a py-spy raw (collapsed stacks) file."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        hits = int(number)
        samples += hits
        frames = [frame.strip() for frame in stack.split(";") if frame.strip()]
        # "process 123:"/"thread ..." prefixes (with --threads or --subprocesses) are not functions
        frames = [frame for frame in frames if not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[frames[-1]] += hits
        for frame in set(frames):
            if not frame.startswith(PLUMBING):
                total[frame] += hits
    return samples, own.most_common(count), total.most_common(count)


def summary(path: Path, name: str, count: int = 15) -> str:
    samples, own, total = top(path, count)
    if not samples:
        return f"  profile {name}: no samples"
    lines = [f"  profile {name}: {samples} samples holding the GIL at {RATE}/s ({samples / RATE:.1f} s of CPU), "
             f"raw stacks in {path}", "    top by own time:"]
    lines += [f"      {hits / samples:6.1%}  {frame}" for frame, hits in own]
    lines.append("    top by total time (own + callees):")
    lines += [f"      {hits / samples:6.1%}  {frame}" for frame, hits in total]
    return "\n".join(lines)


def main() -> None:
    """`python -m bench.profiling FILE...`: the summary of saved raw profiles."""
    for name in sys.argv[1:]:
        print(summary(Path(name), Path(name).stem, count=int(os.environ.get("TOP", "25"))))


if __name__ == "__main__":
    main()
