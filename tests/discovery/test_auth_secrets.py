"""The Secrets ingress-nginx annotations name: htpasswd parsing (as nginx's auth_basic
reads the file), reading a Secret for its use (auth-file, auth-map, proxy-ssl, as
ingress-nginx's auth/main.go and store/backend_ssl.go do), which Secrets are named
(discovery/secret_refs.py), and the snapshot builder keeping only those."""

from __future__ import annotations

from discovery.auth_secrets import Htpasswd, ProxySSLMaterial, read_auth_secret
from discovery.htpasswd import htpasswd_text, parse_auth_map, parse_htpasswd
from discovery.model import KIND_SECRET, GenericSecret, ObjectKey, TLSSecret
from discovery.secret_refs import SecretRefs, annotation_secrets
from discovery.snapshot_builder import SnapshotBuilder, build_snapshot
from discovery.store import Store
from ingress import selfsigned
from tests.discovery.factories import make_ingress, make_ingress_class, meta

P = "nginx.ingress.kubernetes.io/"
FOO = "$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0"  # ingress-nginx e2e auth.go: foo / bar
SHA = "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="


def opaque(name: str, ns: str = "default", **data: bytes) -> GenericSecret:
    values = {k.replace("_", "."): v for k, v in data.items()}
    return GenericSecret(meta(name, ns), "Opaque", values)


def basic(name: str, secret: str, kind: str = "auth-file", **more: str) -> dict[str, str]:
    return {P + "auth-type": "basic", P + "auth-secret": secret, P + "auth-secret-type": kind,
            **{P + k.replace("_", "-"): v for k, v in more.items()}}  # fmt: skip


# -- htpasswd text ---------------------------------------------------------------------------


def test_htpasswd_lines_as_nginx_reads_them() -> None:
    """ngx_http_auth_basic_module: '#' comments and blank lines skipped, user up to the
    first ':', the hash the rest of the line (CRLF too), the first line of a user wins."""
    text = (
        f"# made by htpasswd\r\n\nfoo:{FOO}\r\nalice:{SHA}\n"
        "no colon here\n:{PLAIN}nobody\nfoo:{PLAIN}again\nold:FNEUPSYbKW3RQ\nlast:{PLAIN}x"
    )
    parsed = parse_htpasswd(text)
    assert parsed.users == (("foo", FOO), ("alice", SHA), ("last", "{PLAIN}x"))
    assert parsed.problems == (
        "data[auth] line 5: no ':' between user and password hash: line ignored",
        "data[auth] line 6: empty user name: line ignored",
        "data[auth] line 7: user 'foo' again: the first one (line 3) is used, as nginx does",
        "data[auth] line 8: user 'old': crypt(3) DES hash (htpasswd -d) is not supported: "
        "this user cannot log in (401); use one of apr1 ($apr1$, htpasswd -m), bcrypt "
        "($2y$/$2a$/$2b$, htpasswd -B), SHA-1 ({SHA}, htpasswd -s), SHA-256/SHA-512 crypt "
        "($5$/$6$, htpasswd -2/-5), MD5-crypt ($1$), {SSHA}, {PLAIN}",
    )


def test_htpasswd_hash_problems_name_what_is_wrong() -> None:
    for line, why in (
        ("u:", "empty password hash"),
        ("u:$apr1$abc$tooshort", "malformed apr1 hash"),
        ("u:$2y$05$short", "malformed bcrypt hash"),
        ("u:{SHA}bm90IDIwIGJ5dGVz", "malformed {SHA} hash"),
        ("u:plain-text-password", "unknown hash format (plain text? crypt?)"),
        ("u:$5$rounds=5000000$salt$" + "a" * 43,
         "SHA-crypt with more than 1,000,000 rounds is not supported"),
    ):  # fmt: skip
        parsed = parse_htpasswd(line)
        assert parsed.users == () and len(parsed.problems) == 1
        assert f"user 'u': {why}: this user cannot log in (401)" in parsed.problems[0], line


def test_htpasswd_bytes_that_are_not_utf8() -> None:
    parsed = htpasswd_text(b"\xffbad:{PLAIN}x\nfoo:" + FOO.encode())
    assert parsed.users == (("\ufffdbad", "{PLAIN}x"), ("foo", FOO))
    assert parsed.problems == ("data[auth]: not UTF-8 text (invalid bytes replaced)",)


def test_auth_map_one_user_per_key() -> None:
    """auth/main.go dumpSecretAuthMap writes `key:value` per key."""
    parsed = parse_auth_map({"foo": FOO.encode() + b"\n", "alice": SHA.encode(),
                             "bob": b"nothash", "carol": b"{PLAIN}a\n{PLAIN}b"})  # fmt: skip
    assert parsed.users == (("alice", SHA), ("carol", "{PLAIN}a"), ("foo", FOO))
    assert parsed.problems[0].startswith("data[bob]: user 'bob': unknown hash format")
    assert parsed.problems[1] == "data[carol]: several lines: only the first is the password hash"


# -- a Secret read for its use -----------------------------------------------------------------


def test_auth_file_needs_key_auth() -> None:
    """auth/main.go dumpSecretAuthFile: no key `auth` -> LocationDenied (503)."""
    found = read_auth_secret(opaque("s", users=f"foo:{FOO}".encode()), ["auth-file", "auth-map"])
    assert found.auth_file == Htpasswd(unusable="data[auth]: required (the htpasswd file)")
    assert found.auth_map is not None and found.auth_map.users.problems  # 'users' is no user
    assert found.proxy_ssl is None and found.htpasswd("auth-file") is found.auth_file
    found = read_auth_secret(opaque("s", auth=f"foo:{FOO}\n".encode()), ["auth-file"])
    assert found.auth_file is not None and found.auth_file.users.users == (("foo", FOO),)
    assert found.auth_map is None


def test_proxy_ssl_secret_as_ingress_nginx_reads_it() -> None:
    """store/backend_ssl.go getPemCertificate: ca.crt (+ key pair); a key pair alone gives
    no CA (and ingress-nginx then sets no proxy_ssl_verify); neither: an error (503)."""
    ca, _ = selfsigned.generate("pods-ca", ["pods.test"])
    cert, key = selfsigned.generate("client", ["client.test"])
    read = read_auth_secret
    assert read(opaque("s", ca_crt=ca), ["proxy-ssl"]).proxy_ssl == ProxySSLMaterial(ca)
    assert read(opaque("s", ca_crt=ca, tls_crt=cert, tls_key=key), ["proxy-ssl"]).proxy_ssl == (
        ProxySSLMaterial(ca, cert, key)
    )
    assert read(opaque("s", tls_crt=cert, tls_key=key), ["proxy-ssl"]).proxy_ssl == (
        ProxySSLMaterial()
    )
    unusable = [
        (opaque("s", other=b"x"), "data: neither ca.crt nor tls.crt and tls.key"),
        (opaque("s", ca_crt=b"not pem"), "data[ca.crt]: holds no valid PEM certificate"),
        (opaque("s", ca_crt=ca, tls_crt=cert, tls_key=ca),
         "data: tls.key holds no valid PEM private key"),
    ]  # fmt: skip
    for secret, why in unusable:
        material = read(secret, ["proxy-ssl"]).proxy_ssl
        assert material is not None and material.unusable == why
    tls = TLSSecret(meta("t"), cert, key, ca)  # a kubernetes.io/tls Secret with ca.crt
    assert read(tls, ["proxy-ssl"]).proxy_ssl == ProxySSLMaterial(ca, cert, key)


# -- which Secrets are named ----------------------------------------------------------------


def test_annotation_secrets_same_namespace_only() -> None:
    named = make_ingress("a", "shop", annotations={
        **basic("a", " basic-auth "), P + "proxy-ssl-secret": "shop/ca"})  # fmt: skip
    assert annotation_secrets(named) == {("shop", "basic-auth"), ("shop", "ca")}
    other_ns = make_ingress("b", "shop", annotations={
        **basic("b", "kube-system/admin"), P + "proxy-ssl-secret": "other/ca"})  # fmt: skip
    assert annotation_secrets(other_ns) == set()
    no_type = make_ingress("c", "shop", annotations={P + "auth-secret": "basic-auth"})
    assert annotation_secrets(no_type) == set()
    assert annotation_secrets(named, "custom.prefix") == set()


def test_only_owned_ingresses_name_secrets() -> None:
    refs = SecretRefs("k8s.io/ingress-nginx")
    ours = make_ingress("ours", ingress_class_name="nginx", tls=[(["a.test"], "tls")],
                        annotations=basic("ours", "htpasswd"))  # fmt: skip
    theirs = make_ingress("theirs", ingress_class_name="other", annotations=basic("t", "theirs"))
    classes = [make_ingress_class("nginx", "k8s.io/ingress-nginx"), make_ingress_class("other")]
    assert refs.of_ingresses([ours, theirs], classes) == {
        ("default", "tls"),
        ("default", "htpasswd"),
    }


# -- the snapshot builder -------------------------------------------------------------------


def test_snapshot_keeps_only_named_secrets_read_for_their_use() -> None:
    web = make_ingress("web", annotations=basic("web", "htpasswd"))
    snap = build_snapshot([
        web, opaque("htpasswd", auth=f"foo:{FOO}".encode()), opaque("unrelated", auth=b"x"),
    ])  # fmt: skip
    assert set(snap.auth_secrets) == {("default", "htpasswd")}
    found = snap.auth_secrets[("default", "htpasswd")]
    assert found.auth_file is not None and found.auth_file.users.users == (("foo", FOO),)
    assert found.auth_map is None and found.proxy_ssl is None
    assert snap.tls_secrets == {}  # an Opaque Secret is no certificate


def test_secret_changes_reach_the_snapshot_and_unchanged_ones_are_shared() -> None:
    store = Store()
    builder = SnapshotBuilder(store)
    store.upsert(make_ingress("web", annotations=basic("web", "htpasswd")))
    store.upsert(make_ingress("map", annotations=basic("map", "users", "auth-map")))
    store.upsert(opaque("users", foo=FOO.encode()))
    first, _ = builder.build()
    assert set(first.auth_secrets) == {("default", "users")}  # htpasswd does not exist yet
    store.upsert(opaque("htpasswd", auth=f"foo:{FOO}".encode()))
    second, _ = builder.build()
    assert set(second.auth_secrets) == {("default", "users"), ("default", "htpasswd")}
    assert second.auth_secrets[("default", "users")] is first.auth_secrets[("default", "users")]
    store.upsert(opaque("htpasswd", auth=f"alice:{SHA}".encode()))
    third, _ = builder.build()
    file_users = third.auth_secrets[("default", "htpasswd")].auth_file
    assert file_users is not None and file_users.users.users == (("alice", SHA),)
    # Nothing changed: the same map.
    store.upsert(make_ingress("unrelated"))
    fourth, _ = builder.build()
    assert fourth.auth_secrets is third.auth_secrets
    # The Ingress stops naming it: it leaves the Snapshot.
    store.upsert(make_ingress("web"))
    fifth, _ = builder.build()
    assert set(fifth.auth_secrets) == {("default", "users")}
    # A Secret that turns from TLS into Opaque leaves the certificates.
    cert, key = selfsigned.generate("a.test", ["a.test"])
    store.upsert(TLSSecret(meta("users"), cert, key))
    sixth, _ = builder.build()
    assert ("default", "users") in sixth.tls_secrets
    store.upsert(opaque("users", foo=FOO.encode()))
    seventh, _ = builder.build()
    assert ("default", "users") not in seventh.tls_secrets
    store.delete(ObjectKey(KIND_SECRET, "default", "users"))
    eighth, _ = builder.build()
    assert eighth.auth_secrets == {}
