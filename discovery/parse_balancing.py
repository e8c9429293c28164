"""The balancer annotations of a Service: seaway.dev/load-balancer and seaway.dev/hash-by.

    seaway.dev/load-balancer: round-robin | least-request | ewma | maglev   (hash = maglev)
    seaway.dev/hash-by:       client-ip | header:NAME | cookie:NAME

`hash-by` also takes ingress-nginx's `upstream-hash-by` spelling for the same three keys
($remote_addr, $binary_remote_addr, $http_NAME, $cookie_NAME), so a translator of that
annotation can call `hash_by_from_text`. `hash-by` alone selects maglev (as
upstream-hash-by overrides load-balance in ingress-nginx); with another balancer it is an
error, because it would silently do nothing.

The endpoint health annotations (seaway.dev/health-check-*, seaway.dev/outlier-*) are
read here too (discovery/parse_health.py): they travel with the balancer choice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from discovery.model import (
    DEFAULT_LOAD_BALANCER,
    DEFAULT_LOAD_BALANCING,
    HASH_BY_ANNOTATION,
    LOAD_BALANCER_ANNOTATION,
    LOAD_BALANCER_POLICIES,
    HashBy,
    LoadBalancerPolicy,
    LoadBalancing,
)
from discovery.parse_common import Problems, show
from discovery.parse_health import HEALTH_ANNOTATIONS, parse_endpoint_health

ALIASES: dict[str, LoadBalancerPolicy] = {"hash": "maglev"}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token: header/cookie name
HASH_BY_FORMS = "client-ip, header:NAME or cookie:NAME"


def hash_by_from_text(text: str) -> HashBy | None:
    """`client-ip`, `header:X-User`, `cookie:sid` (or $remote_addr, $http_x_user,
    $cookie_sid) -> HashBy; None when the text is none of these."""
    t = text.strip()
    if t in ("client-ip", "$remote_addr", "$binary_remote_addr"):
        return HashBy("client-ip")
    source, sep, name = t.partition(":")
    if not sep:
        if t.startswith("$http_"):
            source, name = "header", t[6:].replace("_", "-")
        elif t.startswith("$cookie_"):
            source, name = "cookie", t[8:]
        else:
            return None
    if source not in ("header", "cookie") or not _TOKEN.match(name):
        return None
    return HashBy("header", name.lower()) if source == "header" else HashBy("cookie", name)


def parse_load_balancing(p: Problems, annotations: Mapping[str, str]) -> LoadBalancing:
    policy_text = annotations.get(LOAD_BALANCER_ANNOTATION)
    hash_text = annotations.get(HASH_BY_ANNOTATION)
    if policy_text is None and hash_text is None:
        if not any(name in annotations for name in HEALTH_ANNOTATIONS):
            return DEFAULT_LOAD_BALANCING
        return LoadBalancing(health=parse_endpoint_health(p, annotations))
    field = f'metadata.annotations["{LOAD_BALANCER_ANNOTATION}"]'
    policy: LoadBalancerPolicy = DEFAULT_LOAD_BALANCER
    if policy_text is not None:
        name = policy_text.strip().lower()
        name = ALIASES.get(name, name)
        if name in LOAD_BALANCER_POLICIES:
            policy = name  # type: ignore[assignment]
        else:
            p.add(
                field,
                f"unknown load balancer {show(policy_text)}: expected one of "
                + ", ".join(LOAD_BALANCER_POLICIES)
                + " (hash is maglev)",
            )
    hash_by = HashBy()
    if hash_text is not None:
        hfield = f'metadata.annotations["{HASH_BY_ANNOTATION}"]'
        found = hash_by_from_text(hash_text)
        if found is None:
            p.add(hfield, f"cannot hash by {show(hash_text)}: expected {HASH_BY_FORMS}")
        else:
            hash_by = found
        if policy_text is None:
            policy = "maglev"
        elif policy != "maglev" and policy_text.strip().lower() in LOAD_BALANCER_POLICIES:
            p.add(hfield, f"only applies to the maglev load balancer, not {policy}")
    return LoadBalancing(policy, hash_by, parse_endpoint_health(p, annotations))
