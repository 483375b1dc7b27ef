"""`svcbot demo`, the README's first command: the sandbox and the shell in one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_answers_from_the_sandbox(tmp_path: Path) -> None:
    """The demo starts the stand-ins, answers status and logs from them, shows approval, and exits on `exit`."""
    script = "\n".join([
        "status payment",
        "logs orders staging --level error --since 1h",
        "deploy payment prod 1.4.2",
        "whoami",
        "exit",
    ]) + "\n"
    result = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--dir", str(tmp_path / "demo")],
                            input=script, capture_output=True, text=True, timeout=120, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "acting as U0ALICE" in out
    assert "payment: status" in out
    assert "3/3" in out
    assert "database unreachable" in out
    assert "approval required" in out
    assert (tmp_path / "demo" / "kubeconfig").exists()
