"""Pure helpers that carry out route actions and filters on request bytes.

What the hot path does with the RouteResult ``r`` that ``ProxyContext.route`` returns (a
weighted Forward's backend is already picked there):

==================  ==================================================================
``r.status == 0``   forward to ``r.endpoints`` (balancer under ``r.key``; ``r.cache`` is
                    free for it), after the filters in ``r.filters``
Redirect            answer ``r.status`` with ``Location: redirect_location(...)``
FixedResponse       ``body`` None: seaway's page for ``r.status``; else that body and
                    ``headers``
other status        seaway's page for it (404 no route, 503/500 unusable backend)
==================  ==================================================================

Filters (ingress/route_filters.py) and the actions that answer with more than a status
run in ingress/filters/ (its package docstring; ``r.plan``), which uses these helpers
(``seaway trace`` uses them too, so both say the same):

- HttpsRedirect: on a plain-HTTP listener, answer its status with
  ``https_redirect_location``; Rewrite: send ``rewrite_target`` as the target (compiled
  once per route: ingress/filters/rewrite.py), ``hostname`` as Host and
  ``forwarded_prefix``; RequestHeaders/ResponseHeaders: ``edit_header_lines``'s edits
  (compiled: ingress/filters/headers.py); BodyLimit, Timeouts, Retry: the per-request
  limits instead of the listener's settings.
- Stateful ones keep per-worker state (ingress/filters/runtime.py): RateLimit,
  CookieAffinity, HashBy; I/O ones: ExternalAuth, Mirror, ErrorPages, UpstreamProtocol
  (TLS to the pod); checks: BasicAuth, SourceRanges, Cors (preflight). The balancer is
  not a filter: it is the Backend's (``balancing``: the Service's seaway.dev/load-balancer,
  or ingress-nginx's load-balance: ewma).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

from ingress.paths import prefix_key
from ingress.route_conditions import compile_pattern
from ingress.route_filters import Filter, HeaderEdits, HttpsRedirect, RequestHeaders, Rewrite
from ingress.route_match import normalize_host, request_path
from ingress.routes import (
    PathMatch,
    PathRewrite,
    Redirect,
    RegexReplace,
    ReplaceFullPath,
    ReplacePrefix,
)

F = TypeVar("F")

_WELL_KNOWN = {(b"http", b"80"), (b"https", b"443")}
_CAPTURE = re.compile(rb"\$(?:\{(\d+)\}|(\d))")


def find_filter(filters: Iterable[Filter], kind: type[F]) -> F | None:
    """The first filter of type `kind`, or None."""
    for f in filters:
        if isinstance(f, kind):
            return f
    return None


def split_target(target: bytes) -> tuple[bytes, bytes | None]:
    """(path, query or None) of a request target (absolute-form reduced to its path)."""
    q = target.find(b"?")
    return request_path(target), (target[q + 1 :] if q >= 0 else None)


def split_host(host: bytes | None) -> tuple[bytes, bytes | None]:
    """(host name, port or None) of a Host header (name normalised as the matcher does)."""
    if not host:
        return b"", None
    name = normalize_host(host)
    rest = host[len(name) :] if host[: len(name)].lower() == name else b""
    rest = rest.lstrip(b".")
    port = rest[1:] if rest[:1] == b":" and rest[1:] else None
    return name, port


def expand_captures(replacement: bytes, found: re.Match[bytes]) -> bytes:
    """nginx-style ``$1``..``$9`` and ``${n}`` in `replacement`, from `found`'s groups
    (a group that did not take part, or does not exist, is empty)."""

    def group(m: re.Match[bytes]) -> bytes:
        n = int(m.group(1) or m.group(2))
        if n > (found.re.groups or 0):
            return b""
        return found.group(n) or b""

    return _CAPTURE.sub(group, replacement)


def rewrite_path(rewrite: PathRewrite, path: bytes, matched: PathMatch) -> bytes:
    """The path after `rewrite`, for a request whose route matched with `matched`."""
    if isinstance(rewrite, ReplaceFullPath):
        return rewrite.path.encode()
    if isinstance(rewrite, ReplacePrefix):
        key = prefix_key(matched.value.encode() or b"/")
        if matched.kind != "Prefix" or not path.startswith(key):
            return path
        return rewrite.prefix.encode().rstrip(b"/") + path[len(key) :] or b"/"
    found = compile_pattern(rewrite.pattern, rewrite.ignore_case).search(path)
    if found is None:
        return path
    return expand_captures(rewrite.replacement.encode(), found)


def rewrite_target(rewrite: PathRewrite, target: bytes, matched: PathMatch) -> bytes:
    """The request target after `rewrite`: new path, the request's query kept (after the
    replacement's own query, as nginx does, for a RegexReplace that has one)."""
    path, query = split_target(target)
    new = rewrite_path(rewrite, path, matched)
    if query is None:
        return new
    if isinstance(rewrite, RegexReplace) and b"?" in new:
        return new + b"&" + query
    return new + b"?" + query


def redirect_location(
    redirect: Redirect, scheme: bytes, host: bytes | None, target: bytes, matched: PathMatch
) -> bytes:
    """The Location of a Redirect for a request (see Redirect for each part)."""
    if redirect.location is not None:
        return redirect.location.encode()
    name, port = split_host(host)
    new_scheme = redirect.scheme.encode() if redirect.scheme else scheme
    if redirect.hostname:
        name = redirect.hostname.encode()
    if redirect.port is not None:
        port = str(redirect.port).encode()
    elif redirect.scheme is not None:
        port = None
    path, query = split_target(target)
    if redirect.path is not None:
        path = rewrite_path(redirect.path, path, matched)
    url = _url(new_scheme, name, port, path, query if redirect.keep_query else None)
    return _strip_slash(url) if redirect.strip_trailing_slash else url


def https_redirect_location(redirect: HttpsRedirect, host: bytes | None, target: bytes) -> bytes:
    """Where an HttpsRedirect sends a plain-HTTP request: the same URL in https."""
    name, _ = split_host(host)
    path, query = split_target(target)
    port = str(redirect.port).encode() if redirect.port is not None else None
    url = _url(b"https", name, port, path, query)
    return _strip_slash(url) if redirect.strip_trailing_slash else url


def _url(scheme: bytes, host: bytes, port: bytes | None, path: bytes, query: bytes | None) -> bytes:
    authority = host if port is None or (scheme, port) in _WELL_KNOWN else host + b":" + port
    url = scheme + b"://" + authority + path
    return url + b"?" + query if query is not None else url


def _strip_slash(url: bytes) -> bytes:
    """ingress-nginx's redirects drop one "/" ending the request URI ($request_uri, the
    query included): "https://a.b/x/" -> "https://a.b/x", "https://a.b/" -> "https://a.b"."""
    return url[:-1] if url.endswith(b"/") else url


def forwarded_prefix(rewrite: Rewrite, path: bytes) -> bytes | None:
    """The X-Forwarded-Prefix a Rewrite sends for a request path (None: none), its ``$n``
    from the captures of the path's RegexReplace, as nginx expands them after the rewrite
    (a capture that did not take part, or a path the pattern misses, gives "")."""
    if rewrite.forwarded_prefix is None:
        return None
    value = rewrite.forwarded_prefix.encode()
    regex = rewrite.path
    if not isinstance(regex, RegexReplace) or not _CAPTURE.search(value):
        return value
    found = compile_pattern(regex.pattern, regex.ignore_case).search(path)
    if found is None:
        return _CAPTURE.sub(b"", value)
    return expand_captures(value, found)


def edit_header_lines(lines: list[bytes], edits: HeaderEdits) -> list[bytes]:
    """Head lines (b"Name: value\\r\\n") after `edits`: removed, set, then added; then a
    RequestHeaders' copies (from the lines as received)."""
    drop = {n.lower().encode() for n in edits.remove}
    drop |= {n.lower().encode() for n, _ in edits.set}
    copies = edits.copy if isinstance(edits, RequestHeaders) else ()
    found: dict[bytes, bytes] = {}
    for target, source in copies:
        drop.add(target.lower().encode())
        copied = _header_value(lines, source.lower().encode())
        if copied is not None:
            found[target.encode()] = copied
    kept = [line for line in lines if line.partition(b":")[0].strip().lower() not in drop]
    for name, value in (*edits.set, *edits.add):
        kept.append(f"{name}: {value}\r\n".encode())
    for raw_name, raw_value in found.items():
        kept.append(raw_name + b": " + raw_value + b"\r\n")
    return kept


def _header_value(lines: list[bytes], name: bytes) -> bytes | None:
    """The value of the first head line named `name` (lower case), or None."""
    for line in lines:
        field, colon, value = line.partition(b":")
        if colon and field.strip().lower() == name:
            return value.strip()
    return None
