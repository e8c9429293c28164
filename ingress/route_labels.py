"""What a route is called in metrics, the access log and the status page. Pure.

A worker counts requests by the RouteResult object that answered them
(ingress/route_match.py), which costs nothing per request; once a second it turns each
result into its labels here: (namespace, ingress, service, port, host, path):

- namespace, ingress: the object the route came from (its RouteSource), "" for the
  built-in 404;
- service, port: from the backend's key "namespace/service:port" (the port number once
  resolved, else as the object names it), "" for a redirect or a fixed response;
- host, path: the route's virtual host (its names joined by ",", "" for the catch-all)
  and its path match, "" for a listener's default backend and the 404.

The host is not on the RouteResult: `RouteHosts` finds it in the RouteTable the worker
serves (the current one, or the one before it, for requests counted across a reload).
"""

from __future__ import annotations

from typing import Any

from ingress.routes import Backend, Forward, Route, RouteTable

PASSTHROUGH_PATH = "(TLS passthrough)"
Labels = tuple[str, str, str, str, str, str]
NO_LABELS: Labels = ("", "", "", "", "", "")


def split_key(key: str) -> tuple[str, str]:
    """(service, port) of a backend key "namespace/service:port"; ("", "") for ""."""
    if not key:
        return "", ""
    slash = key.find("/")
    colon = key.rfind(":")
    if colon <= slash:
        return key[slash + 1 :], ""
    return key[slash + 1 : colon], key[colon + 1 :]


def table_hosts(table: RouteTable) -> dict[int, tuple[Route, str]]:
    """id(Route) -> (the Route, its virtual host's label) for every routed Route (a
    passthrough host's route too, labelled with its names)."""
    hosts: dict[int, tuple[Route, str]] = {}
    for listener in table.listeners:
        for vhost in listener.virtual_hosts:
            label = ",".join(vhost.hostnames)
            for route in vhost.routes:
                hosts.setdefault(id(route), (route, label))
        for relayed in listener.passthrough:
            hosts.setdefault(id(relayed.route), (relayed.route, ",".join(relayed.hostnames)))
    return hosts


class RouteHosts:
    """The host of a Route, from the last two tables seen (off the hot path)."""

    __slots__ = ("_current", "_previous", "_table")

    def __init__(self) -> None:
        self._table: object = None
        self._current: dict[int, tuple[Route, str]] = {}
        self._previous: dict[int, tuple[Route, str]] = {}

    def follow(self, table: RouteTable | None) -> None:
        """Serve from `table` now (a no-op when it is the current one)."""
        if table is None or table is self._table:
            return
        self._table = table
        self._previous = self._current
        self._current = table_hosts(table)

    def find(self, route: Route) -> str | None:
        """The host label of `route`, None when it is in no virtual host (a default)."""
        for hosts in (self._current, self._previous):
            found = hosts.get(id(route))
            if found is not None and found[0] is route:
                return found[1]
        return None


def labels_of(result: Any, hosts: RouteHosts) -> Labels:
    """The labels of a RouteResult (see the module docstring); NO_LABELS for None."""
    if result is None:
        return NO_LABELS
    origin = getattr(result, "origin", None)
    namespace = origin.namespace if origin is not None else ""
    name = origin.name if origin is not None else ""
    service, port = split_key(getattr(result, "key", ""))
    route = getattr(result, "route", None)
    if isinstance(route, Route):
        host = hosts.find(route)
        if host is not None:
            return (namespace, name, service, port, host, route.match.path.value)
    return (namespace, name, service, port, "", "")


def _backends(route: Route) -> tuple[str, int]:
    """The route's backends as shown ("a, b" when weighted) and the status it answers with
    (0: forwarded)."""
    action = route.action
    if not isinstance(action, Forward):
        return "", action.status
    usable: list[Backend] = [b for b in action.backends if b.weight > 0]
    shown = ", ".join(b.key for b in usable)
    if not usable:
        return shown, 500
    return shown, 0 if any(not b.status for b in usable) else usable[0].status


def route_rows(table: RouteTable) -> list[dict[str, object]]:
    """Every route of `table` for the status page: host ("*" for the catch-all), path
    ("(default backend)" for a listener's default, PASSTHROUGH_PATH for a TLS passthrough
    host), backend, ingress ("namespace/name" of
    the object it came from), kind, source, status (0: forwarded)."""
    out: list[dict[str, object]] = []

    def add(route: Route, host: str, path: str) -> None:
        backend, status = _backends(route)
        src = route.source
        out.append(
            {
                "host": host,
                "path": path,
                "backend": backend,
                "ingress": f"{src.namespace}/{src.name}",
                "kind": src.kind,
                "source": str(src),
                "status": status,
            }
        )

    for listener in table.listeners:
        for vhost in listener.virtual_hosts:
            host = ",".join(vhost.hostnames) or "*"
            for route in vhost.routes:
                add(route, host, route.match.path.value)
        if listener.default is not None:
            add(listener.default, "*", "(default backend)")
        for relayed in listener.passthrough:
            add(relayed.route, ",".join(relayed.hostnames), PASSTHROUGH_PATH)
    return out
