"""ingress-nginx canaries -> ordered route matches and weighted backends. Pure.

A canary Ingress (`canary: "true"`) serves nothing itself. Each of its paths whose host
and path (same type) a main Ingress serves makes its Service port the "alternative" of
the main path's Service port (controller.go mergeAlternativeBackends); the Lua balancer
then sends a request for that main Service port to the canary when (balancer.lua
route_to_alternative_balancer, in this order):

1. the header `canary-by-header` is present and: equals `canary-by-header-value` when
   set; else matches `canary-by-header-pattern` (an unanchored regex) when set, while a
   pattern that does not compile sends every request carrying the header to the main
   Service; else is "always" ("never" sends it to the main Service). Any other value
   falls through;
2. the cookie `canary-by-cookie` is "always" ("never": main). Other values fall through;
3. at random, with probability canary-weight / max(canary-weight-total, 100).

Here that is routes placed before the main route, with the same path and one header or
cookie condition each, then the main route with a weighted Forward. As in ingress-nginx,
the alternative belongs to the main Service port, so EVERY route forwarding to that
Service port gets the canary rules (whatever its host or path), only the first canary
merged into a Service port is used, and the canary rules are those of the Ingress that
first named the canary's Service port (a canary whose Service port a main Ingress named
first never gets traffic). A request pinned by session affinity keeps its side; that is
decided at runtime, before these routes (see CookieAffinity).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from discovery.model import Ingress
from discovery.nginx_settings import Canary
from ingress.routes import Backend, CookieMatch, Forward, HeaderMatch, Route, RouteMatch


@dataclass(frozen=True, slots=True)
class CanaryRule:
    """The canary of one main Service port: its Backend, its traffic rules, and the
    canary Ingress it came from."""

    backend: Backend
    rules: Canary
    ingress: Ingress
    behavior: str = "sticky"  # affinity-canary-behavior of the canary Ingress

    @property
    def name(self) -> str:
        return f"{self.ingress.meta.namespace}/{self.ingress.meta.name}"


def pattern_compiles(pattern: str) -> bool:
    try:
        re.compile(pattern.encode())
    except re.error:
        return False
    return True


def canary_routes(main: Route, canary: Backend, rule: CanaryRule) -> list[Route]:
    """`main` (a route forwarding to one Backend) with `rule`'s canary in front of it."""
    assert isinstance(main.action, Forward)
    stable = main.action.backends[0]
    to_canary = Forward((canary,))
    to_main = main.action
    rules = rule.rules
    found: list[Route] = []

    def add(
        action: Forward, why: str, header: HeaderMatch | None = None, cookie: str = ""
    ) -> None:
        m = main.match
        match = RouteMatch(
            m.path,
            m.method,
            (*m.headers, header) if header is not None else m.headers,
            m.query,
            (*m.cookies, CookieMatch(rules.by_cookie, cookie)) if cookie else m.cookies,
        )
        text = f"{main.source.text} canary {rule.name} {why}".strip()
        found.append(Route(match, action, replace(main.source, text=text), main.filters))

    name = rules.by_header
    if name:
        if rules.by_header_value:
            value = rules.by_header_value
            add(to_canary, f"by header {name}: {value}", HeaderMatch(name, value))
        elif rules.by_header_pattern:
            pattern = rules.by_header_pattern
            if pattern_compiles(pattern):
                add(to_canary, f"by header {name} ~ {pattern}", HeaderMatch(name, pattern, "Regex"))
            else:
                why = f"not used: header {name} present and its pattern does not compile"
                add(to_main, why, HeaderMatch(name, kind="Present"))
        else:
            add(to_canary, f"by header {name}: always", HeaderMatch(name, "always"))
            add(to_main, f"not used: header {name}: never", HeaderMatch(name, "never"))
    if rules.by_cookie:
        add(to_canary, f"by cookie {rules.by_cookie}=always", cookie="always")
        add(to_main, f"not used: cookie {rules.by_cookie}=never", cookie="never")
    total = rules.effective_weight_total
    if rules.weight <= 0:
        found.append(main)
        return found
    weighted = Forward(
        (
            replace(stable, weight=max(total - rules.weight, 0)),
            replace(canary, weight=rules.weight),
        )
    )
    text = f"{main.source.text} canary {rule.name} by weight {rules.weight}/{total}".strip()
    found.append(Route(main.match, weighted, replace(main.source, text=text), main.filters))
    return found


def canary_summary(rules: Canary) -> str:
    """The canary's rules in words, in the order they are tried."""
    parts: list[str] = []
    if rules.by_header:
        if rules.by_header_value:
            parts.append(f"header {rules.by_header}: {rules.by_header_value}")
        elif rules.by_header_pattern:
            parts.append(f"header {rules.by_header} ~ {rules.by_header_pattern}")
        else:
            parts.append(f"header {rules.by_header}: always/never")
    if rules.by_cookie:
        parts.append(f"cookie {rules.by_cookie}: always/never")
    if rules.weight:
        parts.append(f"weight {rules.weight}/{rules.effective_weight_total}")
    return ", then ".join(parts) if parts else "no rule: it gets no traffic"
