"""GET requests for the read verbs, sent on the ApiClient's own connections without the generated API layer.

Why (issue 22, profile in docs/design-notes.md): a `/svc status` makes about 18 reads, and the generated
client spent more CPU around each one than the read itself: pydantic's argument validation, serialising the
parameters, refreshing the kubeconfig credentials on every call (which re-sets the configuration's host and
walks os.environ for proxies), and urllib3's PoolManager parsing and re-encoding the whole URL before handing
it to the same connection pool. Here a read is the path and query the generated method would have sent,
the same headers (Accept, User-Agent, the bearer token from the same configuration), on the same pool (so
the same TLS settings, client certificates and total deadlines), with the same outcome: the raw urllib3
response for a 2xx, `ApiException` (from the library, as the generated client raises it) otherwise.

Credentials are asked of the configuration at most once a second (`AUTH_REFRESH`): its hook is what reloads
an exec-plugin or service-account token that expired. With a proxy configured, the pool manager (which
knows the proxy) sends the request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes.client import rest
from kubernetes.client.exceptions import ApiException

AUTH_REFRESH = 1.0  # seconds a bearer token read from the configuration is reused
ACCEPT = "application/json"


def path_of(*segments: str) -> str:
    """An API path from its segments, each percent-encoded as the generated client does (no '/' inside)."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


class LeanGetter:
    """GETs for one ApiClient: its pool, its default headers, its configuration's credentials."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        configuration = api_client.configuration
        self.configuration = configuration
        host = str(configuration.host).rstrip("/")
        self.pool_manager = api_client.rest_client.pool_manager
        self.host = host
        parsed = urllib3.util.parse_url(host)
        self.prefix = (parsed.path or "").rstrip("/")  # a cluster served under a path (behind a proxy)
        via_proxy = isinstance(self.pool_manager, urllib3.ProxyManager) or not hasattr(
            self.pool_manager, "connection_from_url")
        self.pool = None if via_proxy else self.pool_manager.connection_from_url(host)
        self._lock = threading.Lock()
        self._auth: dict[str, str] = {}
        self._auth_at = -AUTH_REFRESH

    def headers(self) -> dict[str, str]:
        now = time.monotonic()
        if now - self._auth_at >= AUTH_REFRESH:
            auth: dict[str, str] = {}
            for setting in self.configuration.auth_settings().values():
                if setting.get("in") == "header" and setting.get("value"):
                    auth[str(setting["key"])] = str(setting["value"])
            with self._lock:
                self._auth, self._auth_at = auth, now
        return {**self.api_client.default_headers, "Accept": ACCEPT, **self._auth}

    def get(self, path: str, query: Mapping[str, str | None] | None, timeouts: tuple[float, float]) -> Any:
        """The urllib3 response (body not read) of GET `path`?`query`; ApiException for a non-2xx answer."""
        fields = {key: value for key, value in (query or {}).items() if value is not None}
        target = self.prefix + path + ("?" + urlencode(fields) if fields else "")
        timeout = urllib3.Timeout(connect=timeouts[0], read=timeouts[1])
        try:
            if self.pool is not None:
                response = self.pool.urlopen("GET", target, headers=self.headers(), timeout=timeout,
                                             preload_content=False, retries=False, redirect=False,
                                             assert_same_host=False)
            else:
                response = self.pool_manager.request("GET", self.host + target, headers=self.headers(),
                                                     timeout=timeout, preload_content=False)
        except urllib3.exceptions.SSLError as exc:  # as the library's REST layer words it
            raise ApiException(status=0, reason=f"{type(exc).__name__}\n{exc}") from exc
        if not 200 <= response.status <= 299:
            answer = rest.RESTResponse(response)
            answer.read()  # type: ignore[no-untyped-call]
            response.release_conn()
            raise ApiException.from_response(http_resp=answer, body=None, data=None)
        return response
