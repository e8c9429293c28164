"""An Ingress's ingress-nginx annotations -> `IngressAnnotations` (pure, no I/O).

Each `read_<group>` function (nginx_routing.py, nginx_traffic.py, nginx_access.py)
ports one of ingress-nginx's parsers (internal/ingress/annotations/<name>/main.go):
the same validator per key, the same
fallback when a value is invalid, and the same consequence for the Ingress (rejected,
paths denied with 503, or the default), named in each problem. seaway departs from it in
three places, each to fail closed or to be clearer:
- where ingress-nginx silently drops a whole external-auth configuration over one bad
  auth-* value (and then serves the paths unauthenticated), seaway denies them (503);
- a value only nginx would have choked on later (a negative timeout, an out-of-range
  redirect code, "10b" as a size) is reported here rather than at reload;
- annotations that cannot act (canary-* without canary, cors-* without enable-cors,
  anything but affinity/balancing on a canary Ingress, ...) are listed as ignored.

Snippet annotations (any key under the prefix ending in "-snippet") refuse the Ingress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from discovery.model import Ingress
from discovery.nginx_access import (
    read_basic_auth,
    read_cors,
    read_external_auth,
    read_rate_limit,
    read_source_ranges,
)
from discovery.nginx_catalog import PARSED, REFUSED, SNIPPET_REASON, annotation_status
from discovery.nginx_reader import AnnotationReader
from discovery.nginx_routing import read_backends, read_limits, read_redirects, read_rewrite
from discovery.nginx_settings import (
    DEFAULT_PREFIX,
    NO_ANNOTATIONS,
    IngressAnnotations,
)
from discovery.nginx_traffic import read_affinity, read_balancing, read_canary
from discovery.nginx_values import quote

_CANARY_KEEPS = ("canary", "load-balance", "upstream-hash-by", "affinity", "session-cookie-")
_CANARY_REASON = (
    "a canary Ingress takes this from the main Ingress of the same host and path, as "
    "ingress-nginx does"
)
_PASSTHROUGH_REASON = "ssl-passthrough relays the TLS connection as bytes: nothing else acts"
PASSTHROUGH_OFF = (
    "needs --enable-ssl-passthrough: without it, as in ingress-nginx, the annotation has no "
    "effect and the host's TLS is terminated as usual"
)


def parse_ingress_annotations(
    ingress: Ingress, prefix: str = DEFAULT_PREFIX, ssl_passthrough: bool = False
) -> IngressAnnotations:
    """The annotations of one Ingress under `prefix` (--annotations-prefix);
    `ssl_passthrough`: whether --enable-ssl-passthrough is given."""
    meta = ingress.meta
    return parse_annotations(meta.annotations, meta.namespace, meta.name, prefix, ssl_passthrough)


def parse_annotations(
    annotations: Mapping[str, str],
    namespace: str,
    name: str,
    prefix: str = DEFAULT_PREFIX,
    ssl_passthrough: bool = False,
) -> IngressAnnotations:
    """Read every annotation under `prefix` ("nginx.ingress.kubernetes.io", or what
    --annotations-prefix says) of the Ingress `namespace/name`. `ssl-passthrough` acts
    only with `ssl_passthrough` (--enable-ssl-passthrough); otherwise it is listed as
    ignored and the other annotations act."""
    mine = prefix + "/"
    stray = DEFAULT_PREFIX + "/" if prefix != DEFAULT_PREFIX else None
    if not any(k.startswith(mine) or (stray and k.startswith(stray)) for k in annotations):
        return NO_ANNOTATIONS
    r = AnnotationReader(annotations, prefix, f"{namespace}/{name}")
    for key in annotations:
        if key.startswith(mine) and key.endswith("-snippet"):
            r.refuse(key, SNIPPET_REASON)
        elif stray and key.startswith(stray):
            r.ignored[key] = f"not read: --annotations-prefix is {quote(prefix)}"
    result = IngressAnnotations(
        rewrite=read_rewrite(r),
        redirects=read_redirects(r),
        limits=read_limits(r),
        backends=read_backends(r, namespace),
        canary=read_canary(r),
        affinity=read_affinity(r),
        balancing=read_balancing(r),
        source_ranges=read_source_ranges(r),
        basic_auth=read_basic_auth(r, namespace),
        external_auth=read_external_auth(r),
        rate_limit=read_rate_limit(r),
        cors=read_cors(r),
        ssl_passthrough=_passthrough(r, ssl_passthrough),
    )
    if result.ssl_passthrough:
        result = _only(r, result, ("ssl-passthrough",), _PASSTHROUGH_REASON)
    elif result.canary.enabled:
        result = _only(r, result, _CANARY_KEEPS, _CANARY_REASON)
    for key in r.unread():
        status = annotation_status(key[len(mine) :])
        if status is None:
            r.ignored[key] = "unknown: not an annotation ingress-nginx documents"
        elif status not in (PARSED, REFUSED):
            r.ignored[key] = "not supported: " + status
    return replace(
        result,
        recognised=tuple(r.recognised),
        ignored=r.ignored_list(),
        problems=r.problems,
        refusals=tuple(r.refusals),
        denied=tuple(r.denied),
    )


def _passthrough(r: AnnotationReader, enabled: bool) -> bool:
    """ssl-passthrough, as read (its parser refuses an invalid value either way)."""
    asked = r.flag("ssl-passthrough", "refused") or False
    if asked and not enabled:
        key = r.key("ssl-passthrough")
        r.recognised.pop(key, None)
        r.ignored[key] = PASSTHROUGH_OFF
        return False
    return asked


def _only(
    r: AnnotationReader, parsed: IngressAnnotations, keep: tuple[str, ...], reason: str
) -> IngressAnnotations:
    """Keep the groups `keep` names (short-name prefixes); the rest back to defaults."""
    for key in list(r.recognised):
        short = key[len(r.prefix) :]
        if not short.startswith(keep):
            r.recognised.pop(key)
            r.ignored[key] = reason
    if "canary" in keep:
        return IngressAnnotations(
            canary=parsed.canary, affinity=parsed.affinity, balancing=parsed.balancing
        )
    return IngressAnnotations(ssl_passthrough=True)
