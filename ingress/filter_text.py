"""One line of text per route filter, for `seaway check` and `seaway trace`. Pure."""

from __future__ import annotations

from ingress.route_filters import (
    BasicAuth,
    BodyLimit,
    CookieAffinity,
    Cors,
    ErrorPages,
    ExternalAuth,
    Filter,
    HashBy,
    HeaderEdits,
    HttpsRedirect,
    Mirror,
    RateLimit,
    RequestHeaders,
    ResponseHeaders,
    Retry,
    Rewrite,
    SourceRanges,
    Timeouts,
    UpstreamProtocol,
)
from ingress.routes import RegexReplace, ReplaceFullPath, ReplacePrefix


def size(n: int) -> str:
    """Bytes as nginx writes sizes: 1048576 -> "1m", 8192 -> "8k"."""
    for unit, scale in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if n and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _seconds(value: float | None) -> str:
    return "default" if value is None else f"{value:g}s"


def _edits(f: HeaderEdits) -> str:
    parts = [f"set {n}: {v}" for n, v in f.set] + [f"add {n}: {v}" for n, v in f.add]
    parts += [f"remove {n}" for n in f.remove]
    if isinstance(f, RequestHeaders):
        parts += [f"set {n} from {source}" for n, source in f.copy]
    return ", ".join(parts)


def _rewrite(f: Rewrite) -> str:
    parts = []
    path = f.path
    if isinstance(path, RegexReplace):
        parts.append(f"path matching {path.pattern} becomes {path.replacement} (query kept)")
    elif isinstance(path, ReplacePrefix):
        parts.append(f"matched prefix becomes {path.prefix}")
    elif isinstance(path, ReplaceFullPath):
        parts.append(f"path becomes {path.path}")
    if f.hostname:
        parts.append(f"Host sent upstream: {f.hostname}")
    if f.forwarded_prefix:
        parts.append(f"X-Forwarded-Prefix: {f.forwarded_prefix}")
    return "rewrite: " + "; ".join(parts)


def describe(f: Filter) -> str:
    """What `f` does, in one line."""
    if isinstance(f, BodyLimit):
        return f"body limit {size(f.max_bytes)} (413 above)" if f.max_bytes else "no body limit"
    if isinstance(f, Timeouts):
        named = [("connect", f.connect), ("read", f.read), ("send", f.send)]
        named += [("request", f.request), ("backend request", f.backend_request)]
        shown = ", ".join(f"{n} {_seconds(v)}" for n, v in named if v is not None)
        return f"timeouts: {shown} (504)"
    if isinstance(f, Retry):
        on = [*f.on, *(f"http_{c}" for c in f.statuses)]
        if f.non_idempotent:
            on.append("non_idempotent")
        if not on:
            return "retries: off"
        tries = f"at most {f.tries} tries" if f.tries else "tries: no limit"
        within = f", within {_seconds(f.timeout)}" if f.timeout else ""
        return f"retries on {' '.join(on)}: {tries}{within}"
    if isinstance(f, HttpsRedirect):
        kept = "" if f.strip_trailing_slash else ", trailing slash kept"
        return f"plain HTTP redirected to HTTPS ({f.status}{kept})"
    if isinstance(f, Cors):
        return f"CORS: origins {', '.join(f.allow_origins) or 'none'}, preflight answered 204"
    if isinstance(f, RateLimit):
        limits = [f"{n} {what}" for n, what in ((f.rps, "req/s"), (f.rpm, "req/min")) if n]
        if f.connections:
            limits.append(f"{f.connections} connections")
        return f"rate limit per client: {', '.join(limits)} ({f.status} above)"
    if isinstance(f, SourceRanges):
        parts = ([f"allow only {', '.join(f.allow)}"] if f.allow else []) + (
            [f"deny {', '.join(f.deny)}"] if f.deny else []
        )
        return f"client addresses: {'; '.join(parts)} ({f.status})"
    if isinstance(f, BasicAuth):
        where = f"Secret {'/'.join(f.secret)} ({f.secret_type})" if f.secret else "given"
        users = f"{len(f.users)} user{'' if len(f.users) == 1 else 's'}"
        return f"basic auth, realm {f.realm!r}, {users} from {where} (401)"
    if isinstance(f, ExternalAuth):
        signin = f", sign-in {f.signin}" if f.signin else ""
        return f"external auth: {f.method} {f.url}{signin}"
    if isinstance(f, Rewrite):
        return _rewrite(f)
    if isinstance(f, RequestHeaders):
        return "request headers: " + _edits(f)
    if isinstance(f, ResponseHeaders):
        return "response headers" + (" (HTTPS only)" if f.https_only else "") + ": " + _edits(f)
    if isinstance(f, UpstreamProtocol):
        check = "certificate not verified"
        if f.verify:
            where = f" of Secret {'/'.join(f.secret)}" if f.secret else ""
            check = f"certificate verified with the ca.crt{where}"
        client = ", client certificate shown" if f.cert_pem else ""
        return f"{f.protocol} to the backend ({check}{client})"
    if isinstance(f, ErrorPages):
        by = f.backend.key if f.backend is not None else "seaway's own pages"
        return f"answers {', '.join(map(str, f.codes))} replaced by {by}"
    if isinstance(f, CookieAffinity):
        return f"sticky sessions: cookie {f.name}, path {f.path or '/'}, {f.mode}"
    if isinstance(f, HashBy):
        subset = f", subsets of {f.subset_size}" if f.subset_size else ""
        return f"endpoint by consistent hash of {f.key}{subset}"
    if isinstance(f, Mirror):
        return f"mirrored to {f.backend.key} ({f.percent:g}%)"
    return repr(f)
