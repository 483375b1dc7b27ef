"""Assembles one process's pieces from a catalog: backends, the registry, the policy, the dispatcher."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.clients.backends import Backends
from bot.core.catalog import Catalog, load_catalog
from bot.core.errors import CatalogError
from bot.core.policy import GroupResolver, Policy
from bot.deploys.facade import Deploys
from bot.dispatch.dispatcher import Dispatcher


def catalog_path(explicit: str | None = None) -> Path:
    """--catalog, else $SVCBOT_CATALOG, else ./catalog.yaml."""
    if explicit:
        return Path(explicit)
    if os.environ.get("SVCBOT_CATALOG"):
        return Path(os.environ["SVCBOT_CATALOG"])
    default = Path("catalog.yaml")
    if default.exists():
        return default
    raise CatalogError([
        "no catalog: pass --catalog PATH or set SVCBOT_CATALOG "
        "(examples/catalog.yaml is a commented example; `svcbot demo` brings its own)"
    ])


@dataclass
class Runtime:
    catalog: Catalog
    backends: Backends
    dispatcher: Dispatcher

    @property
    def deploys(self) -> Deploys:
        return self.dispatcher.deploys

    def close(self) -> None:
        """Release connections; safe to call twice. Runs were given their time by
        deploys.close_store(grace) before this, if the caller wanted to wait for them; here nobody waits."""
        self.deploys.close()
        self.backends.close()


def build_runtime(catalog: Catalog | str | Path, resolve_user_group: GroupResolver | None = None) -> Runtime:
    from commands import registry  # noqa: PLC0415 - the registry imports every verb; only wiring needs it

    if not isinstance(catalog, Catalog):
        catalog = load_catalog(catalog)
    backends = Backends(catalog)
    dispatcher = Dispatcher(catalog, backends, registry(), Policy(catalog, resolve_user_group))
    return Runtime(catalog=catalog, backends=backends, dispatcher=dispatcher)
