"""The Secrets ingress-nginx annotations name, read for what they are used for. Pure.

`auth-secret` (auth-type basic) names an htpasswd Secret, read as its `auth-secret-type`
says (discovery/htpasswd.py): auth-file, the htpasswd text in key `auth`; auth-map, one
key per user with the hash as value. `proxy-ssl-secret` names a Secret with `ca.crt` (the
CA that verifies the pods' certificates) and optionally `tls.crt`/`tls.key` (seaway's
client certificate). The snapshot builder reads each named Secret once per change into an
`AuthSecret` (Snapshot.auth_secrets); the Ingress translator takes users and CA from there.

What makes a Secret unusable is what makes ingress-nginx deny the location (every path
answers 503, until the Secret is fixed): the Secret missing; for auth-file, no key `auth`
(auth/main.go dumpSecretAuthFile); for proxy-ssl, neither a key pair nor `ca.crt`, or a
`ca.crt` that is not PEM (store/backend_ssl.go getPemCertificate). A usable htpasswd with
bad lines keeps its good users (nginx skips what it cannot match) and reports the rest;
one with no usable user at all answers every request 401.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from discovery.htpasswd import HtpasswdUsers, htpasswd_text, parse_auth_map
from discovery.model import GenericSecret, TLSSecret
from discovery.nginx_settings import IngressAnnotations
from discovery.tls_pem import ca_problem, pem_problem

NsName = tuple[str, str]
NO_USERS = HtpasswdUsers()
Use = Literal["auth-file", "auth-map", "proxy-ssl"]


@dataclass(frozen=True, slots=True)
class Htpasswd:
    """An auth-secret read as `secret_type` says. `unusable` non-empty: ingress-nginx
    denies the paths (503), and so does seaway."""

    users: HtpasswdUsers = NO_USERS
    unusable: str = ""


@dataclass(frozen=True, slots=True)
class ProxySSLMaterial:
    """A proxy-ssl-secret: `ca_pem` verifies the pods (b"": none, so ingress-nginx never
    turns verification on); `cert_pem`/`key_pem` the client certificate, which
    ingress-nginx presents only together with a CA. `unusable` non-empty: 503."""

    ca_pem: bytes = b""
    cert_pem: bytes = b""
    key_pem: bytes = b""
    unusable: str = ""


@dataclass(frozen=True, slots=True)
class AuthSecret:
    """A Secret an Ingress names in auth-secret or proxy-ssl-secret, read for each use an
    Ingress makes of it (None: no Ingress uses it that way)."""

    namespace: str
    name: str
    auth_file: Htpasswd | None = None
    auth_map: Htpasswd | None = None
    proxy_ssl: ProxySSLMaterial | None = None

    def htpasswd(self, secret_type: str) -> Htpasswd | None:
        return self.auth_map if secret_type == "auth-map" else self.auth_file


def secret_uses(annotations: Iterable[IngressAnnotations]) -> dict[NsName, frozenset[Use]]:
    """Every Secret the parsed annotations name, with the uses made of it."""
    uses: dict[NsName, set[Use]] = {}
    for anns in annotations:
        basic = anns.basic_auth
        if basic is not None:
            key = (basic.secret_namespace, basic.secret_name)
            uses.setdefault(key, set()).add(basic.secret_type)
        ssl = anns.backends.proxy_ssl
        if ssl is not None:
            uses.setdefault((ssl.secret_namespace, ssl.secret_name), set()).add("proxy-ssl")
    return {key: frozenset(found) for key, found in uses.items()}


def read_auth_secret(secret: GenericSecret | TLSSecret, uses: Iterable[Use]) -> AuthSecret:
    """`secret` read for each of `uses`."""
    meta, data = secret.meta, secret.data
    wanted = set(uses)
    auth_file = auth_map = proxy_ssl = None
    if "auth-file" in wanted:
        text = data.get("auth")
        if text is None:
            auth_file = Htpasswd(unusable="data[auth]: required (the htpasswd file)")
        else:
            auth_file = Htpasswd(htpasswd_text(text))
    if "auth-map" in wanted:
        auth_map = Htpasswd(parse_auth_map(data))
    if "proxy-ssl" in wanted:
        proxy_ssl = read_proxy_ssl(data)
    return AuthSecret(meta.namespace, meta.name, auth_file, auth_map, proxy_ssl)


def read_proxy_ssl(data: Mapping[str, bytes]) -> ProxySSLMaterial:
    """ingress-nginx's getPemCertificate for a proxy-ssl-secret."""
    ca = data.get("ca.crt", b"")
    cert, key = data.get("tls.crt"), data.get("tls.key")
    if not ca:
        if cert is not None and key is not None:
            return ProxySSLMaterial()  # a key pair alone: no verification, no client cert
        return ProxySSLMaterial(unusable="data: neither ca.crt nor tls.crt and tls.key")
    problem = ca_problem(ca)
    if problem:
        return ProxySSLMaterial(unusable=f"data[ca.crt]: {problem}")
    if cert and key:
        problem = pem_problem(cert, key)
        if problem:
            return ProxySSLMaterial(unusable=f"data: {problem}")
        return ProxySSLMaterial(ca, cert, key)
    return ProxySSLMaterial(ca)
