"""The chart's Role allows exactly the Kubernetes API calls svcbot makes: compared with the calls in
bot/clients/kube/'s source, and with what the sandbox API server recorded while a script ran every verb."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ship_chart import ROOT, template_rules
from ship_rbac import (
    ApiCall,
    call_for_method,
    calls_in_source,
    compare,
    expand_rules,
    normalize_served,
    without_writes,
)

from bot.core.catalog import Catalog
from commands import registry

NAMESPACE_RULES = template_rules("svcbot.namespaceRules")
KUBE_PACKAGE = ROOT / "bot" / "clients" / "kube"

# Every verb that talks to Kubernetes, on the sandbox's seed world (sandbox/seed): payment runs in dev,
# staging and prod; 1.4.3 exists in the registry and is newer than what staging runs; staging and dev deploys
# need no approval. Then a deploy in dev is cancelled while its first Job runs (the Job is deleted).
SCRIPT = (
    "status all",
    "status payment",
    "status payment staging",
    "probe payment staging",
    "logs payment staging --since 15m",
    "diff payment staging prod --live",
    "deploy payment staging 1.4.3",
    "history payment staging",
    "rollback payment staging",
)
CANCELLED_DEPLOY = "deploy payment dev 1.4.3"
SCRIPT_VERBS = sorted({line.split()[0] for line in SCRIPT} | {"cancel"})


def pending_verbs() -> list[str]:
    known = registry()
    return [verb for verb in SCRIPT_VERBS if verb not in known]


class TestComparison:
    def test_rules_expand_to_calls(self) -> None:
        """A rule allows every (group, resource, verb) combination it lists; subresources split at '/'."""
        rules = [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]}]
        assert expand_rules(rules) == {ApiCall("", "pods", "", "get"), ApiCall("", "pods", "log", "get")}

    def test_wildcards_refused(self) -> None:
        """A wildcard cannot be compared as a set, and the chart must never need one."""
        with pytest.raises(ValueError, match="wildcard"):
            expand_rules([{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}])

    def test_compare_reports_both_directions(self) -> None:
        """Calls without a rule are `missing`, rules without a call are `unused`, both named in the text."""
        rules = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]
        result = compare({ApiCall("apps", "deployments", "", "get"), ApiCall("", "pods", "", "list")}, rules)
        assert result.missing == {ApiCall("", "pods", "", "list")}
        assert result.unused == {ApiCall("apps", "deployments", "", "patch")}
        assert not result.exact
        assert "list core/pods" in result.describe()
        assert "patch apps/deployments" in result.describe()

    def test_compare_exact(self) -> None:
        """The same calls as rules compare exact."""
        rules = [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]
        assert compare({ApiCall("batch", "jobs", "", "create")}, rules).exact

    def test_served_records_normalized(self) -> None:
        """Tuples and mappings are accepted; records without a resource (discovery) are dropped."""
        served = [("apps", "deployments", "", "get"), {"group": "", "resource": "pods", "subresource": "proxy",
                                                        "verb": "get"}, ("", "", "", "get")]
        assert normalize_served(served) == {ApiCall("apps", "deployments", "", "get"),
                                            ApiCall("", "pods", "proxy", "get")}

    @pytest.mark.parametrize(("api", "method", "watch", "expected"), [
        ("AppsV1Api", "patch_namespaced_deployment", False, ApiCall("apps", "deployments", "", "patch")),
        ("AppsV1Api", "list_namespaced_deployment", True, ApiCall("apps", "deployments", "", "watch")),
        ("AppsV1Api", "list_namespaced_replica_set", False, ApiCall("apps", "replicasets", "", "list")),
        ("CoreV1Api", "read_namespaced_pod_log", False, ApiCall("", "pods", "log", "get")),
        ("CoreV1Api", "connect_get_namespaced_pod_proxy_with_path", False, ApiCall("", "pods", "proxy", "get")),
        ("CoreV1Api", "read_namespaced_config_map", False, ApiCall("", "configmaps", "", "get")),
        ("AutoscalingV2Api", "list_namespaced_horizontal_pod_autoscaler", False,
         ApiCall("autoscaling", "horizontalpodautoscalers", "", "list")),
        ("CoordinationV1Api", "replace_namespaced_lease", False,
         ApiCall("coordination.k8s.io", "leases", "", "update")),
        ("BatchV1Api", "delete_namespaced_job", False, ApiCall("batch", "jobs", "", "delete")),
        ("BatchV1Api", "delete_collection_namespaced_job", False, ApiCall("batch", "jobs", "", "deletecollection")),
    ])
    def test_client_methods_map_to_rbac_checks(self, api: str, method: str, watch: bool, expected: ApiCall) -> None:
        """The generated client's method names say which RBAC check the API server makes."""
        assert call_for_method(api, method, watch=watch) == expected

    def test_source_reader_follows_bound_apis_and_watches(self, tmp_path: Path) -> None:
        """`api = self._api(...)` then `api.x(...)`, direct `self._api(...).x`, a method given to a Watch's
        stream, and the deploy side's `self.client._api(...)` are all found."""
        module = tmp_path / "kube.py"
        module.write_text(
            "class K:\n"
            "    def a(self):\n"
            "        api = self._api('AppsV1Api')\n"
            "        return api.read_namespaced_deployment('n', 'ns')\n"
            "    def b(self, w):\n"
            "        api = self._api('AppsV1Api')\n"
            "        return w.stream(api.list_namespaced_deployment, 'ns')\n"
            "    def c(self):\n"
            "        return self._api('BatchV1Api').create_namespaced_job('ns', {})\n"
            "    def d(self):\n"
            "        api = self.client._api('CoordinationV1Api')\n"
            "        return api.replace_namespaced_lease('n', 'ns', {})\n"
        )
        calls, problems = calls_in_source(module)
        assert problems == []
        assert calls == {ApiCall("apps", "deployments", "", "get"), ApiCall("apps", "deployments", "", "watch"),
                         ApiCall("batch", "jobs", "", "create"), ApiCall("coordination.k8s.io", "leases", "", "update")}

    def test_source_reader_reads_lean_get_paths(self, tmp_path: Path) -> None:
        """`self._get(<path segments>)` (the read verbs' GETs without the generated layer): a name after the
        resource is a get, none a list; the group comes from /apis/<group>."""
        module = tmp_path / "kube.py"
        module.write_text(
            "class K:\n"
            "    def a(self, ns, name):\n"
            "        return self._get('apis', 'apps', 'v1', 'namespaces', ns, 'deployments', name)\n"
            "    def b(self, ns):\n"
            "        return self._get('api', 'v1', 'namespaces', ns, 'pods', query={'labelSelector': 'a=b'})\n"
        )
        calls, problems = calls_in_source(module)
        assert problems == []
        assert calls == {ApiCall("apps", "deployments", "", "get"), ApiCall("", "pods", "", "list")}

    def test_read_only_filter_keeps_reads(self) -> None:
        """without_writes drops write verbs and rules left empty."""
        rules = [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]},
                 {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}]
        assert without_writes(rules) == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}]


class TestSource:
    def test_every_kube_call_is_allowed(self) -> None:
        """Each generated-client call bot/clients/kube/ makes is allowed by the chart's namespace Role."""
        calls, problems = calls_in_source(KUBE_PACKAGE)
        assert problems == []
        assert calls, "no Kubernetes call found in bot/clients/kube/"
        result = compare(calls, NAMESPACE_RULES)
        assert not result.missing, result.describe()

    def test_every_rule_is_used_by_the_kube_client(self) -> None:
        """Each call the Role allows is one bot/clients/kube/ makes: no access kept for code that does not exist."""
        calls, _ = calls_in_source(KUBE_PACKAGE)
        result = compare(calls, NAMESPACE_RULES)
        assert not result.unused, result.describe()

    def test_only_the_kube_package_talks_to_kubernetes(self) -> None:
        """No other module of bot/ or commands/ imports the kubernetes client: reading bot/clients/kube/ is enough."""
        offenders = []
        for folder in ("bot", "commands"):
            for path in (ROOT / folder).rglob("*.py"):
                text = path.read_text(encoding="utf-8")
                if KUBE_PACKAGE not in path.parents and ("import kubernetes" in text or "from kubernetes" in text):
                    offenders.append(str(path.relative_to(ROOT)))
        assert offenders == []


# --- the sandbox's record of a scripted run ----------------------------------------------------------

def served_sets(stack: Any) -> list[set[tuple[str, str, str, str]]]:
    """The `served` set of every sandbox cluster the stack runs (sandbox/kube/cluster.py: Cluster.served)."""
    found: list[set[tuple[str, str, str, str]]] = []
    seen: set[int] = set()

    def visit(node: Any, depth: int) -> None:
        if node is None or id(node) in seen or depth > 3:
            return
        seen.add(id(node))
        served = getattr(node, "served", None)
        if isinstance(served, set):
            found.append(served)
            return
        if isinstance(node, dict):
            for value in node.values():
                visit(value, depth + 1)
        elif isinstance(node, list | tuple):
            for value in node:
                visit(value, depth + 1)
        else:
            for name in ("kube", "clusters", "_clusters"):
                visit(getattr(node, name, None), depth + 1)

    visit(stack, 0)
    return found


def actor(catalog: Catalog, verb: str, env: str) -> str | None:
    """A user a rule lets run `verb` in `env` without approval (first member of the first such rule)."""
    for rule in catalog.access.rules:
        if verb in rule.verbs and ("*" in rule.envs or env in rule.envs) and rule.approval is None:
            for who in rule.who:
                members = catalog.access.groups.get(who, (who,))
                users = [m for m in members if m.startswith("U")]
                if users:
                    return users[0]
    return None


def wait_quiet(sets: list[set[tuple[str, str, str, str]]], quiet: float = 0.6, limit: float = 20.0) -> None:
    """Until no new kind of call has been served for `quiet` seconds (a deploy run finishing)."""
    deadline = time.monotonic() + limit
    last, changed = sum(map(len, sets)), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = sum(map(len, sets))
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed >= quiet:
            return


def env_of(line: str) -> str:
    """The environment a script line acts in (its third word), for picking a user allowed there."""
    words = line.split()
    return words[2] if len(words) > 2 else "prod"


def cancel_a_running_deploy(runtime: Any, user: str, stack: Any) -> None:
    """Start CANCELLED_DEPLOY in a thread, wait until its first Job exists, and cancel it by its request id
    while the Job runs (a cancel before the Job exists deletes nothing either).

    The sandbox runs at real time meanwhile: a Job takes 40 ms at the module's time scale, too short a window
    to cancel in on a busy machine (a cancel that comes after the Job ended deletes nothing); at real time it
    runs 2 s, and the step sees the cancel while it waits for the Job, and deletes it."""
    dev = stack.kube.cluster(runtime.catalog.environment("dev").cluster)
    scale, stack.kube.time_scale = stack.kube.time_scale, 1.0
    dev.requests.clear()  # the cluster's request log (the served set, compared below, stays)

    def job_created() -> bool:
        return any(method == "POST" and path.split("?")[0].endswith("/jobs")
                   for method, path, _code in list(dev.requests))

    try:
        worker = threading.Thread(target=runtime.dispatcher.execute, args=(CANCELLED_DEPLOY, user),
                                  kwargs={"source": "terminal"}, daemon=True)
        worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not job_created():
            time.sleep(0.02)
        request_id = ""
        while time.monotonic() < deadline and not request_id:
            history = runtime.dispatcher.execute("history payment dev", user, source="terminal", follow_runs=True)
            request_id = next((entry.request_id for entry in getattr(history, "entries", ())
                               if entry.outcome == "RUNNING" and entry.request_id), "")
        if request_id:
            runtime.dispatcher.execute(f"cancel {request_id}", user, source="terminal", follow_runs=True)
        worker.join(timeout=30)
    finally:
        stack.kube.time_scale = scale


def watch_a_while(runtime: Any) -> None:
    """/svc watch's streams (bot/watch/): a channel watches payment in staging; the watcher lists and watches
    each kind it streams in that namespace, answered by the API server, then stops."""
    from bot.watch.book import Book  # noqa: PLC0415
    from bot.watch.watcher import Watcher  # noqa: PLC0415

    Book(runtime.deploys.store()).subscribe("C0RBAC", "payment", "staging", "U0RBAC")
    watcher = Watcher(runtime.catalog, runtime.deploys.store, runtime.backends.kube, interval=0.1).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                watcher.streams and all(stream.watches for stream in list(watcher.streams.values()))):
            time.sleep(0.02)
    finally:
        watcher.stop()


@pytest.fixture(name="served_run", scope="module")
def _served_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[ApiCall]]:
    if importlib.util.find_spec("sandbox.stack") is None:
        pytest.skip("sandbox/stack.py (SandboxStack) is not written yet")
    from bot.runtime import build_runtime  # noqa: PLC0415
    from sandbox.stack import SandboxStack  # noqa: PLC0415

    directory = tmp_path_factory.mktemp("rbac-sandbox")
    monkeypatch = pytest.MonkeyPatch()
    try:
        with SandboxStack() as stack:
            stack.start(directory, time_scale=0.02)
            sets = served_sets(stack)
            if not sets:
                pytest.skip("the sandbox stack exposes no cluster with a `served` record")
            monkeypatch.setenv("KUBECONFIG", str(directory / "kubeconfig"))
            for key, value in getattr(stack, "environment", dict)().items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("SVCBOT_DB", str(directory / "svcbot.db"))
            for served in sets:
                served.clear()  # only what svcbot asks from here on
            runtime = build_runtime(directory / "catalog.yaml")
            try:
                known = registry()
                for line in SCRIPT:
                    verb = line.split()[0]
                    if verb in known:
                        user = actor(runtime.catalog, verb, env_of(line)) or "U0NOBODY"
                        runtime.dispatcher.execute(line, user, source="terminal", follow_runs=True)
                        wait_quiet(sets)
                if "cancel" in known:
                    cancel_a_running_deploy(runtime, actor(runtime.catalog, "deploy", "dev") or "U0NOBODY", stack)
                    wait_quiet(sets)
                if "watch" in known:
                    watch_a_while(runtime)
                    wait_quiet(sets)
            finally:
                runtime.close()
            yield normalize_served(call for served in sets for call in list(served))
    finally:
        monkeypatch.undo()


class TestServed:
    def test_every_served_call_is_allowed(self, served_run: set[ApiCall]) -> None:
        """Nothing svcbot asked the API server for during the script would be refused by the chart's Role."""
        assert served_run, "the script made no Kubernetes call"
        result = compare(served_run, NAMESPACE_RULES)
        assert not result.missing, result.describe()

    def test_every_rule_was_used(self, served_run: set[ApiCall]) -> None:
        """Every call the chart's Role allows was made by some verb of the script: no spare access."""
        if pending_verbs():
            pytest.skip(f"verbs not written yet: {', '.join(pending_verbs())}")
        result = compare(served_run, NAMESPACE_RULES)
        assert not result.unused, result.describe()
