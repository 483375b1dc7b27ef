"""/svc diff <service> <envA> <envB> [--live]: configuration drift between two environments.

Without --live: the two profile files the catalog names (`services.<name>.config`). With --live: what
each environment's cluster runs with (mounted ConfigMaps, envFrom, env), compared with each other, and
each against its own declared profile (drift). Secrets are compared by digest and never shown.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from functools import partial

from bot.clients.lanes import Fanout
from bot.core.catalog import Catalog
from bot.core.errors import BotError, UsageError, UserError
from bot.dispatch.command import Command, CommandParser, Invocation
from bot.insight.configdiff import KeyValue, compare, env_var_name, flatten, is_secret, required_variables, shown
from bot.insight.liveconfig import LiveConfig, fetch_live_config, live_settings
from bot.insight.profiles import Profile, load_profile
from bot.replies.base import Reply
from bot.replies.diff import DiffReply, Drift

USAGE = "/svc diff <service> <envA> <envB> [--live]"


def build_parser() -> CommandParser:
    parser = CommandParser("diff", USAGE)
    parser.add_argument("service")
    parser.add_argument("env_a")
    parser.add_argument("env_b")
    parser.add_argument("--live", action="store_true")
    return parser


def envs(args: argparse.Namespace, catalog: Catalog) -> tuple[str, ...]:
    catalog.service(args.service)
    catalog.environment(args.env_a)
    catalog.environment(args.env_b)
    if args.env_a == args.env_b:
        if not args.live:
            raise UsageError(f"name two different environments (both are {args.env_a}); "
                             "--live compares one environment's profile with its cluster", usage=USAGE)
        return (args.env_a,)
    return (args.env_a, args.env_b)


def run(args: argparse.Namespace, invocation: Invocation) -> Reply:
    if args.live:
        return _run_live(args, invocation)
    catalog = invocation.catalog
    profile_a = load_profile(catalog, args.service, args.env_a, deadline=invocation.deadline)
    profile_b = load_profile(catalog, args.service, args.env_b, deadline=invocation.deadline)
    diff = compare(flatten(profile_a.data), flatten(profile_b.data), key_patterns=catalog.secrets.key_patterns)
    return DiffReply(service=args.service, env_a=args.env_a, env_b=args.env_b, source_a=profile_a.source,
                     source_b=profile_b.source, diff=diff)


def _run_live(args: argparse.Namespace, invocation: Invocation) -> Reply:
    catalog = invocation.catalog
    patterns = catalog.secrets.key_patterns
    config = catalog.service(args.service).config
    pattern = config.pattern if config is not None else None
    names = (args.env_a,) if args.env_a == args.env_b else (args.env_a, args.env_b)

    # The two clusters answer in parallel; the first failure (no deployment, cluster down) answers the
    # command at once, without waiting for the other cluster (its calls end by the deadline anyway).
    fanout: Fanout[str] = Fanout(invocation.deadline)
    for env in names:
        kube = invocation.backends.kube(catalog.environment(env).cluster)
        fanout.submit(kube.lane, env, partial(fetch_live_config, kube, catalog, args.service, env,
                                                   deadline=invocation.deadline))
    lives: dict[str, LiveConfig] = {}
    for env, result in fanout:
        if isinstance(result, BotError):
            raise result  # the first failure, as it happens
        lives[env] = result

    notes: list[str] = []
    declared: dict[str, dict[str, object]] = {}
    for env in names:
        profile = _declared_profile(invocation, args.service, env, notes) if config is not None else None
        if profile is not None:
            declared[env] = flatten(profile.data)
    if config is None:
        notes.append(f"service {args.service} declares no profiles (services.{args.service}.config): drift not checked")
    known = {key for settings in declared.values() for key in settings}
    live_flat = {env: live_settings(lives[env], pattern, env, known) for env in names}

    drift = tuple(_drift(env, declared[env], live_flat[env], lives[env], patterns) for env in names if env in declared)
    for env in names:
        notes.extend(f"{env}: {note}" for note in lives[env].notes)
    live_a, live_b = lives[args.env_a], lives[args.env_b]
    diff = compare(live_flat[args.env_a], live_flat[args.env_b], key_patterns=patterns, typed=False)
    return DiffReply(service=args.service, env_a=args.env_a, env_b=args.env_b, source_a=live_a.description,
                     source_b=live_b.description, diff=diff, live=True, drift=drift, notes=tuple(notes))


def _drift(env: str, declared: dict[str, object], live_flat: dict[str, object], live: LiveConfig,
           patterns: tuple[str, ...]) -> Drift:
    """The declared profile against the live keys; env vars that supply its ${VAR}s are expected, not drift."""
    diff = compare(declared, live_flat, key_patterns=patterns, typed=False, a_is_template=True)
    needed: set[str] = set()
    for value in declared.values():
        needed |= required_variables(value)
    supplied: list[KeyValue] = []
    for name in sorted(needed):
        value = _variable_value(name, declared, live_flat, live)
        if value is not _UNSET:
            supplied.append(KeyValue(name, shown(value, is_secret(name, value, patterns))))
    names = {item.key for item in supplied}
    only_live = tuple(item for item in diff.only_b if item.key not in names)
    return Drift(env=env, diff=replace(diff, only_b=only_live), supplied_variables=tuple(supplied),
                 missing_variables=tuple(sorted(needed - names)))


_UNSET = object()


def _variable_value(name: str, declared: dict[str, object], live_flat: dict[str, object], live: LiveConfig) -> object:
    """What a ${name} resolves to at run time: an env var (also by relaxed binding), or a property."""
    for candidate in (name, env_var_name(name)):
        if candidate in live.env:
            return live.env[candidate].comparable()
    for settings in (live_flat, declared):
        if name in settings:
            return settings[name]
    return _UNSET


def _declared_profile(invocation: Invocation, service: str, env: str, notes: list[str]) -> Profile | None:
    """The environment's profile, or None with a note saying why drift is not checked for it."""
    try:
        return load_profile(invocation.catalog, service, env, deadline=invocation.deadline)
    except UserError as exc:
        notes.append(f"{env}: drift not checked: {exc.message}")
        return None


COMMAND = Command(
    name="diff",
    summary="compare configuration between two environments (secrets never shown)",
    usage=USAGE,
    build_parser=build_parser,
    run=run,
    envs=envs,
    examples=(
        "/svc diff payment staging prod",
        "/svc diff payment staging prod --live",
        "/svc diff payment prod prod --live",
    ),
)
