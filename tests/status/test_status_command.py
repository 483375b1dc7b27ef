"""The status command's own pieces: the selector memory (seen from the Kubernetes API's side), env validation."""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bot.core.catalog import parse_catalog
from bot.core.errors import NotFound
from bot.replies.status import StatusReply
from commands import status as status_command

PATIENCE = 30.0  # seconds: how long a test waits for something that must happen


# --- the selector memory ------------------------------------------------------------------------------
# `status` lists a deployment's replica sets and pods by its selector. The first look at a deployment has to
# read the deployment to learn it; later looks remember it (apps/v1 selectors are immutable) and ask for the
# lists in the same round as the deployment. Seen from the API server with the deployment read held (a stall
# on `get deployments`): a list asked by a remembered selector is answered while the deployment read is still
# held, so the request log shows it *before* the deployment read; a list that had to wait for the deployment
# shows after it.


class SelectorWorld:
    """A deployment of its own in the sandbox's prod (no other test has looked at it), its service in the
    catalog, and the prod cluster's request log read for it."""

    def __init__(self, stack: Any, sandbox_catalog: dict[str, Any],
                 runtime_for: Callable[[dict[str, Any]], Any]) -> None:
        self.cluster = stack.kube.cluster("prod")
        self.name = f"selector-{uuid.uuid4().hex[:8]}"
        services = {**sandbox_catalog["services"],
                    self.name: {**sandbox_catalog["services"]["payment"], "deployment": self.name}}
        settings = {**sandbox_catalog["settings"], "command_deadline": f"{PATIENCE:g}s"}
        self.runtime = runtime_for(dict(sandbox_catalog, services=services, settings=settings))
        self._api_client = k8s_config.new_client_from_config(config_file=str(stack.directory / "kubeconfig"),
                                                             context="sandbox-prod-admin")
        self.apps = k8s.AppsV1Api(self._api_client)

    def close(self) -> None:
        self.cluster.faults.clear()
        self._api_client.close()

    def create(self, labels: dict[str, str]) -> None:
        container = {"name": "app", "image": "registry.example.com/payment:1.4.2"}
        self.apps.create_namespaced_deployment("prod", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": self.name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
        })

    def recreate(self, labels: dict[str, str]) -> None:
        """Delete the deployment and create it again with another selector (the only way to change one)."""
        self.apps.delete_namespaced_deployment(self.name, "prod")
        self.create(labels)

    def log(self) -> list[str]:
        """This deployment's requests in the order the server finished them: "deployment" for a read of it,
        "pods <selector>" / "replicasets <selector>" for a list by one of its selectors."""
        entries = []
        for method, path, _code in list(self.cluster.requests):
            split = urlsplit(path)
            if method != "GET":
                continue
            if split.path.endswith(f"/deployments/{self.name}"):
                entries.append("deployment")
                continue
            selector = parse_qs(split.query).get("labelSelector", [""])[0]
            if self.name in selector and split.path.endswith(("/pods", "/replicasets")):
                entries.append(f"{split.path.rsplit('/', 1)[1]} {selector}")
        return entries

    def look(self, *, early: tuple[str, ...] = ()) -> list[str]:
        """`status <service> prod` with the deployment read held until the lists in `early` were answered
        (each must come while it is held), then released; returns the new part of the request log."""
        before = len(self.log())
        self.cluster.faults.set(mode="stall", seconds=PATIENCE * 2, resource="deployments", verb="get")
        held = self.cluster.faults.hits
        answer: list[Any] = []
        asking = threading.Thread(target=lambda: answer.append(self.runtime.dispatcher.execute(
            f"status {self.name} prod", "U0DAVE", source="terminal", follow_runs=True)))
        asking.start()
        try:
            wait_for(lambda: self.cluster.faults.hits > held, "the deployment read held by the API server")
            for entry in early:
                wait_for(lambda entry=entry: entry in self.log()[before:], f"{entry} answered while it is held")
        finally:
            self.cluster.faults.clear()
            asking.join(PATIENCE)
        assert len(answer) == 1, "the status command did not answer"
        assert isinstance(answer[0], StatusReply), answer[0]
        assert answer[0].envs[0].desired == 1
        return self.log()[before:]


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {PATIENCE:g}s"
        time.sleep(0.01)


@pytest.fixture(name="selectors")
def _selectors(stack: Any, sandbox_catalog: dict[str, Any],
               runtime_for: Callable[[dict[str, Any]], Any]) -> Iterator[SelectorWorld]:
    world = SelectorWorld(stack, sandbox_catalog, runtime_for)
    try:
        yield world
    finally:
        world.close()


def test_the_first_look_lists_by_the_selector_the_deployment_names(selectors: SelectorWorld) -> None:
    """Nothing remembered yet: the lists go out once the deployment is read, by its selector."""
    selectors.create({"app": selectors.name})
    pods = f"pods app={selectors.name}"
    log = selectors.look()
    assert log[0] == "deployment"  # held until released: a list asked without waiting would come first
    assert sorted(log[1:]) == [pods, f"replicasets app={selectors.name}"]


def test_a_remembered_selector_is_asked_without_waiting_for_the_deployment(selectors: SelectorWorld) -> None:
    """The next look lists by the remembered selector at once (answered while the deployment read is held)
    and asks nothing more once the deployment confirms it."""
    selectors.create({"app": selectors.name})
    selectors.look()
    early = (f"pods app={selectors.name}", f"replicasets app={selectors.name}")
    log = selectors.look(early=early)
    assert sorted(log[:2]) == sorted(early)
    assert log[2:] == ["deployment"]


def test_a_changed_selector_replaces_the_remembered_one(selectors: SelectorWorld) -> None:
    """A deployment re-created with another selector: the look that finds it lists again by the new one, and
    the look after that asks by the new one at once."""
    selectors.create({"app": selectors.name})
    selectors.look()
    old, new = f"app={selectors.name}", f"app={selectors.name},track=v2"
    selectors.recreate({"app": selectors.name, "track": "v2"})
    log = selectors.look(early=(f"pods {old}",))
    assert log.index(f"pods {old}") < log.index("deployment") < log.index(f"pods {new}")
    assert f"replicasets {new}" in log[log.index("deployment"):]
    log = selectors.look(early=(f"pods {new}", f"replicasets {new}"))
    assert log[-1] == "deployment"
    assert not any(old == entry.split(" ", 1)[1] for entry in log if entry != "deployment")


CATALOG = """
clusters: {c: {context: c}}
environments: {dev: {cluster: c, namespace: dev}, prod: {cluster: c, namespace: prod}}
services: {payment: {}}
"""


def test_envs_validates_names() -> None:
    """`status` touches every environment unless one is named; unknown names are NotFound with the known ones."""
    catalog = parse_catalog(CATALOG)
    parser = status_command.build_parser()
    assert status_command.envs(parser.parse_args(["payment"]), catalog) == ("dev", "prod")
    assert status_command.envs(parser.parse_args(["all", "prod"]), catalog) == ("prod",)
    with pytest.raises(NotFound, match=r"unknown environment 'qa' \(known: dev, prod\)"):
        status_command.envs(argparse.Namespace(service="payment", env="qa"), catalog)
    with pytest.raises(NotFound, match=r"unknown service 'nope' \(known: payment\)"):
        status_command.envs(argparse.Namespace(service="nope", env=None), catalog)
