"""The Secrets ingress-nginx annotations name, in the route table: auth-secret users in the
BasicAuth filter, proxy-ssl-secret's CA and client certificate in UpstreamProtocol, 503 for
a missing or unusable Secret, and a Secret change making the L7 dataplane translate again.
Cases follow ingress-nginx's e2e test/e2e/annotations/auth.go (named in each test), its
basic-auth example (docs/examples/auth/basic) and proxyssl/main.go."""

from __future__ import annotations

from dataclasses import replace

import bcrypt

from discovery.snapshot import Snapshot
from ingress import selfsigned
from ingress.dataplane import IngressDataplane
from ingress.htpasswd import verify_basic
from ingress.route_actions import find_filter
from ingress.route_filters import BasicAuth, UpstreamProtocol
from proxy.app.options import Options
from tests.ingress.l7kit import HOST, Backend, LoopThread, get, port_info
from tests.ingress.nginxkit import ann, ing, path, secret, snapshot, translate

AUTH = "auth"  # the e2e tests' host


def bcrypt_line(user: str, password: str) -> str:
    """buildSecret of auth.go: `user:<bcrypt>` (cost 14 there; 4 here, same format)."""
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n"


def basic_ingress(secret_name: str = "test", **more: str) -> object:
    return ing("auth", AUTH, path("/"), annotations=ann(
        auth_type="basic", auth_secret=secret_name, auth_realm="test auth", **more))  # fmt: skip


def test_invalid_secret_answers_503() -> None:
    """auth.go "should return status code 503 when authentication is configured with an
    invalid secret" (auth-secret: something, which does not exist)."""
    t = translate(basic_ingress("something"))
    r = t.ask(AUTH, "/")
    assert (r.status, r.filters) == (503, ())
    assert t.warnings() == (
        "Ingress default/auth: auth-secret default/something: not found: every path of the "
        "Ingress answers 503 until it is fixed (as ingress-nginx)",
    )
    assert "a Secret it names is unusable: every path answers 503" in t.applied("auth")


def test_users_from_the_secret_401_or_200() -> None:
    """auth.go "should return status code 401 when ... Authorization header is not
    configured", "... with invalid credentials" and "should return status code 200 when
    authentication is configured and Authorization header is sent" (foo / bar)."""
    t = translate(basic_ingress(), secrets=[secret("test", auth=bcrypt_line("foo", "bar"))])
    auth = find_filter(t.ask(AUTH, "/").filters, BasicAuth)
    assert auth is not None and auth.realm == "test auth"
    assert [user for user, _ in auth.users] == ["foo"]
    assert verify_basic(auth.users, "foo", "bar")
    assert not verify_basic(auth.users, "foo", "baz")
    assert t.warnings() == ()
    assert any(line.startswith("basic auth, realm 'test auth', 1 user from Secret default/test")
               for line in t.applied("auth"))  # fmt: skip


def test_users_from_a_map_secret() -> None:
    """auth.go "should return status code 200 when authentication is configured with a map
    and Authorization header is sent" (buildMapSecret: key foo, value the bcrypt hash)."""
    hashed = bcrypt_line("foo", "bar").split(":", 1)[1].strip()
    t = translate(basic_ingress(auth_secret_type="auth-map"), secrets=[secret("test", foo=hashed)])
    auth = find_filter(t.ask(AUTH, "/").filters, BasicAuth)
    assert auth is not None and auth.users == (("foo", hashed),)
    assert verify_basic(auth.users, "foo", "bar")


def test_invalid_content_refuses_every_request() -> None:
    """auth.go "should return status code 401 when authentication is configured with
    invalid content and Authorization header is sent" (auth: "foo:"): served, no user."""
    t = translate(basic_ingress(), secrets=[secret("test", auth="foo:")])
    r = t.ask(AUTH, "/")
    auth = find_filter(r.filters, BasicAuth)
    assert r.status == 0 and auth is not None and auth.users == ()
    assert not verify_basic(auth.users, "foo", "")
    assert t.warnings() == (
        "Ingress default/auth: auth-secret default/test: data[auth] line 1: user 'foo': empty "
        "password hash: this user cannot log in (401); use one of apr1 ($apr1$, htpasswd -m), "
        "bcrypt ($2y$/$2a$/$2b$, htpasswd -B), SHA-1 ({SHA}, htpasswd -s), SHA-256/SHA-512 "
        "crypt ($5$/$6$, htpasswd -2/-5), MD5-crypt ($1$), {SSHA}, {PLAIN}",
        "Ingress default/auth: auth-secret default/test: no usable user: every request "
        "answers 401",
    )


def test_a_secret_without_key_auth_answers_503() -> None:
    """docs/examples/auth/basic: "It's important the file generated is named auth
    (actually - that the secret has a key data.auth), otherwise the ingress-controller
    returns a 503" (auth/main.go dumpSecretAuthFile)."""
    t = translate(basic_ingress(), secrets=[secret("test", htpasswd=bcrypt_line("foo", "bar"))])
    assert t.ask(AUTH, "/").status == 503
    assert t.warnings() == (
        "Ingress default/auth: auth-secret default/test: data[auth]: required (the htpasswd "
        "file): every path of the Ingress answers 503 until it is fixed (as ingress-nginx)",
    )


def test_proxy_ssl_secret_gives_the_ca_and_the_client_certificate() -> None:
    """proxyssl/main.go and nginx.tmpl: proxy_ssl_trusted_certificate (ca.crt) with
    proxy_ssl_verify; proxy_ssl_certificate (tls.crt/tls.key) presented with a CA."""
    ca, _ = selfsigned.generate("pods-ca", ["pods.test"])
    cert, key = selfsigned.generate("seaway-client", ["client.test"])
    base = ann(backend_protocol="HTTPS", proxy_ssl_secret="default/pods")

    def upstream(verify: str, **data: bytes) -> tuple[UpstreamProtocol | None, tuple[str, ...]]:
        annotations = {**base, **ann(proxy_ssl_verify=verify)}
        t = translate(ing("p", AUTH, path("/"), annotations=annotations),
                      secrets=[secret("pods", **data)])  # fmt: skip
        return find_filter(t.ask(AUTH, "/").filters, UpstreamProtocol), t.warnings()

    found, warnings = upstream("on", ca_crt=ca, tls_crt=cert, tls_key=key)
    assert found is not None and warnings == ()
    assert (found.verify, found.ca_pem, found.cert_pem, found.key_pem) == (True, ca, cert, key)
    found, _ = upstream("off", ca_crt=ca)
    assert found is not None and (found.verify, found.ca_pem) == (False, b"")
    # verify on, but the Secret has only a key pair: ingress-nginx writes no
    # proxy_ssl_verify, so nothing is verified (said in the report).
    found, warnings = upstream("on", tls_crt=cert, tls_key=key)
    assert found is not None and (found.verify, found.cert_pem) == (False, b"")
    assert warnings == (
        "Ingress default/p: proxy-ssl-secret default/pods: no ca.crt although proxy-ssl-verify "
        "is on: the pods' certificates are not verified (ingress-nginx then sets no "
        "proxy_ssl_verify)",
    )
    t = translate(ing("p", AUTH, path("/"), annotations=base))
    assert t.ask(AUTH, "/").status == 503  # proxyssl/main.go: GetAuthCertificate fails
    t = translate(ing("p", AUTH, path("/"), annotations=base),
                  secrets=[secret("pods", ca_crt=b"-----BEGIN CERTIFICATE-----\nxx")])  # fmt: skip
    assert t.ask(AUTH, "/").status == 503
    assert "data[ca.crt]: holds no valid PEM certificate" in t.warnings()[0]


def test_a_secret_change_translates_again(lt: LoopThread) -> None:
    """The L7 dataplane: a missing Secret answers 503 on a real socket; the Secret
    appearing, then changing, each makes a new translation whose table has its users."""
    backend = lt.run(Backend("web").start())
    dp = IngressDataplane(Options(http_bind_address=(HOST, 0), https_bind_address=None,
                                  workers=1).ingress_config())  # fmt: skip
    lt.run(dp.start())

    def sync(snap: Snapshot) -> None:
        lt.run(dp.sync(snap, frozenset(snap.service_ports)))

    def users() -> tuple[tuple[str, str], ...]:
        assert dp.translation is not None
        vhost = dp.translation.table.listeners[0].virtual_hosts[0]
        auth = find_filter(vhost.routes[0].filters, BasicAuth)
        assert auth is not None
        return auth.users

    try:
        ingress = basic_ingress()
        ports = [port_info("web", [backend.endpoint])]
        sync(snapshot([ingress], (), ports=ports))
        http, _ = dp.addresses()
        assert http is not None and dp.syncs == 1
        assert get(http[1], "/", host=AUTH)[0] == 503
        first = snapshot([ingress], (), ports=ports, secrets=[secret("test", auth="foo:{PLAIN}a")])
        sync(first)
        assert dp.syncs == 2 and users() == (("foo", "{PLAIN}a"),)
        lt.run(dp.sync(replace(first, generation=5), frozenset()))  # nothing it reads changed
        assert dp.syncs == 2
        second = snapshot([ingress], (), ports=ports, secrets=[secret("test", auth="bar:{PLAIN}b")])
        sync(second)
        assert dp.syncs == 3 and users() == (("bar", "{PLAIN}b"),)
    finally:
        lt.run(dp.stop())
        lt.run(backend.close())
