"""The deploy engine's side of a cluster: `DeployKube`, the writes a run makes (set image, template, Leases, Jobs)
and the reads it needs, on `KubeClient`'s call path (timeouts, error mapping) with `idempotent=False` for
writes, so nothing that changes the cluster is retried blindly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import urllib3

from bot.clients.deadlines import total_deadline
from bot.clients.kube.client import JSON, KubeClient, PodHttpResponse, ResourceRef, cut
from bot.core.errors import (
    BackendUnavailable,
    NotFound,
)

# --- deploys: the writes a run makes, and the reads it needs ------------------------------------------
# The deploy engine's calls: the writes (image patch, rollback patch, leases, jobs) and the reads only it
# needs (jobs, pod logs). Writes are never retried (`idempotent=False`): a patch or a create that timed
# out may have happened, so the caller re-reads instead of repeating it.


class DeployKube:
    """Deploy-side operations on one cluster's `KubeClient` (shares its connection pool and error mapping)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    @property
    def cluster(self) -> str:
        return self.client.name

    def _write_json(self, target: ResourceRef, request: Callable[[tuple[float, float]], Any], *,
                    deadline: float | None) -> JSON:
        with total_deadline(self.client._total(deadline)):
            response = self.client._call(target, request, deadline=deadline, idempotent=False)
            data = self.client.read_body_json(target, response)
        if not isinstance(data, dict):
            raise BackendUnavailable(f"cluster {self.cluster} sent a {type(data).__name__} for "
                                     f"{target.qualified_resource}, not an object")
        return data

    def _read(self, target: ResourceRef, request: Callable[[tuple[float, float]], Any], *,
              deadline: float | None) -> JSON:
        return self.client._read_json(target, request, deadline=deadline)

    # --- deployments ------------------------------------------------------------------------------------

    def read_deployment(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON:
        return self.client.read_deployment(namespace, name, deadline=deadline)

    def list_replicasets(self, namespace: str, label_selector: str | None = None, *,
                         deadline: float | None = None) -> list[JSON]:
        return self.client.list_replicasets(namespace, label_selector, deadline=deadline)

    def list_pods(self, namespace: str, label_selector: str | None = None, *,
                  deadline: float | None = None) -> list[JSON]:
        return self.client.list_pods(namespace, label_selector, deadline=deadline)

    def set_image(self, namespace: str, name: str, container: str, image: str, *,
                  deadline: float | None = None) -> JSON:
        """`kubectl set image`: a strategic-merge patch; containers merge by name, the others stay."""
        target = ResourceRef("patch", "deployments", "apps", "deployment", namespace, name)
        body = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
        api = self.client._api("AppsV1Api")
        return self._write_json(target, lambda t: api.patch_namespaced_deployment(
            name, namespace, body, _preload_content=False, _request_timeout=t), deadline=deadline)

    def replace_template(self, namespace: str, name: str, template: JSON, *,
                         deadline: float | None = None) -> JSON:
        """`kubectl rollout undo`: a JSON patch replacing /spec/template with an earlier ReplicaSet's."""
        target = ResourceRef("patch", "deployments", "apps", "deployment", namespace, name)
        operations = [{"op": "replace", "path": "/spec/template", "value": template}]
        api = self.client._api("AppsV1Api")
        return self._write_json(target, lambda t: api.patch_namespaced_deployment(
            name, namespace, operations, _preload_content=False, _request_timeout=t), deadline=deadline)

    # --- leases -----------------------------------------------------------------------------------------

    def read_lease(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON | None:
        """The Lease, or None when there is none."""
        try:
            return self.client.read_lease(namespace, name, deadline=deadline)
        except NotFound:
            return None

    def create_lease(self, namespace: str, body: JSON, *, deadline: float | None = None) -> JSON:
        """Create; Conflict when someone created it first (AlreadyExists)."""
        name = str(body.get("metadata", {}).get("name", ""))
        target = ResourceRef("create", "leases", "coordination.k8s.io", "lease", namespace, name)
        api = self.client._api("CoordinationV1Api")
        return self._write_json(target, lambda t: api.create_namespaced_lease(
            namespace, body, _preload_content=False, _request_timeout=t), deadline=deadline)

    def replace_lease(self, namespace: str, name: str, body: JSON, *, deadline: float | None = None) -> JSON:
        """PUT with the body's resourceVersion; Conflict when the Lease changed since it was read."""
        target = ResourceRef("update", "leases", "coordination.k8s.io", "lease", namespace, name)
        api = self.client._api("CoordinationV1Api")
        return self._write_json(target, lambda t: api.replace_namespaced_lease(
            name, namespace, body, _preload_content=False, _request_timeout=t), deadline=deadline)

    # --- jobs and their logs ------------------------------------------------------------------------------

    def create_job(self, namespace: str, body: JSON, *, deadline: float | None = None) -> JSON:
        name = str(body.get("metadata", {}).get("name", ""))
        target = ResourceRef("create", "jobs", "batch", "job", namespace, name)
        api = self.client._api("BatchV1Api")
        return self._write_json(target, lambda t: api.create_namespaced_job(
            namespace, body, _preload_content=False, _request_timeout=t), deadline=deadline)

    def read_job(self, namespace: str, name: str, *, deadline: float | None = None) -> JSON:
        target = ResourceRef("get", "jobs", "batch", "job", namespace, name)
        api = self.client._api("BatchV1Api")
        return self._read(target, lambda t: api.read_namespaced_job(
            name, namespace, _preload_content=False, _request_timeout=t), deadline=deadline)

    def delete_job(self, namespace: str, name: str, *, deadline: float | None = None) -> None:
        """Delete the Job and (in the background) its pods; a Job already gone is fine."""
        target = ResourceRef("delete", "jobs", "batch", "job", namespace, name)
        api = self.client._api("BatchV1Api")
        try:
            self._write_json(target, lambda t: api.delete_namespaced_job(
                name, namespace, propagation_policy="Background", _preload_content=False, _request_timeout=t),
                deadline=deadline)
        except NotFound:
            return

    def read_pod_log(self, namespace: str, pod: str, *, container: str | None = None,
                     tail_lines: int | None = None, deadline: float | None = None) -> str:
        """The pod's log as text (the last `tail_lines` lines when given)."""
        target = ResourceRef("get", "pods/log", "", "pod", namespace, pod)
        api = self.client._api("CoreV1Api")
        options: dict[str, Any] = {}
        if container:
            options["container"] = container
        if tail_lines:
            options["tail_lines"] = tail_lines
        with total_deadline(self.client._total(deadline)):
            response = self.client._call(target, lambda t: api.read_namespaced_pod_log(
                pod, namespace, _preload_content=False, _request_timeout=t, **options),
                deadline=deadline, idempotent=True)
            try:
                data = response.data
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise BackendUnavailable(f"cluster {self.cluster}: the log of pod {pod} broke off: "
                                         f"{cut(str(exc))}") from exc
            finally:
                response.release_conn()
        return bytes(data or b"").decode("utf-8", errors="replace")

    def pod_http_get(self, namespace: str, pod: str, port: int, path: str, *,
                     deadline: float | None = None) -> PodHttpResponse:
        return self.client.pod_http_get(namespace, pod, port, path, deadline=deadline)
