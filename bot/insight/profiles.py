"""Configuration profiles: the per-environment YAML files the catalog names for a service.

A service's `config: {dir, pattern, ref}` says where they are: `dir` (relative to the catalog file),
`pattern` with `{profile}` standing for the environment name (`application-{profile}.yaml`), and an
optional git `ref` when `dir` is inside a git checkout: the file is then read as it is at that commit
with `git show <ref>:./<file>` (an argument list, never a shell, under a timeout).

Errors say what to fix: a service without `config`, the exact path looked for, a YAML syntax error with
file, line and column (never the offending line itself: it may hold a secret), a duplicate key.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.core.catalog import Catalog
from bot.core.errors import BackendUnavailable, DeadlineExceeded, NotFound, UserError

GIT_TIMEOUT = 10.0  # seconds, unless the command's deadline is closer
MAX_PROFILE_BYTES = 2_000_000
# A git revision the catalog may name: branch, tag, commit, `HEAD~1`, `v1.2^{commit}`; never an option.
_GIT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@~^{}+-]{0,199}$")


@dataclass(frozen=True)
class Profile:
    """One environment's profile: where it came from and its parsed content (a mapping)."""

    env: str
    source: str  # what to call it in answers: the path as the catalog names it, and the ref if any
    data: dict[str, Any]


def profile_file_name(pattern: str, env: str) -> str:
    """`application-{profile}.yaml` with the environment name in place of `{profile}`."""
    return pattern.replace("{profile}", env)


def profile_pattern(pattern: str) -> re.Pattern[str]:
    """A regex matching file names made from `pattern`; group `profile` is the environment name."""
    before, _, after = pattern.partition("{profile}")
    return re.compile(re.escape(before) + r"(?P<profile>[A-Za-z0-9_.-]+)" + re.escape(after))


def load_profile(catalog: Catalog, service: str, env: str, *, deadline: float | None = None) -> Profile:
    """Read and parse one environment's profile for a service (from disk, or from git at `ref`)."""
    config = catalog.service(service).config
    directory = catalog.config_dir(service)
    if config is None or directory is None:
        raise NotFound(f"service '{service}' has no configuration profiles in the catalog "
                       f"(add services.{service}.config: {{dir, pattern}})")
    name = profile_file_name(config.pattern, env)
    shown = str(Path(config.dir) / name)
    if config.ref is None:
        text = _read_file(directory / name, env)
        return Profile(env=env, source=shown, data=parse_profile(text, shown))
    text = _read_from_git(directory, name, config.ref, env, deadline)
    source = f"{shown} at {config.ref}"
    return Profile(env=env, source=source, data=parse_profile(text, source))


def _read_file(path: Path, env: str) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PROFILE_BYTES + 1)
    except FileNotFoundError:
        raise NotFound(f"no profile for {env}: looked for {path}") from None
    except IsADirectoryError:
        raise UserError(f"the profile for {env} should be a file, but {path} is a directory") from None
    except OSError as exc:
        raise UserError(f"cannot read the profile for {env} at {path} ({exc.strerror or 'read error'})") from exc
    return _decode(data, str(path))


def _decode(data: bytes, source: str) -> str:
    if len(data) > MAX_PROFILE_BYTES:
        raise UserError(f"{source}: larger than {MAX_PROFILE_BYTES // 1_000_000} MB; not a configuration profile")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{source}: not UTF-8 text (byte {exc.start})") from exc


def _read_from_git(directory: Path, name: str, ref: str, env: str, deadline: float | None) -> str:
    if not _GIT_REF.match(ref) or ".." in ref:
        raise UserError(f"'{ref}' is not a git revision svcbot will read (services.*.config.ref)")
    timeout = GIT_TIMEOUT
    if deadline is not None:
        timeout = min(timeout, deadline - time.monotonic())
        if timeout <= 0:
            raise DeadlineExceeded("no time left to read the profile from git")
    # `./name` is relative to -C's directory; --end-of-options keeps the revision from reading as a flag.
    argv = ["git", "-C", str(directory), "--no-pager", "show", "--no-textconv", "--end-of-options",
            f"{ref}:./{name}"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False,  # noqa: S603
                              env=_git_environment())
    except FileNotFoundError as exc:
        raise BackendUnavailable("git is not installed here, and the catalog reads profiles at a git ref") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackendUnavailable(f"git did not answer within {timeout:.1f}s reading {name} at {ref}") from exc
    if done.returncode != 0:
        problem = " ".join(done.stderr.decode("utf-8", "replace").split())[:256]
        if "does not exist in" in problem or "exists on disk, but not in" in problem:
            raise NotFound(f"no profile for {env} at {ref}: looked for {directory / name} in that commit")
        if "invalid object name" in problem or "unknown revision" in problem:
            raise NotFound(f"git ref '{ref}' does not exist in {directory}")
        if "not a git repository" in problem:
            raise UserError(f"{directory} is not in a git checkout, but the catalog names a ref ({ref})")
        raise BackendUnavailable(f"git could not read {name} at {ref}: {problem}")
    return _decode(done.stdout, f"{name} at {ref}")


def _git_environment() -> dict[str, str]:
    """The process environment without variables that would point git at another repository."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"}}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


# --- parsing ------------------------------------------------------------------------------------------


class _ProfileLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: the later one silently winning is a classic drift."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden here
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: let the constructor report it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"duplicate key '{key}' (first at line {seen[key].start_mark.line + 1})", key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=True)


_ProfileLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_profile(text: str, source: str) -> dict[str, Any]:
    """YAML text -> a mapping; errors name the file, line and column (and never quote the line)."""
    try:
        data = yaml.load(text, Loader=_ProfileLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        # `problem` describes the error ("mapping values are not allowed here"); str(exc) would also
        # print the offending line, which may hold a secret.
        raise UserError(f"{source}: YAML syntax error{where}: {exc.problem or 'invalid YAML'}") from None
    except yaml.YAMLError:
        raise UserError(f"{source}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{source}: a profile must be a mapping of keys, not a {_yaml_kind(data)}")
    return data


def _yaml_kind(data: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(data), "value")
