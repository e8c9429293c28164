"""Which Ingresses seaway serves.

An Ingress is seaway's when

- its ``spec.ingressClassName`` names an IngressClass whose ``spec.controller`` is seaway's
  controller name (``--ingress-controller``, default ``seaway.dev/ingress``); or
- it names no class (neither ``spec.ingressClassName`` nor the deprecated
  ``kubernetes.io/ingress.class`` annotation) and either one of seaway's IngressClasses
  carries ``ingressclass.kubernetes.io/is-default-class: "true"`` or
  ``--watch-ingress-without-class`` is set.

The deprecated annotation, when present without ``spec.ingressClassName``, is read as the
class name (as ingress-nginx does), so an Ingress annotated for another controller is never
taken by ``--watch-ingress-without-class``.

Owned Ingresses are returned oldest first: by ``metadata.creationTimestamp`` (RFC 3339
text sorts in time order; objects from files without one sort first), then namespace,
then name. That order decides every conflict (see ingress/router.py).
"""

from __future__ import annotations

from discovery.model import Ingress
from discovery.snapshot import Snapshot

DEFAULT_CONTROLLER = "seaway.dev/ingress"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def age_key(ingress: Ingress) -> tuple[str, str, str]:
    """Sort key: oldest first, then namespace/name."""
    meta = ingress.meta
    return (meta.creation_timestamp, meta.namespace, meta.name)


def class_name(ingress: Ingress) -> str | None:
    """The class an Ingress asks for: spec.ingressClassName, else the legacy annotation."""
    if ingress.ingress_class_name:
        return ingress.ingress_class_name
    return ingress.meta.annotations.get(LEGACY_CLASS_ANNOTATION) or None


def owned_ingresses(
    snapshot: Snapshot, controller: str = DEFAULT_CONTROLLER, watch_without_class: bool = False
) -> list[Ingress]:
    """The Ingresses seaway serves, oldest first."""
    ours = [c for c in snapshot.ingress_classes if c.controller == controller]
    names = {c.meta.name for c in ours}
    take_classless = watch_without_class or any(c.is_default for c in ours)
    owned = []
    for ingress in snapshot.ingresses:
        wanted = class_name(ingress)
        if (wanted is None and take_classless) or (wanted is not None and wanted in names):
            owned.append(ingress)
    owned.sort(key=age_key)
    return owned
