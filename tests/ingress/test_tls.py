"""CertStore: SNI selection, default certificate, live updates, bad Secrets.

Handshakes are real: a TLS server on a loopback socket (asyncio and uvloop) created once
with `server_context()`, and ssl clients that report the certificate they were shown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import ssl
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from discovery.model import TLSSecret
from discovery.snapshot import Snapshot
from ingress import selfsigned
from ingress.tls import CertStore, load_pem
from ingress.translate_ingress import translate_ingresses
from tests.ingress import routerkit as k

Pem = tuple[bytes, bytes]


@pytest.fixture(scope="module")
def certs() -> dict[str, Pem]:
    return {
        "a": selfsigned.generate("a.example.com", ["a.example.com"]),
        "a2": selfsigned.generate("a.example.com renewed", ["a.example.com"]),
        "wild": selfsigned.generate("wild", ["*.wild.example.com"]),
        "fallback": selfsigned.generate("fallback"),
    }


def cn_of(der: bytes) -> str:
    cert = x509.load_der_x509_certificate(der)
    value = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(value, str)
    return value


def secret(name: str, pem: Pem, ns: str = "default") -> TLSSecret:
    return k.tls_secret(name, pem[0], pem[1], ns=ns)


def tls_snapshot(
    secrets: list[TLSSecret], extra_tls: Sequence[tuple[list[str], str]] = ()
) -> Snapshot:
    ing = k.ingress(
        "web",
        k.rule("a.example.com", k.path("/", "web")),
        k.rule("*.wild.example.com", k.path("/", "web")),
        tls=[(["a.example.com"], "cert-a"), (["*.wild.example.com"], "cert-wild"), *extra_tls],
    )
    return k.snapshot([ing], k.services("web"), secrets=secrets)


def updated(store: CertStore, snap: Snapshot) -> CertStore:
    store.update(snap.tls_secrets, translate_ingresses(snap).table)
    return store


# --- a real TLS server ----------------------------------------------------------------------


class Server:
    """A TLS server on 127.0.0.1 that completes the handshake and closes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, context: ssl.SSLContext) -> None:
        self.loop = loop
        self.server = loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=context)
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    def presented(self, server_name: str) -> str:
        """CN of the certificate the server shows for this SNI name ("" sends no SNI)."""
        return self.loop.run_until_complete(self._presented(server_name))

    async def _presented(self, server_name: str) -> str:
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=client, server_hostname=server_name
        )
        try:
            assert await reader.read(5) == b"hello"
            sslobj = writer.get_extra_info("ssl_object")
            assert sslobj.selected_alpn_protocol() in (None, "http/1.1")
            der = sslobj.getpeercert(binary_form=True)
            return cn_of(der)
        finally:
            writer.close()

    def close(self) -> None:
        self.server.close()
        self.loop.run_until_complete(self.server.wait_closed())


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    return asyncio.new_event_loop()


@pytest.fixture(params=["asyncio", "uvloop"])
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[[CertStore], Server]]:
    loop = _new_loop(request.param)
    servers: list[Server] = []

    def start(store: CertStore) -> Server:
        server = Server(loop, store.server_context())
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
        loop.close()


# --- tests ---------------------------------------------------------------------------------


def test_sni_picks_host_certificate_else_default(
    certs: dict[str, Pem], serve: Callable[[CertStore], Server]
) -> None:
    snap = tls_snapshot(
        [
            secret("cert-a", certs["a"]),
            secret("cert-wild", certs["wild"]),
            secret("fallback", certs["fallback"]),
        ]
    )
    store = updated(CertStore(default_secret=("default", "fallback")), snap)
    server = serve(store)
    assert server.presented("a.example.com") == "a.example.com"
    assert server.presented("A.Example.COM") == "a.example.com"
    assert server.presented("x.wild.example.com") == "wild"
    assert server.presented("a.b.wild.example.com") == "fallback"  # one label only
    assert server.presented("wild.example.com") == "fallback"
    assert server.presented("unknown.test") == "fallback"
    assert server.presented("") == "fallback"  # no SNI at all
    assert store.hosts == {"a.example.com", "*.wild.example.com"}
    assert store.default_source == "default/fallback"


def test_update_replaces_certificate_without_restart(
    certs: dict[str, Pem], serve: Callable[[CertStore], Server]
) -> None:
    wild = secret("cert-wild", certs["wild"])
    store = updated(CertStore(), tls_snapshot([secret("cert-a", certs["a"]), wild]))
    context = store.server_context()
    server = serve(store)
    assert server.presented("a.example.com") == "a.example.com"
    assert store.contexts_built == 2
    wild_context = store.context_for("x.wild.example.com")

    updated(store, tls_snapshot([secret("cert-a", certs["a2"]), wild]))
    assert server.presented("a.example.com") == "a.example.com renewed"
    assert server.presented("x.wild.example.com") == "wild"
    assert store.contexts_built == 3  # only the changed Secret was rebuilt
    assert store.context_for("x.wild.example.com") is wild_context
    assert store.server_context() is context

    updated(store, tls_snapshot([secret("cert-a", certs["a2"]), wild]))
    assert store.contexts_built == 3  # nothing changed, nothing rebuilt


def test_default_is_first_referenced_secret_and_follows_updates(
    certs: dict[str, Pem], serve: Callable[[CertStore], Server]
) -> None:
    # "cert-a" < "cert-wild": cert-a is the default
    store = updated(
        CertStore(),
        tls_snapshot([secret("cert-a", certs["a"]), secret("cert-wild", certs["wild"])]),
    )
    server = serve(store)
    assert store.default_source == "default/cert-a"
    assert server.presented("") == "a.example.com"
    assert server.presented("nothing.here") == "a.example.com"
    # cert-a disappears: the default moves to cert-wild, also for clients without SNI
    updated(store, tls_snapshot([secret("cert-wild", certs["wild"])]))
    assert store.default_source == "default/cert-wild"
    assert server.presented("") == "wild"
    assert server.presented("a.example.com") == "wild"
    # and comes back renewed
    updated(
        store, tls_snapshot([secret("cert-a", certs["a2"]), secret("cert-wild", certs["wild"])])
    )
    assert server.presented("") == "a.example.com renewed"


def test_self_signed_default_when_no_secret_is_usable(
    certs: dict[str, Pem], serve: Callable[[CertStore], Server]
) -> None:
    generated: list[int] = []

    def fallback() -> Pem:
        generated.append(1)
        return selfsigned.generate()

    store = updated(CertStore(generate_fallback=fallback), tls_snapshot([]))
    server = serve(store)
    assert store.default_source == "self-signed"
    assert server.presented("a.example.com") == selfsigned.DEFAULT_COMMON_NAME
    assert server.presented("") == selfsigned.DEFAULT_COMMON_NAME
    # a Secret appears: its host gets it, the rest keeps the default; then it goes again
    updated(store, tls_snapshot([secret("cert-a", certs["a"])]))
    assert server.presented("a.example.com") == "a.example.com"
    updated(store, tls_snapshot([]))
    assert server.presented("") == selfsigned.DEFAULT_COMMON_NAME
    assert generated == [1]  # generated once


def test_missing_and_invalid_secrets_are_logged_and_fall_back(
    certs: dict[str, Pem], serve: Callable[[CertStore], Server], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="seaway.ingress.tls")
    a_cert = certs["a"][0]
    wild_key = certs["wild"][1]
    bad = [
        secret("cert-a", (a_cert, wild_key)),  # key does not match the certificate
        secret("cert-wild", (b"not a certificate", wild_key)),
        secret("fallback", certs["fallback"]),
    ]
    extra = [(["gone.example.com"], "missing")]
    store = CertStore(default_secret=("default", "fallback"))
    updated(store, tls_snapshot(bad, extra))
    server = serve(store)
    assert server.presented("a.example.com") == "fallback"
    assert server.presented("x.wild.example.com") == "fallback"
    assert server.presented("gone.example.com") == "fallback"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages
    assert any(
        "Ingress default/web: spec.tls[2].secretName: TLS Secret default/missing not found" in m
        for m in messages
    )
    cert_a = "Ingress default/web: spec.tls[0].secretName: TLS Secret default/cert-a"
    assert any(cert_a in m for m in messages)
    assert any("TLS Secret default/cert-wild: tls.crt/tls.key unusable" in m for m in messages)
    # the same problems are not logged again on every sync
    updated(store, tls_snapshot(bad, extra))
    assert len(caplog.records) == 3
    # fixed Secrets are picked up
    updated(store, tls_snapshot([secret("cert-a", certs["a"]), bad[1], bad[2]], extra))
    assert server.presented("a.example.com") == "a.example.com"


def test_encrypted_key_is_rejected_not_prompted(certs: dict[str, Pem]) -> None:
    key = serialization.load_pem_private_key(certs["a"][1], password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    store = updated(CertStore(), tls_snapshot([secret("cert-a", (certs["a"][0], encrypted))]))
    assert store.hosts == frozenset()
    assert store.default_source == "self-signed"


def test_load_pem_without_memfd_uses_private_temp_file(
    certs: dict[str, Pem], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[int] = []
    real_load = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, *args: Any, **kwargs: Any) -> None:
        seen.append(os.stat(certfile).st_mode & 0o777)
        assert os.path.dirname(certfile) == str(tmp_path)
        real_load(self, certfile, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_pem(context, *certs["a"])
    assert seen == [0o600]
    assert list(tmp_path.iterdir()) == []  # deleted right after loading
    with pytest.raises(ssl.SSLError):
        load_pem(context, b"garbage", certs["a"][1])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", ["cryptography", "openssl"])
def test_generate_self_signed(backend: str) -> None:
    if backend == "openssl" and not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed")
    cert_pem, key_pem = selfsigned.generate("host.test", ["host.test", "*.host.test"], 30, backend)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "host.test"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["host.test", "*.host.test"]
    load_pem(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert_pem, key_pem)
