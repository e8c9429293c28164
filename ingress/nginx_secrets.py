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


@dataclass(frozen=True, slots=True)
class IngressSecrets:
    """What an Ingress's named Secrets give its routes. ``denied`` non-empty: its paths
    answer 503; ``warnings`` are for its report; ``notes`` say what was applied."""

    users: Users = ()
    proxy_ssl: ProxySSLMaterial = ProxySSLMaterial()
    denied: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


NO_SECRETS = IngressSecrets()


def ingress_secrets(
    anns: IngressAnnotations, secrets: Mapping[NsName, AuthSecret], where: str
) -> IngressSecrets:
    """The Secrets of one Ingress's annotations (`where`: "Ingress ns/name", for messages)."""
    basic, ssl = anns.basic_auth, anns.backends.proxy_ssl
    if basic is None and ssl is None:
        return NO_SECRETS
    denied: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    users: Users = ()
    material = ProxySSLMaterial()
    if basic is not None:
        ref = f"{basic.secret_namespace}/{basic.secret_name}"
        head = f"{where}: auth-secret {ref}"
        found = secrets.get((basic.secret_namespace, basic.secret_name))
        read = found.htpasswd(basic.secret_type) if found is not None else None
        if read is None:
            denied.append(f"{head}: Secret not found")
        elif read.unusable:
            denied.append(f"{head}: {read.unusable}")
        else:
            users = read.users.users
            warnings.extend(f"{head}: {problem}" for problem in read.users.problems)
            if not users:
                warnings.append(f"{head}: no usable user: every request answers 401")
            notes.append(f"basic auth: {len(users)} user(s) from Secret {ref} ({basic.secret_type})")
    if ssl is not None:
        ref = f"{ssl.secret_namespace}/{ssl.secret_name}"
        head = f"{where}: proxy-ssl-secret {ref}"
        found = secrets.get((ssl.secret_namespace, ssl.secret_name))
        read_ssl = found.proxy_ssl if found is not None else None
        if read_ssl is None:
            denied.append(f"{head}: Secret not found")
        elif read_ssl.unusable:
            denied.append(f"{head}: {read_ssl.unusable}")
        else:
            material = read_ssl
            if ssl.verify and not material.ca_pem:
                warnings.append(
                    f"{head}: proxy-ssl-verify is on but the Secret has no ca.crt: the pods' "
                    "certificates are not verified (ingress-nginx then sets no proxy_ssl_verify)"
                )
            elif ssl.verify:
                notes.append(f"TLS to the pods verified with ca.crt of Secret {ref}")
            if material.cert_pem:
                notes.append(f"client certificate tls.crt of Secret {ref} shown to the pods")
    if denied:
        warnings.extend(
            f"{reason}: every path answers 503 until it is fixed (as ingress-nginx)"
            for reason in denied
        )
    return IngressSecrets(users, material, tuple(denied), tuple(warnings), tuple(notes))
