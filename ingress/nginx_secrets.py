"""The Secrets an Ingress's annotations name, resolved for its routes. Pure.

`auth-secret` gives the BasicAuth filter its users; `proxy-ssl-secret` gives the
UpstreamProtocol filter its CA (when proxy-ssl-verify is on) and client certificate. The
Secrets come read from the Snapshot (discovery/auth_secrets.py); what cannot be used is
said once per Ingress, with what the Ingress answers meanwhile, as ingress-nginx would:

- the Secret missing, or unusable for that use (auth-file without key `auth`; a
  proxy-ssl-secret with neither key pair nor ca.crt, or a bad ca.crt): every path of the
  Ingress answers 503 until it is fixed (ingress-nginx denies the location);
- an htpasswd with no usable user: every request answers 401 (nginx finds no user);
- bad htpasswd lines: those users cannot log in (401), the others can;
- proxy-ssl-verify on without ca.crt: ingress-nginx writes no proxy_ssl_verify at all, so
  the pods' certificates are not verified; seaway does the same, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from discovery.auth_secrets import AuthSecret, ProxySSLMaterial
from discovery.nginx_settings import IngressAnnotations

NsName = tuple[str, str]
Users = tuple[tuple[str, str], ...]
NO_MATERIAL = ProxySSLMaterial()


DENIED_EFFECT = "every path of the Ingress answers 503 until it is fixed (as ingress-nginx)"


@dataclass(frozen=True, slots=True)
class SecretProblem:
    """Something wrong with a Secret an Ingress names. ``message`` names the field
    ("data[auth] line 3: ...") or says "not found"; ``effect`` what is answered meanwhile;
    ``denies``: the Ingress's paths answer 503."""

    annotation: str  # "auth-secret" or "proxy-ssl-secret"
    secret: NsName
    message: str
    effect: str = ""
    denies: bool = False

    def text(self, where: str) -> str:
        """The line for the translator's report of the Ingress `where`."""
        ref = "/".join(self.secret)
        effect = f": {self.effect}" if self.effect else ""
        return f"{where}: {self.annotation} {ref}: {self.message}{effect}"


@dataclass(frozen=True, slots=True)
class IngressSecrets:
    """What an Ingress's named Secrets give its routes, and what is wrong with them
    (what its filters do is said by ingress/filter_text.py)."""

    users: Users = ()
    proxy_ssl: ProxySSLMaterial = NO_MATERIAL
    problems: tuple[SecretProblem, ...] = ()

    @property
    def denied(self) -> bool:
        """Whether the paths of the Ingress answer 503."""
        return any(p.denies for p in self.problems)


NO_SECRETS = IngressSecrets()


def ingress_secrets(
    anns: IngressAnnotations, secrets: Mapping[NsName, AuthSecret]
) -> IngressSecrets:
    """The Secrets one Ingress's annotations name, resolved."""
    basic, ssl = anns.basic_auth, anns.backends.proxy_ssl
    if basic is None and ssl is None:
        return NO_SECRETS
    problems: list[SecretProblem] = []
    users: Users = ()
    material = NO_MATERIAL
    if basic is not None:
        key = (basic.secret_namespace, basic.secret_name)
        found = secrets.get(key)
        read = found.htpasswd(basic.secret_type) if found is not None else None
        if read is None or read.unusable:
            why = read.unusable if read is not None else "not found"
            problems.append(SecretProblem("auth-secret", key, why, DENIED_EFFECT, True))
        else:
            users = read.users.users
            problems.extend(SecretProblem("auth-secret", key, p) for p in read.users.problems)
            if not users:
                problems.append(SecretProblem(
                    "auth-secret", key, "no usable user", "every request answers 401"
                ))  # fmt: skip
    if ssl is not None:
        key = (ssl.secret_namespace, ssl.secret_name)
        found = secrets.get(key)
        read_ssl = found.proxy_ssl if found is not None else None
        if read_ssl is None or read_ssl.unusable:
            why = read_ssl.unusable if read_ssl is not None else "not found"
            problems.append(SecretProblem("proxy-ssl-secret", key, why, DENIED_EFFECT, True))
        else:
            material = read_ssl
            if ssl.verify and not material.ca_pem:
                problems.append(SecretProblem(
                    "proxy-ssl-secret", key, "no ca.crt although proxy-ssl-verify is on",
                    "the pods' certificates are not verified (ingress-nginx then sets no "
                    "proxy_ssl_verify)",
                ))  # fmt: skip
    return IngressSecrets(users, material, tuple(problems))
