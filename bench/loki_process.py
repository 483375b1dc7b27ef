"""The Loki stand-in in a process of its own, for logs_bench's end-to-end figures.

In the benchmark's own process the stand-in's query evaluation (pure Python) would share the interpreter
lock with the bot, and the two queries `/svc logs` sends side by side (lines and the sparkline's counts)
would run one after the other, as no real Loki does. Started with the number of lines to push; prints the
stand-in's URL on stdout once the lines are in, and stops when its stdin closes.

    .venv/bin/python -m bench.loki_process 6000
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.loki import LokiSandbox  # noqa: E402

TENANT = "ops"


def main() -> None:
    from bench.logs_bench import json_line  # noqa: PLC0415 - the same lines as the in-process figures

    count = int(sys.argv[1])
    with LokiSandbox(tenant=TENANT) as loki:
        now = time.time_ns()
        values = [[str(now - index * 500_000_000), json_line(index, now - index * 500_000_000)]
                  for index in range(count)]
        for start in range(0, len(values), 2000):
            loki.push([{"stream": {"namespace": "prod", "app": "bench", "pod": f"bench-{start % 3}"},
                        "values": values[start:start + 2000]}])
        print(loki.url, flush=True)
        sys.stdin.read()  # until the benchmark closes it


if __name__ == "__main__":
    main()
