"""Header edits on whole heads (ingress/filters/headers.py) and local answers
(ingress/filters/reply.py)."""

from __future__ import annotations

from ingress.errors import reason
from ingress.filters.headers import HeadEdit, append_fields, replace_host, replace_target
from ingress.filters.reply import local_response
from ingress.route_filters import RequestHeaders

HEAD = (
    b"GET /a?b=1 HTTP/1.1\r\nHost: app.test\r\nX-Header-Set: old\r\nx-header-add: one\r\n"
    b"X-Header-Remove: gone\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n"
)


def fields(head: bytes) -> list[tuple[bytes, bytes]]:
    lines = head[:-4].split(b"\r\n")[1:]
    return [tuple(x.strip() for x in line.split(b":", 1)) for line in lines]  # type: ignore[misc]


def test_set_add_remove_case_insensitive() -> None:
    """Gateway API HTTPRouteRequestHeaderModifier (conformance/tests/
    httproute-request-header-modifier.go): set replaces, add appends, remove drops, names
    case-insensitive."""
    edit = HeadEdit.of(
        RequestHeaders(
            set=(("X-Header-Set", "set-overwrites-values"),),
            add=(("X-Header-Add", "add-appends-values"),),
            remove=("X-HEADER-REMOVE",),
        )
    )
    out = fields(edit.apply(HEAD))
    assert (b"X-Header-Set", b"set-overwrites-values") in out
    assert (b"X-Header-Set", b"old") not in out
    assert [v for n, v in out if n.lower() == b"x-header-add"] == [b"one", b"add-appends-values"]
    assert not [n for n, _ in out if n.lower() == b"x-header-remove"]
    assert (b"Accept", b"*/*") in out and (b"Content-Length", b"3") in out


def test_framing_fields_are_protected() -> None:
    edit = HeadEdit(
        remove=("content-length", "Connection"), set_fields=(("Transfer-Encoding", "x"),)
    )
    assert not edit
    assert edit.apply(HEAD) == HEAD


def test_prefix_names_are_not_removed() -> None:
    head = b"GET / HTTP/1.1\r\nX-A: 1\r\nX-AB: 2\r\n\r\n"
    assert HeadEdit(remove=("x-a",)).apply(head) == b"GET / HTTP/1.1\r\nX-AB: 2\r\n\r\n"


def test_target_host_and_extra_fields() -> None:
    assert replace_target(HEAD, b"/new?b=1").startswith(b"GET /new?b=1 HTTP/1.1\r\nHost:")
    assert b"\r\nHost: up.test\r\n" in replace_host(HEAD, b"up.test")
    assert b"app.test" not in replace_host(HEAD, b"up.test")
    bare = b"GET / HTTP/1.0\r\nAccept: x\r\n\r\n"
    assert replace_host(bare, b"h") == b"GET / HTTP/1.0\r\nHost: h\r\nAccept: x\r\n\r\n"
    assert append_fields(bare, b"A: 1\r\n") == b"GET / HTTP/1.0\r\nAccept: x\r\nA: 1\r\n\r\n"
    assert append_fields(bare, b"") == bare


def test_local_response_framing() -> None:
    page = local_response(401, [(b"WWW-Authenticate", b'Basic realm="r"')])
    assert page.startswith(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="r"\r\n')
    assert page.endswith(b"Connection: keep-alive\r\n\r\n401 Unauthorized\n")
    assert b"Content-Length: 17\r\n" in page and b"Content-Type: text/plain\r\n" in page
    empty = local_response(204, [(b"Content-Length", b"0")], close=True)
    assert empty == b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    fixed = local_response(200, [(b"Content-Type", b"application/json")], b"{}", head_only=True)
    assert b"Content-Length: 2\r\n" in fixed and fixed.endswith(b"\r\n\r\n")
    assert b"text/plain" not in fixed
    assert reason(308) == b"Permanent Redirect" and reason(599) == b"Error"


def test_compiled_rewrites_agree_with_rewrite_target() -> None:
    """ingress/filters/rewrite.py is route_actions.rewrite_target (what `seaway trace`
    shows), compiled: the same target for every case (captures, ${n}, missing groups,
    queries on both sides, no match, prefix and full-path rewrites, absolute-form)."""
    import itertools

    from ingress.filters.rewrite import TargetRewrite
    from ingress.route_actions import rewrite_target
    from ingress.routes import PathMatch, RegexReplace, ReplaceFullPath, ReplacePrefix

    regex = PathMatch("Regex", "^/something(/|$)(.*)", True)
    prefix = PathMatch("Prefix", "/foo")
    cases = [
        (RegexReplace("^/something(/|$)(.*)", "/$2", True), regex),
        (RegexReplace("^/something(/|$)(.*)", "/x/${2}/$1$9", True), regex),
        (RegexReplace("^/something(/|$)(.*)", "/q?a=$2", True), regex),
        (RegexReplace("(a)|(b)", "[$1|$2]"), regex),
        (RegexReplace("^/nomatch", "/n"), regex),
        (ReplacePrefix("/bar"), prefix),
        (ReplacePrefix("/"), prefix),
        (ReplaceFullPath("/full"), prefix),
    ]
    targets = [
        b"/something",
        b"/something/",
        b"/SOMETHING/a/b?x=1&y",
        b"/foo/bar?q",
        b"/b",
        b"http://h.test/something/z?k=v",
        b"/foo",
    ]
    for (rewrite, matched), target in itertools.product(cases, targets):
        assert TargetRewrite((rewrite,), matched).apply(target) == rewrite_target(
            rewrite, target, matched
        ), (rewrite, target)
