"""The container image, without a Docker engine: hadolint passes, the Dockerfile keeps its promises
(non-root, read-only friendly, no build tools in the runtime stage), and its two install steps work here:
the wheels build, and svcbot installs from them offline into a clean venv and runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ship_chart import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BUILD_TOOLS = ("gcc", "g++", "make", "build-essential", "cc ", "clang", "python3-dev", "libc6-dev")


def stages() -> dict[str, list[str]]:
    """Dockerfile instructions by stage name (continuation lines joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.upper().startswith("FROM "):
            match = re.search(r"\bAS\s+(\S+)", stripped, re.IGNORECASE)
            current = match.group(1) if match else stripped
            found[current] = []
        found.setdefault(current, []).append(stripped)
    return found


def test_hadolint_passes(hadolint: str) -> None:
    """hadolint finds nothing to report in the Dockerfile (its default threshold: any finding fails)."""
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_multi_stage_with_a_clean_runtime() -> None:
    """A build stage makes the wheels; the runtime stage installs them and never compiles or apt-installs."""
    found = stages()
    assert list(found)[-2:] == ["build", "runtime"]
    assert any("pip wheel" in line for line in found["build"])
    runtime = "\n".join(found["runtime"])
    assert "apt-get install" not in runtime
    for tool in BUILD_TOOLS:
        assert tool not in runtime, tool
    assert "--no-index --find-links=/wheels" in runtime
    assert "python:3.11-slim" in DOCKERFILE.read_text(encoding="utf-8")


def test_runtime_runs_as_uid_10001_with_svcbot_serve() -> None:
    """Non-root numeric user (what runAsNonRoot checks), `svcbot serve` by default, OCI labels, writable
    paths only under /data and TMPDIR."""
    runtime = stages()["runtime"]
    assert "USER 10001:10001" in runtime
    assert 'ENTRYPOINT ["svcbot"]' in runtime
    assert 'CMD ["serve"]' in runtime
    text = "\n".join(runtime)
    for label in ("title", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{label}=" in text
    assert "HOME=/data" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    """Every path the Dockerfile COPYs from the context is re-included by .dockerignore, nothing else."""
    copied = set()
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied.update(part.rstrip("/") for part in line.split()[1:-1])
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
               if line.startswith("!")}
    assert copied == allowed


@pytest.mark.slow
def test_wheel_installs_offline_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    """The Dockerfile's steps: `pip wheel` svcbot and its dependencies, install them with --no-index into
    a fresh venv, then `svcbot --help` and `svcbot check` run from that venv."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("bot", "commands", "sandbox"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    # Nothing from this process' environment may stand in for a dependency (PYTHONPATH would let pip skip one).
    build_env = {key: value for key, value in os.environ.items()
                 if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_TARGET", "PIP_PREFIX"}}
    built = subprocess.run([*pip, "wheel", "--quiet", "--wheel-dir", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=240, env=build_env, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    assert list(wheels.glob("svcbot-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=build_env)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                                "--no-index", f"--find-links={wheels}", "svcbot"],
                               capture_output=True, text=True, timeout=240, env=build_env, check=False)
    assert installed.returncode == 0, installed.stderr[-3000:]

    svcbot = str(venv / "bin" / "svcbot")
    clean_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    helped = subprocess.run([svcbot, "--help"], capture_output=True, text=True, timeout=60, env=clean_env,
                            cwd=tmp_path, check=False)
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout
    checked = subprocess.run([svcbot, "check", "--catalog", str(ROOT / "examples" / "catalog.yaml")],
                             capture_output=True, text=True, timeout=60, env=clean_env, cwd=tmp_path, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "OK" in checked.stdout
    # The installed package, not the source tree, answered.
    located = subprocess.run([str(venv / "bin" / "python"), "-c", "import bot; print(bot.__file__)"],
                             capture_output=True, text=True, timeout=60, env=clean_env, cwd=tmp_path, check=True)
    assert str(venv) in located.stdout
