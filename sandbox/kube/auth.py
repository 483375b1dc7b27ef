"""Who may talk to the sandbox API servers, and what they may do: TLS with a CA made at start, bearer
tokens for two identities, and RBAC for the bot's identity with the chart's own Role.

- TLS: one CA per KubeSandbox (trustme), one server certificate for 127.0.0.1 and localhost; the kubeconfig
  carries the CA as `certificate-authority-data`.
- Authentication: `Authorization: Bearer <token>`. A missing or unknown token gets 401 with Kubernetes'
  Status (`Unauthorized`), as on a server with anonymous requests disabled.
- Identities: the bot (`system:serviceaccount:svcbot:svcbot`, bound by the chart's Role in the namespaces of
  the catalog's environments) and an admin (`kubernetes-admin`, in `system:masters`: everything).
- Authorization (RBAC): the bot's rules are sandbox/kube/rbac_rules.yaml, a copy of the chart's
  `svcbot.namespaceRules` block. Every authenticated user may read the discovery and health paths
  (system:discovery, system:public-info-viewer) and create SelfSubjectAccessReviews and
  SelfSubjectRulesReviews (system:basic-user), as on a real cluster.
"""

from __future__ import annotations

import base64
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RULES_FILE = Path(__file__).resolve().parent / "rbac_rules.yaml"
BOT_USER = "system:serviceaccount:svcbot:svcbot"
ADMIN_USER = "kubernetes-admin"
ADMIN_GROUP = "system:masters"

# Non-resource paths every authenticated user may GET (system:discovery, system:public-info-viewer)
PUBLIC_PATHS = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi")
# Resources every authenticated user may create (system:basic-user)
SELF_REVIEWS = {("authorization.k8s.io", "selfsubjectaccessreviews"),
                ("authorization.k8s.io", "selfsubjectrulesreviews"), ("authentication.k8s.io", "selfsubjectreviews")}


@dataclass(frozen=True)
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()

    def allows(self, group: str, resource: str, verb: str, name: str) -> bool:
        return (("*" in self.api_groups or group in self.api_groups)
                and ("*" in self.resources or resource in self.resources)
                and ("*" in self.verbs or verb in self.verbs)
                and (not self.resource_names or name in self.resource_names))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": list(self.verbs), "apiGroups": list(self.api_groups),
                               "resources": list(self.resources)}
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        return out


def load_rules(path: Path = RULES_FILE) -> list[Rule]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [Rule(tuple(r.get("apiGroups") or ()), tuple(r.get("resources") or ()), tuple(r.get("verbs") or ()),
                 tuple(r.get("resourceNames") or ())) for r in raw]


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    token: str
    # namespace -> rules (a RoleBinding per managed namespace); admin: no rules, the group decides
    namespace_rules: dict[str, list[Rule]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def allowed(self, group: str, resource: str, verb: str, namespace: str, name: str = "") -> bool:
        """May this user do `verb` on `resource` (with its subresource: "pods/log") in `namespace`
        ("" = cluster scope)?"""
        if self.admin:
            return True
        if (group, resource) in SELF_REVIEWS and verb == "create":
            return True
        return any(rule.allows(group, resource, verb, name) for rule in self.namespace_rules.get(namespace, ()))

    def rules_in(self, namespace: str) -> list[dict[str, Any]]:
        """What SelfSubjectRulesReview reports: the basic-user rules, then the Role's."""
        if self.admin:
            return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        basic = [{"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                  "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
                 {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]}]
        return basic + [r.as_dict() for r in self.namespace_rules.get(namespace, ())]


class Auth:
    """The CA, the server certificate, the tokens and the bot's bindings of one KubeSandbox."""

    def __init__(self, bot_namespaces: dict[str, list[str]], rules: list[Rule] | None = None) -> None:
        import trustme  # noqa: PLC0415 - only the Kubernetes stand-in needs it

        self._ca = trustme.CA(organization_name="svcbot sandbox", organization_unit_name="kube")
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1", common_name="sandbox-kube-apiserver")
        self.rules = load_rules() if rules is None else rules
        self.bot_token = "svcbot-" + secrets.token_urlsafe(24)
        self.admin_token = "admin-" + secrets.token_urlsafe(24)
        self.bot_namespaces = bot_namespaces  # cluster -> the namespaces where the bot's Role is bound
        self._ssl: ssl.SSLContext | None = None
        self._users: dict[str, dict[str, User]] = {}

    # --- TLS ----------------------------------------------------------------------------------------------

    @property
    def ca_pem(self) -> bytes:
        return self._ca.cert_pem.bytes()

    @property
    def ca_data(self) -> str:
        """The kubeconfig's certificate-authority-data."""
        return base64.b64encode(self.ca_pem).decode()

    def server_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._cert.configure_cert(ctx)
            ctx.set_alpn_protocols(["http/1.1"])  # no h2: kubectl and httpx would otherwise ask for it
            self._ssl = ctx
        return self._ssl

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the sandbox's CA (for tests and scripts speaking raw HTTP)."""
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(self.ca_pem)
        return path

    # --- identities -----------------------------------------------------------------------------------------

    def users(self, cluster: str) -> dict[str, User]:
        """token -> user, for one cluster."""
        cached = self._users.get(cluster)
        if cached is not None:
            return cached
        bot = User(BOT_USER, ("system:serviceaccounts", "system:serviceaccounts:svcbot", "system:authenticated"),
                   self.bot_token, dict.fromkeys(self.bot_namespaces.get(cluster, []), self.rules))
        admin = User(ADMIN_USER, (ADMIN_GROUP, "system:authenticated"), self.admin_token)
        self._users[cluster] = {bot.token: bot, admin.token: admin}
        return self._users[cluster]

    def authenticate(self, cluster: str, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer "):
            return None
        return self.users(cluster).get(header[len("Bearer "):].strip())
