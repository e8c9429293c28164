"""The paths of one host, as ingress-nginx turns them into nginx locations. Pure.

A host's paths come from every owned Ingress with a rule for it, oldest first; a path
already there with the same type is a conflict (the older one stays).

**Regex hosts.** When any path of the host belongs to an Ingress with `use-regex`, or
with a `rewrite-target` other than that path (template.go enforceRegexModifier; the
host's implicit "/" location counts too, with the annotations of the Ingress that
serves "/" or else of the first Ingress of the host), EVERY path of the host, from
every Ingress, becomes a case-insensitive regular expression anchored at the start
(`location ~* "^<path>"`). Their order is ingress-nginx's (controller.go: sorted by path,
descending, then stably by length, descending; nginx tries regex locations in that
order and the first match wins), after its updateServerLocations: a Prefix path without
its own regex or rewrite becomes "<path>/" plus an Exact "<path>" (unless an Exact one is
there), so Prefix "/foo" on a regex host matches "/foobar" as in ingress-nginx.
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery.model import Ingress, IngressBackend, PathType
from discovery.nginx_settings import IngressAnnotations
from ingress.routes import Backend


@dataclass(slots=True)
class Location:
    """One path of one Ingress rule, with the annotations of its Ingress and its Backend
    (resolved once; None for a canary's, resolved when merged)."""

    ingress: Ingress
    anns: IngressAnnotations
    rule: int
    index: int
    host: str
    path: str  # as nginx sees it: an empty path is "/"
    path_type: PathType
    backend: IngressBackend
    resolved: Backend | None = None

    @property
    def exact(self) -> bool:
        return self.path_type == "Exact"

    @property
    def needs_rewrite(self) -> bool:
        """template.go needsRewrite: a rewrite-target other than the path itself."""
        target = self.anns.rewrite.rewrite_target
        return bool(target) and target != self.path

    @property
    def makes_regex(self) -> bool:
        return self.anns.rewrite.use_regex or self.needs_rewrite

    @property
    def where(self) -> str:
        """Where it is in its Ingress: "spec.rules[0].http.paths[1]"."""
        return f"spec.rules[{self.rule}].http.paths[{self.index}]"

    @property
    def source(self) -> str:
        """How messages name it: "Ingress ns/name: spec.rules[0].http.paths[1] (h Prefix
        /p)"."""
        meta = self.ingress.meta
        kind = "Exact" if self.exact else "Prefix"
        shown = f"({self.host or '*'} {kind} {self.path})"
        return f"Ingress {meta.namespace}/{meta.name}: {self.where} {shown}"


@dataclass(frozen=True, slots=True)
class RegexEntry:
    """One nginx location of a regex host: ``~* "^<path>"`` for `location`."""

    location: Location
    path: str


class HostLocations:
    """The locations of one host (rule host, or "" for rules without one)."""

    __slots__ = ("_kept", "host", "ingresses", "locations")

    def __init__(self, host: str) -> None:
        self.host = host
        self.ingresses: list[tuple[Ingress, IngressAnnotations]] = []  # with a rule here
        self.locations: list[Location] = []
        self._kept: dict[tuple[str, bool], Location] = {}

    def add_ingress(self, ingress: Ingress, anns: IngressAnnotations) -> None:
        if not self.ingresses or self.ingresses[-1][0] is not ingress:
            self.ingresses.append((ingress, anns))

    def add(self, loc: Location) -> Location | None:
        """Keep `loc` unless a location with its path and type is there: return that."""
        key = (loc.path, loc.path_type == "Exact")
        kept = self._kept.get(key)
        if kept is not None:
            return kept
        self._kept[key] = loc
        self.locations.append(loc)
        return None

    def root_annotations(self) -> IngressAnnotations | None:
        """The annotations of the host's "/" location: the Ingress serving Prefix "/",
        else the first Ingress with a rule for the host (controller.go createServers)."""
        for loc in self.locations:
            if loc.path == "/" and not loc.exact:
                return loc.anns
        return self.ingresses[0][1] if self.ingresses else None

    def regex(self) -> bool:
        """Whether every path of the host is a regular expression (module docstring)."""
        if any(loc.makes_regex for loc in self.locations):
            return True
        root = self.root_annotations()
        if root is None:
            return False
        target = root.rewrite.rewrite_target
        return root.rewrite.use_regex or (bool(target) and target != "/")

    def regex_entries(self) -> list[RegexEntry]:
        """The host's nginx locations in the order nginx tries them (module docstring)."""
        exact_paths = {loc.path for loc in self.locations if loc.exact}
        entries: list[RegexEntry] = []
        for loc in self.locations:
            if loc.path == "/" or loc.path_type != "Prefix" or loc.makes_regex:
                entries.append(RegexEntry(loc, loc.path))
                continue
            entries.append(RegexEntry(loc, loc.path if loc.path.endswith("/") else loc.path + "/"))
            if loc.path not in exact_paths:
                entries.append(RegexEntry(loc, loc.path))
        entries.sort(key=lambda e: e.path, reverse=True)  # stable, as Go's SliceStable
        entries.sort(key=lambda e: len(e.path.encode()), reverse=True)
        return entries

    def aliases(self) -> tuple[str, ...]:
        """server-alias: those of the first Ingress of the host that has some."""
        for _, anns in self.ingresses:
            if anns.backends.server_aliases:
                return anns.backends.server_aliases
        return ()

    def app_root(self, ordered: list[Location]) -> tuple[Location, str] | None:
        """The app-root that answers "/" (the first location in nginx order with one)."""
        for loc in ordered:
            if loc.anns.rewrite.app_root:
                return loc, loc.anns.rewrite.app_root
        return None

    def from_to_www(self) -> bool:
        return any(loc.anns.redirects.from_to_www for loc in self.locations)
