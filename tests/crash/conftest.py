"""The crash-point suite reuses the approval tests' world (the sandbox clusters and Slack, `svcbot serve` as a
process on a shared store)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "approvals"))
