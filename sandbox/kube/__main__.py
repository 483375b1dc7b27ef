"""`python -m sandbox.kube [--dir DIR] [--time-scale X]`: run the sandbox Kubernetes API alone, for debugging.

Writes DIR/kubeconfig (contexts sandbox-nonprod and sandbox-prod) and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import signal
import tempfile
import threading
from pathlib import Path

from . import KubeSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kube", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="where to write kubeconfig (default: a temp dir)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds -> real seconds (1.0)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    directory = (args.dir or Path(tempfile.mkdtemp(prefix="sandbox-kube-"))).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with KubeSandbox(time_scale=args.time_scale) as kube:
        path = kube.write_kubeconfig(directory / "kubeconfig")
        for name, url in kube.addresses().items():
            print(f"  {name:<14} {url}")
        print(f"\n  export KUBECONFIG={path}\n  kubectl --context sandbox-prod get deploy,rs,pods -n prod", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
