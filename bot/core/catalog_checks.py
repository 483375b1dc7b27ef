"""The catalog's checks on the raw YAML, before and beside the models: the file's shape (duplicate keys, depth),
references between sections (environments, clusters, pipelines, groups), who may be named in rules, and
pipelines (targets, cycles, placeholders). Each problem names its YAML path; `parse_catalog` reports them all
at once."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import ValidationError

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
GATED_VERBS = ("deploy", "rollback")
MAX_DEPTH = 20  # levels of nesting in a catalog file; the deepest key the models define is 8 levels down


def shown(name: str, limit: int = 40) -> str:
    """A name as quoted in a message: at most `limit` characters (what someone typed can be long)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


class _Node:
    """One open mapping or sequence while the YAML events are read: its path, and what comes next in it."""

    __slots__ = ("expect_key", "index", "is_mapping", "key", "keys", "path")

    def __init__(self, path: str, is_mapping: bool) -> None:
        self.path = path
        self.is_mapping = is_mapping
        self.keys: dict[str, int] = {}  # key -> line it was first seen on
        self.expect_key = True
        self.key = "?"
        self.index = 0

    def child(self) -> str:
        part = self.key if self.is_mapping else str(self.index)
        return f"{self.path}.{part}" if self.path else part

    def done_child(self) -> None:
        if self.is_mapping:
            self.expect_key = not self.expect_key
        else:
            self.index += 1


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def check_yaml_shape(text: str) -> list[str]:
    """Duplicate keys at any level and nesting deeper than MAX_DEPTH, each with its YAML path.

    Read from the parser's events, without building anything: PyYAML keeps the later of two equal keys
    silently, and builds nested nodes recursively (a deep document was a RecursionError traceback)."""
    problems: list[str] = []
    stack: list[_Node] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
            if stack:
                stack[-1].done_child()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        parent = stack[-1] if stack else None
        as_key = parent is not None and parent.is_mapping and parent.expect_key
        if as_key and parent is not None:
            key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
            line = _line(event)
            if isinstance(event, yaml.ScalarEvent) and key != "<<":
                if key in parent.keys:
                    where = f"{parent.path}.{shown(key)}" if parent.path else shown(key)
                    problems.append(f"{where}: duplicate key '{shown(key)}' (line {line}; first on line "
                                    f"{parent.keys[key]}): YAML keeps only the later one")
                else:
                    parent.keys[key] = line
            parent.key = shown(key)
        path = parent.child() if parent is not None and not as_key else (parent.path if parent else "")
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(stack) >= MAX_DEPTH:
                problems.append(f"{path or '(top level)'}: nested deeper than {MAX_DEPTH} levels "
                                f"(line {_line(event)})")
                return problems
            stack.append(_Node(path, isinstance(event, yaml.MappingStartEvent)))
        elif parent is not None:
            parent.done_child()
    return problems


def dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def describe_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        # Union members (e.g. `str | None`) add their type name to the location; drop those.
        loc = [part for part in loc if part not in {"str", "float", "int", "constrained-str", "none", "[key]"}]
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(f"{'.'.join(loc)}: unknown key '{loc[-1]}'")
            continue
        where = ".".join(loc) or "(top level)"
        if kind == "missing":
            problems.append(f"{where}: required key is missing")
        elif kind == "string_pattern_mismatch":
            pattern = error.get("ctx", {}).get("pattern", "")
            problems.append(f"{where}: {error['input']!r} does not match {pattern}")
        elif kind == "literal_error":
            problems.append(f"{where}: {error['input']!r} is not allowed ({error['ctx']['expected']})")
        elif kind == "value_error":
            problems.append(f"{where}: {error['ctx']['error']}")
        else:
            problems.append(f"{where}: {error['msg']}")
    return problems


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _known(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "none defined"


def check_references(raw: Mapping[str, Any]) -> list[str]:
    """Cross-section checks on the raw mapping (tolerates wrong types: those are pass 1's job)."""
    problems: list[str] = []
    clusters = _mapping(raw.get("clusters"))
    envs = _mapping(raw.get("environments"))
    services = _mapping(raw.get("services"))
    pipelines = _mapping(raw.get("pipelines"))
    access = _mapping(raw.get("access"))
    groups = _mapping(access.get("groups"))
    settings = _mapping(raw.get("settings"))

    default_env = settings.get("default_env", "prod")
    if isinstance(default_env, str) and envs and default_env not in envs:
        problems.append(f"settings.default_env: unknown environment '{default_env}' (known: {_known(envs)})")

    for name, cluster in clusters.items():
        cluster = _mapping(cluster)
        has_context = bool(cluster.get("context"))
        if has_context == bool(cluster.get("in_cluster")):
            problems.append(f"clusters.{name}: set exactly one of context or in_cluster: true")

    namespaces: dict[tuple[object, object], str] = {}
    for name, env in envs.items():
        env = _mapping(env)
        cluster = env.get("cluster")
        if isinstance(cluster, str) and cluster not in clusters:
            problems.append(f"environments.{name}.cluster: unknown cluster '{cluster}' (known: {_known(clusters)})")
        key = (cluster, env.get("namespace"))
        if key in namespaces:
            problems.append(
                f"environments.{name}.namespace: '{key[1]}' on cluster '{cluster}' is already "
                f"environment '{namespaces[key]}'"
            )
        namespaces[key] = name

    for name, service in services.items():
        service = _mapping(service)
        pipeline = service.get("pipeline")
        if isinstance(pipeline, str) and pipeline not in pipelines:
            problems.append(
                f"services.{name}.pipeline: unknown pipeline '{pipeline}' (known: {_known(pipelines)})"
            )
        pattern = service.get("version_pattern")
        if isinstance(pattern, str):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                problems.append(f"services.{name}.version_pattern: not a valid regular expression ({exc})")
            else:
                if not (pattern.startswith("^") and pattern.endswith("$")):
                    problems.append(f"services.{name}.version_pattern: must be anchored with ^ and $")
                elif compiled.match("1.0;rm -rf /") or compiled.match("$(id)") or compiled.match("a b"):
                    problems.append(
                        f"services.{name}.version_pattern: admits shell metacharacters or spaces; "
                        "allow only letters, digits, '.', '_', '+' and '-'"
                    )
        if pipeline is not None and not service.get("image"):
            problems.append(f"services.{name}.image: required when the service has a pipeline")

    secrets = _mapping(raw.get("secrets"))
    patterns = secrets.get("key_patterns")
    for index, pattern in enumerate(patterns if isinstance(patterns, list) else []):
        try:
            re.compile(str(pattern))
        except re.error as exc:
            problems.append(f"secrets.key_patterns.{index}: not a valid regular expression ({exc})")

    problems.extend(check_prometheus(raw))
    problems.extend(_check_groups(groups, _mapping(raw.get("terminal"))))
    problems.extend(_check_rules(access.get("rules"), groups, envs))
    for name, pipeline in pipelines.items():
        problems.extend(check_pipeline(f"pipelines.{name}", _mapping(pipeline), envs))
    return problems


PRINCIPALS = ("catalog group names (access.groups), Slack user ids (U…, W…), Slack user group ids (S…) "
              "or '*' (everyone)")


def _principal_problem(where: str, who: object, groups: Mapping[str, Any], *, star: bool = True) -> str | None:
    """Why an entry of who/approvers/a group is not a user, a group or '*' (None when it is one)."""
    if not isinstance(who, str):
        return None  # a wrong type: pass 1 says so
    if who in groups or (_is_principal(who) and (star or who != "*")):
        return None
    allowed = PRINCIPALS if star else PRINCIPALS.replace(" or '*' (everyone)", "")
    if re.fullmatch(NAME_PATTERN, who):
        return f"{where}: unknown group '{shown(who)}' (known: {_known(groups)}); entries are {allowed}"
    return f"{where}: '{shown(who)}' is not a Slack user or group id; entries are {allowed}"


def _check_groups(groups: Mapping[str, Any], terminal: Mapping[str, Any]) -> list[str]:
    """Group members are users, Slack user groups or other groups (no cycles); terminal users map to user ids."""
    problems: list[str] = []
    for name, members in groups.items():
        for position, member in enumerate(members if isinstance(members, list) else []):
            problem = _principal_problem(f"access.groups.{name}.{position}", member, groups, star=False)
            if problem:
                problems.append(problem)
    for cycle in _find_cycles({name: {"needs": [m for m in members if isinstance(m, str) and m in groups]}
                               for name, members in groups.items() if isinstance(members, list)}):
        problems.append(f"access.groups: groups contain each other in a cycle {' -> '.join(cycle)}")
    for os_user, user_id in _mapping(terminal.get("users")).items():
        if isinstance(user_id, str) and not re.fullmatch(r"[UW][A-Z0-9]{2,}", user_id):
            problems.append(f"terminal.users.{os_user}: '{shown(user_id)}' is not a Slack user id (U… or W…)")
    return problems


def _check_rules(rules: object, groups: Mapping[str, Any], envs: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if not isinstance(rules, list):
        return problems
    gated: dict[str, list[bool]] = {}
    for index, rule in enumerate(rules):
        rule = _mapping(rule)
        where = f"access.rules.{index}"
        who_list = rule.get("who")
        for position, who in enumerate(who_list if isinstance(who_list, list) else []):
            if problem := _principal_problem(f"{where}.who.{position}", who, groups):
                problems.append(problem)
        rule_envs = [env for env in (rule.get("envs") or ["*"]) if isinstance(env, str)]
        for position, env in enumerate(rule_envs):
            if env != "*" and env not in envs:
                problems.append(f"{where}.envs.{position}: unknown environment '{env}' (known: {_known(envs)})")
        approval = _mapping(rule.get("approval"))
        approvers = approval.get("approvers")
        for position, who in enumerate(approvers if isinstance(approvers, list) else []):
            if problem := _principal_problem(f"{where}.approval.approvers.{position}", who, groups):
                problems.append(problem)
        if isinstance(approvers, list) and not approvers:
            problems.append(f"{where}.approval.approvers: empty, so nobody could ever approve; name who may "
                            f"({PRINCIPALS})")
        elif isinstance(approvers, list) and all(isinstance(who, str) and who in groups
                                                 and not _group_has_members(who, groups) for who in approvers):
            problems.append(f"{where}.approval.approvers: every group named is empty, so nobody could ever "
                            "approve")
        verbs = [verb for verb in (rule.get("verbs") or []) if isinstance(verb, str)]
        if approval and not set(verbs) <= set(GATED_VERBS):
            problems.append(f"{where}.approval: approval applies only to deploy and rollback rules")
        if any(verb in GATED_VERBS for verb in verbs):
            covered = list(envs) if "*" in rule_envs else rule_envs
            for env in covered:
                gated.setdefault(env, []).append(bool(approval))
    for env, definition in envs.items():
        if _mapping(definition).get("protected") and not all(gated.get(env, [True])):
            problems.append(
                f"environments.{env}.protected: every deploy/rollback rule that names '{env}' "
                "needs an approval block"
            )
    return problems


def _group_has_members(name: str, groups: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """Whether a catalog group stands for anyone: a user, a Slack user group, or a group that does."""
    members = groups.get(name)
    for member in members if isinstance(members, list) else []:
        if not isinstance(member, str):
            continue
        if member in groups:
            if member not in seen and _group_has_members(member, groups, seen | {name}):
                return True
        elif _is_principal(member):
            return True
    return False


def _is_principal(who: str) -> bool:
    """'*', a Slack user id (U..., W...) or a Slack user group id (S...)."""
    return who == "*" or re.fullmatch(r"[UWS][A-Z0-9]{2,}", who) is not None


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN_VARS = ("service", "env", "version", "image", "namespace", "deployment", "container")


def check_pipeline(where: str, pipeline: Mapping[str, Any], envs: Mapping[str, Any]) -> list[str]:
    """Unknown targets, cycles, a missing goal, and placeholders naming unknown variables."""
    problems: list[str] = []
    targets = _mapping(pipeline.get("targets"))
    goal = pipeline.get("goal")
    if isinstance(goal, str) and goal not in targets:
        problems.append(f"{where}.goal: unknown target '{goal}' (known: {_known(targets)})")
    for name, target in targets.items():
        for index, need in enumerate(_mapping(target).get("needs") or []):
            if need not in targets:
                problems.append(
                    f"{where}.targets.{name}.needs.{index}: unknown target '{need}' (known: {_known(targets)})"
                )
    for cycle in _find_cycles(targets):
        problems.append(f"{where}.targets: dependency cycle {' -> '.join(cycle)}")

    known_vars = set(BUILTIN_VARS) | set(_mapping(pipeline.get("vars")))
    for env in envs.values():
        known_vars |= set(_mapping(_mapping(env).get("vars")))
    for name, target in targets.items():
        target_vars = known_vars | set(_mapping(_mapping(target).get("vars")))
        for path, text in _strings(_mapping(target), f"{where}.targets.{name}"):
            for var in _PLACEHOLDER.findall(text):
                if var not in target_vars:
                    problems.append(f"{path}: unknown variable '{{{var}}}' (known: {', '.join(sorted(target_vars))})")
    return problems


def _find_cycles(targets: Mapping[str, Any]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for need in _mapping(targets.get(node)).get("needs") or []:
            if need not in targets:
                continue
            if state.get(need) == 1:
                cycles.append([*stack[stack.index(need):], need])
            elif need not in state:
                visit(need, [*stack, need])
        state[node] = 2

    for node in targets:
        if node not in state:
            visit(node, [node])
    return cycles


def _strings(value: object, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")


def _has_verify(pipeline: Mapping[str, Any]) -> bool:
    for target in _mapping(pipeline.get("targets")).values():
        steps = _mapping(target).get("steps")
        if any(isinstance(step, dict) and "verify" in step for step in (steps if isinstance(steps, list) else [])):
            return True
    return False


def check_prometheus(raw: Mapping[str, Any]) -> list[str]:
    """A Prometheus shared by several clusters tells them apart by a label; verify steps need a Prometheus."""
    problems: list[str] = []
    clusters = _mapping(raw.get("clusters"))
    shared = raw.get("prometheus")
    without_own = [name for name, spec in clusters.items() if not _mapping(spec).get("prometheus")]
    if isinstance(shared, dict) and len(without_own) > 1 and not _mapping(shared.get("labels")).get("cluster"):
        problems.append(f"prometheus.labels.cluster: required when one Prometheus serves several clusters "
                        f"({_known(without_own)}); name the label holding the cluster's name (e.g. cluster)")
    for name, pipeline in _mapping(raw.get("pipelines")).items():
        pipeline = _mapping(pipeline)
        if _has_verify(pipeline) and shared is None and len(without_own) == len(clusters):
            problems.append(f"pipelines.{name}: has a verify step but no Prometheus is configured (add a "
                            "`prometheus:` section, or `prometheus:` under each cluster)")
        for target_name, target in _mapping(pipeline.get("targets")).items():
            steps = _mapping(target).get("steps")
            for index, step in enumerate(steps if isinstance(steps, list) else []):
                verify = _mapping(_mapping(step).get("verify"))
                interval, duration = verify.get("interval", 30), verify.get("duration", 300)
                if verify and _seconds(interval) > _seconds(duration):
                    problems.append(f"pipelines.{name}.targets.{target_name}.steps.{index}.verify.duration: "
                                    "shorter than its interval, so no check would run")
    return problems


def _seconds(value: object) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$", str(value).strip())
    return float(match.group(1)) * units[match.group(2)] if match else 0.0
