"""The configuration a deployment runs with, read from its cluster, for `/svc diff --live`.

What counts (the service's container in the deployment's pod template):
- ConfigMaps mounted as volumes (directly or through a projected volume): every key (or the `items`
  the volume selects) is a file; a file whose name matches the catalog's profile pattern is a profile;
- `envFrom` ConfigMaps (each key an env var, with the optional prefix) and `env` entries: literal values,
  and `configMapKeyRef` values read from the ConfigMap (ConfigMaps are not secret);
- `secretKeyRef`, `fieldRef` and `resourceFieldRef` stay references: a Secret is never read.

`fetch_live_config` talks to the cluster (through the client it is given); `live_settings` is pure
and turns a `LiveConfig` into flat keys comparable with a profile (see bot.insight.configdiff).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.catalog import Catalog
from bot.core.errors import NotFound
from bot.insight.configdiff import Reference, bind_env, flatten
from bot.insight.profiles import parse_profile, profile_pattern

JSON = dict[str, Any]


class ConfigReader(Protocol):
    """What this module needs from a cluster client (bot.clients.kube.KubeClient has it)."""

    def read_deployment(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON: ...

    def read_config_map(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON: ...


@dataclass(frozen=True)
class EnvValue:
    """One env var of the container: a literal `value`, or a `reference` that is never resolved."""

    value: str | None = None
    reference: str | None = None  # "secret payment-db, key password", "field metadata.name"
    source: str = ""  # where it came from: "env", "config map payment-env (envFrom)"

    def comparable(self) -> object:
        return Reference(self.reference) if self.reference is not None else self.value


@dataclass(frozen=True)
class MountedFile:
    config_map: str
    key: str  # the ConfigMap key (the file name unless `items` renames it)
    path: str  # where the container sees it
    content: str


@dataclass(frozen=True)
class LiveConfig:
    """A container's configuration as the cluster holds it. `configmaps`: name -> data of every
    ConfigMap the container uses; `env`: its environment in Kubernetes' order (envFrom, then env)."""

    deployment: str
    namespace: str
    container: str
    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    env: dict[str, EnvValue] = field(default_factory=dict)
    files: tuple[MountedFile, ...] = ()
    notes: tuple[str, ...] = ()  # missing ConfigMaps, Secrets used but not read, ...

    @property
    def description(self) -> str:
        used = ", ".join(sorted(self.configmaps)) or "none"
        return (f"deployment {self.deployment} (namespace {self.namespace}), container {self.container}; "
                f"config maps: {used}")


# --- reading the cluster ------------------------------------------------------------------------------


def fetch_live_config(client: ConfigReader, catalog: Catalog, service: str, env: str, *,
                      deadline: float) -> LiveConfig:
    """Read the service's deployment and the ConfigMaps its container uses in one environment."""
    environment = catalog.environment(env)
    name = catalog.deployment_name(service)
    deployment = client.read_deployment(environment.namespace, name, deadline=deadline)
    return read_live_config(client, deployment, environment.namespace, catalog.service(service).container,
                            deadline=deadline)


def read_live_config(client: ConfigReader, deployment: Mapping[str, Any], namespace: str, container_name: str,
                     *, deadline: float | None = None) -> LiveConfig:
    """The LiveConfig of one container of a deployment (JSON as the API server returns it)."""
    name = str(_dig(deployment, "metadata", "name") or "?")
    pod = _dig(deployment, "spec", "template", "spec") or {}
    containers = [item for item in pod.get("containers") or [] if isinstance(item, dict)]
    notes: list[str] = []
    container = next((item for item in containers if item.get("name") == container_name), None)
    if container is None:
        names = [str(item.get("name")) for item in containers]
        if len(containers) != 1:
            raise NotFound(f"deployment {name} has no container '{container_name}' "
                           f"(containers: {', '.join(names) or 'none'}; services.*.container names it)")
        container = containers[0]
        notes.append(f"no container '{container_name}' in deployment {name}: read its only container, {names[0]}")
    reader = _ConfigMaps(client, namespace, deadline)

    env: dict[str, EnvValue] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        if ref := source.get("configMapRef"):
            data = reader.get(str(ref.get("name")), optional=bool(ref.get("optional")), use="envFrom")
            for key, value in (data or {}).items():
                env[prefix + key] = EnvValue(value=value, source=f"config map {ref.get('name')} (envFrom)")
        elif ref := source.get("secretRef"):
            notes.append(f"every key of secret {ref.get('name')} is in the environment"
                         f"{f' (prefix {prefix})' if prefix else ''}: not read, secrets are never shown")
    for item in container.get("env") or []:
        var = str(item.get("name"))
        if "valueFrom" not in item:
            env[var] = EnvValue(value=str(item.get("value") or ""), source="env")
            continue
        env[var] = _env_reference(var, item.get("valueFrom") or {}, reader)

    volumes = {str(volume.get("name")): volume for volume in pod.get("volumes") or [] if isinstance(volume, dict)}
    files: list[MountedFile] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(str(mount.get("name")))
        if volume is None:
            continue
        mount_path = str(mount.get("mountPath") or "")
        sub_path = mount.get("subPath")
        for projection in _config_map_projections(volume):
            data = reader.get(str(projection.get("name")), optional=bool(projection.get("optional")),
                              use=f"mounted at {mount_path}")
            for key, path in _selected_keys(data or {}, projection.get("items")):
                if sub_path and path != sub_path:
                    continue
                shown = mount_path if sub_path else f"{mount_path.rstrip('/')}/{path}"
                files.append(MountedFile(str(projection.get("name")), key, shown, (data or {})[key]))
        if _has_secret_volume(volume):
            notes.append(f"a secret volume is mounted at {mount_path}: not read, secrets are never shown")
    notes.extend(reader.notes)
    return LiveConfig(deployment=name, namespace=namespace, container=str(container.get("name")),
                      configmaps=reader.used, env=env, files=tuple(files), notes=tuple(notes))


def _env_reference(var: str, source: Mapping[str, Any], reader: _ConfigMaps) -> EnvValue:
    if ref := source.get("configMapKeyRef"):
        config_map, key = str(ref.get("name")), str(ref.get("key"))
        data = reader.get(config_map, optional=bool(ref.get("optional")), use=f"env {var}")
        if data is not None and key in data:
            return EnvValue(value=data[key], source=f"config map {config_map}, key {key}")
        if data is not None and not ref.get("optional"):
            reader.notes.append(f"env {var}: config map {config_map} has no key {key}")
        return EnvValue(reference=f"config map {config_map}, key {key} (missing)", source="env")
    if ref := source.get("secretKeyRef"):
        return EnvValue(reference=f"secret {ref.get('name')}, key {ref.get('key')}", source="env")
    if ref := source.get("fieldRef"):
        return EnvValue(reference=f"field {ref.get('fieldPath')}", source="env")
    if ref := source.get("resourceFieldRef"):
        return EnvValue(reference=f"resource {ref.get('resource')}", source="env")
    return EnvValue(reference="an unknown valueFrom", source="env")


def _config_map_projections(volume: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    if isinstance(volume.get("configMap"), dict):
        yield volume["configMap"]
    for source in _dig(volume, "projected", "sources") or []:
        if isinstance(source, dict) and isinstance(source.get("configMap"), dict):
            yield source["configMap"]


def _has_secret_volume(volume: Mapping[str, Any]) -> bool:
    if "secret" in volume:
        return True
    return any(isinstance(source, dict) and "secret" in source for source in _dig(volume, "projected", "sources") or [])


def _selected_keys(data: Mapping[str, str], items: object) -> list[tuple[str, str]]:
    """(ConfigMap key, file path) of what a volume projects: `items` when given, else every key."""
    if not isinstance(items, list) or not items:
        return [(key, key) for key in sorted(data)]
    return [(str(item.get("key")), str(item.get("path") or item.get("key")))
            for item in items if isinstance(item, dict) and item.get("key") in data]


class _ConfigMaps:
    """Reads each ConfigMap once; a missing one becomes a note (Kubernetes would not start the pod)."""

    def __init__(self, client: ConfigReader, namespace: str, deadline: float | None) -> None:
        self.client = client
        self.namespace = namespace
        self.deadline = deadline
        self.used: dict[str, dict[str, str]] = {}
        self.notes: list[str] = []
        self._missing: set[str] = set()

    def get(self, name: str, *, optional: bool, use: str) -> dict[str, str] | None:
        if name in self.used:
            return self.used[name]
        if name in self._missing:
            return None
        try:
            body = self.client.read_config_map(self.namespace, name, deadline=self.deadline)
        except NotFound:
            self._missing.add(name)
            if not optional:
                self.notes.append(f"config map {name} ({use}) does not exist: pods cannot start with it")
            return None
        data = {str(key): str(value) for key, value in (body.get("data") or {}).items()}
        if body.get("binaryData"):
            binary = ", ".join(sorted(body["binaryData"]))
            self.notes.append(f"config map {name} has binary keys, not compared: {binary}")
        self.used[name] = data
        return data


def _dig(data: object, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


# --- live configuration as flat keys ------------------------------------------------------------------


def live_settings(live: LiveConfig, pattern: str | None, env: str, known_keys: Iterable[str] = ()) -> dict[str, object]:
    """Flat keys of a LiveConfig, in the order the application would let them override each other.

    Mounted files that match the profile pattern are parsed as profiles (this environment's when there
    are several); other files are flat keys named by their path. Env vars come last and bind to profile
    keys by relaxed binding (`known_keys` plus the keys of mounted profiles); an env var no key binds to
    keeps its own name. Secret references stay `Reference`s.
    """
    settings: dict[str, object] = {}
    matcher = profile_pattern(pattern) if pattern else None
    profiles = [item for item in live.files if matcher is not None and matcher.fullmatch(_file_name(item.path))]
    own = [item for item in profiles if matcher is not None and
           (match := matcher.fullmatch(_file_name(item.path))) is not None and match.group("profile") == env]
    chosen = own or profiles
    for item in chosen:
        source = f"config map {item.config_map}, key {item.key}"
        settings.update(flatten(parse_profile(item.content, source)))
    for item in live.files:
        if item not in profiles:
            settings[item.path] = item.content
    values = {name: value.comparable() for name, value in live.env.items()}
    settings.update(bind_env(values, [*known_keys, *settings]))
    return settings


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]
