"""The simulated container registry: which tags exist, and how an image behaves when it runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

BEHAVIOURS = ("crashing", "leaking", "unready", "failing", "erroring", "slow")


@dataclass
class Repository:
    tags: set[str] = field(default_factory=set)
    crashing: set[str] = field(default_factory=set)  # exits 1 shortly after start -> CrashLoopBackOff
    leaking: set[str] = field(default_factory=set)  # killed by the OOM killer (exit 137) -> CrashLoopBackOff
    unready: set[str] = field(default_factory=set)  # /readyz answers 503
    failing: set[str] = field(default_factory=set)  # one-shot commands (Jobs) exit 1
    erroring: set[str] = field(default_factory=set)  # ~5 % of requests answer 500 (its /metrics say so)
    slow: set[str] = field(default_factory=set)  # p99 latency ~2 s (its /metrics say so)


def split_image(image: str) -> tuple[str, str]:
    """'registry.example.com/payment:1.4.1' -> ('registry.example.com/payment', '1.4.1')."""
    if "@" in image:
        repo, _, digest = image.partition("@")
        return repo, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, "latest"


class Registry:
    def __init__(self, hosts: list[str] | None = None, repos: dict[str, Repository] | None = None):
        self.hosts = set(hosts or [])
        self.repos: dict[str, Repository] = repos or {}

    @classmethod
    def from_seed(cls, data: Any) -> Registry:
        data = data if isinstance(data, dict) else {}
        repos: dict[str, Repository] = {}
        for name, spec in (data.get("repositories") or {}).items():
            spec = spec or {}
            repos[name] = Repository(**{k: {str(t) for t in spec.get(k) or []} for k in ("tags", *BEHAVIOURS)})
        return cls([str(h) for h in data.get("hosts") or []], repos)

    def exists(self, image: str) -> bool:
        repo, tag = split_image(image)
        spec = self.repos.get(repo)
        if spec is None:
            host = repo.split("/", 1)[0] if "/" in repo else ""
            return host not in self.hosts  # unknown repositories of the private registry do not exist
        return tag.startswith("@") or tag in spec.tags

    def has(self, image: str, behaviour: str) -> bool:
        repo, tag = split_image(image)
        spec = self.repos.get(repo)
        return spec is not None and tag in getattr(spec, behaviour)

    def tags(self, repo: str) -> list[str]:
        spec = self.repos.get(repo)
        return sorted(spec.tags) if spec else []

    def digest(self, image: str) -> str:
        return "sha256:" + hashlib.sha256(image.encode()).hexdigest()

    def image_id(self, image: str) -> str:
        repo, _ = split_image(image)
        return f"{repo}@{self.digest(image)}"

    def size(self, image: str) -> int:
        return 18_000_000 + int(hashlib.sha256(image.encode()).hexdigest()[:6], 16) % 40_000_000
