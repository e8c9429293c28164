"""Which Secrets seaway reads: the ones its own Ingresses name. Pure.

An owned Ingress (discovery/ownership.py) names a Secret in `spec.tls[].secretName`, and
through its ingress-nginx annotations in `auth-secret` (with `auth-type`) and
`proxy-ssl-secret`. Only those are ever held: the kube source watches each by name
(discovery/kube_source.py), the file source drops every other non-TLS Secret of its files
and reads a file again when one of its Secrets becomes named (discovery/file_source.py).

The annotations are read here as plain text, without the full annotation parser (this runs
over every owned Ingress whenever one changes): a reference the parser later finds invalid
costs one unused watch, never a missed one. A reference to another namespace is never
followed: ingress-nginx refuses it (allow-cross-namespace-resources is false by default),
and following it would let an Ingress author read another namespace's Secrets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from discovery.model import Ingress, IngressClass
from discovery.nginx_settings import DEFAULT_PREFIX
from discovery.ownership import DEFAULT_CONTROLLER, owned_ingresses
from discovery.snapshot import Snapshot

NsName = tuple[str, str]


@dataclass(frozen=True, slots=True)
class SecretRefs:
    """Which Ingresses are seaway's, and where their annotations are."""

    controller: str = DEFAULT_CONTROLLER
    watch_without_class: bool = False
    annotations_prefix: str = DEFAULT_PREFIX

    def of_ingresses(
        self, ingresses: Iterable[Ingress], classes: Iterable[IngressClass]
    ) -> set[NsName]:
        """(namespace, name) of every Secret the owned Ingresses name."""
        view = Snapshot(ingresses=tuple(ingresses), ingress_classes=tuple(classes))
        found: set[NsName] = set()
        for ing in owned_ingresses(view, self.controller, self.watch_without_class):
            ns = ing.meta.namespace
            found.update((ns, tls.secret_name) for tls in ing.tls if tls.secret_name)
            found.update(annotation_secrets(ing, self.annotations_prefix))
        return found


def annotation_secrets(ingress: Ingress, prefix: str = DEFAULT_PREFIX) -> set[NsName]:
    """The Secrets an Ingress's `auth-secret` (when `auth-type` is set) and
    `proxy-ssl-secret` name, in its own namespace."""
    annotations = ingress.meta.annotations
    if not annotations:
        return set()
    ns = ingress.meta.namespace
    found: set[NsName] = set()
    refs = [annotations.get(f"{prefix}/proxy-ssl-secret")]
    if annotations.get(f"{prefix}/auth-type"):
        refs.append(annotations.get(f"{prefix}/auth-secret"))
    for ref in refs:
        if not ref:
            continue
        parts = ref.replace(" ", "").split("/")
        if len(parts) == 1 and parts[0]:
            found.add((ns, parts[0]))
        elif len(parts) == 2 and parts[0] == ns and parts[1]:
            found.add((ns, parts[1]))
    return found
