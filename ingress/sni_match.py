"""SNI name -> the PassthroughHost that relays it, compiled for a worker. Pure.

A listener's PassthroughHosts (ingress/routes.py) become three dicts: exact names, "label"
wildcards (``*.a.com`` covers exactly one more label) and "suffix" wildcards (one or
more labels). A name is looked up exact first, then the label wildcard of its parent,
then the suffix wildcards from the longest; the first hit wins. The same name in two
PassthroughHosts is an error (the first stays), as for virtual hosts.

The answer is whatever the `result` callable made of the host's Route at compile time
(ingress/route_match.py passes its RouteResult maker, so a relay balances, counts and
labels like a request): no allocation per lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from ingress.routes import PassthroughHost, Route

R = TypeVar("R")


class SniRouter(Generic[R]):
    __slots__ = ("_exact", "_label", "_suffix", "errors", "results")

    def __init__(
        self, listener: str, hosts: Iterable[PassthroughHost], result: Callable[[Route], R]
    ) -> None:
        self._exact: dict[str, R] = {}
        self._label: dict[str, R] = {}  # ".a.com" for "*.a.com"
        self._suffix: dict[str, R] = {}
        self.errors: list[str] = []
        self.results: list[R] = []
        for host in hosts:
            made = result(host.route)
            self.results.append(made)
            for name in host.hostnames:
                shown = name.lower()
                key, table = shown, self._exact
                if shown.startswith("*."):
                    table = self._label if host.wildcard == "label" else self._suffix
                    key = shown[1:]
                if key in table:
                    self.errors.append(
                        f"listener {listener}: passthrough host {shown} named twice "
                        f"({host.route.source} loses)"
                    )
                    continue
                table[key] = made

    def __bool__(self) -> bool:
        return bool(self._exact or self._label or self._suffix)

    def match(self, server_name: str | None) -> R | None:
        """The result for a ClientHello's SNI name (lower case, no trailing dot, as
        ingress/client_hello.py gives it); None when no host covers it or there is none."""
        if not server_name:
            return None
        found = self._exact.get(server_name)
        if found is not None:
            return found
        dot = server_name.find(".")
        if dot <= 0:
            return None
        if self._label:
            found = self._label.get(server_name[dot:])
            if found is not None:
                return found
        suffix = self._suffix
        while suffix and dot > 0:
            found = suffix.get(server_name[dot:])
            if found is not None:
                return found
            dot = server_name.find(".", dot + 1)
        return None
