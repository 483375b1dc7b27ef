"""The Kubernetes client: this package is the only code that imports `kubernetes`. `KubeClient` (client.py)
reads for the verbs; `DeployKube` (writes.py) is what a deploy run changes and reads."""

from bot.clients.kube.client import KubeClient, PodHttpResponse, ResourceRef
from bot.clients.kube.writes import DeployKube

__all__ = ["DeployKube", "KubeClient", "PodHttpResponse", "ResourceRef"]
