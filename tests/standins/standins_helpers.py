"""Helpers shared by the stand-in fidelity tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

KUBECTL = Path(sys.executable).parent / "kubectl"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def deployment_yaml(name: str, extra_spec: str = "") -> str:
    """A one-replica Deployment manifest; `extra_spec` is more YAML under `spec:` (two-space indented)."""
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\n"
            f"spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n{extra_spec}"
            f"  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
            f"    spec: {{containers: [{{name: app, image: 'registry.example.com/payment:1.4.2'}}]}}\n")
