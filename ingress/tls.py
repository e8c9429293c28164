"""TLS termination: certificates by SNI from the owned Ingresses' ``spec.tls``.

`CertStore.update(secrets, table)` reads the RouteTable's certificates (``table.tls_hosts()``:
host -> Secret, oldest Ingress first) and the TLS Secrets by (namespace, name), and builds
one ``ssl.SSLContext`` per Secret.
A context is rebuilt only when its Secret's PEM bytes changed, so a sync that touches
nothing TLS-related costs a few dict lookups, and a renewed certificate is served to new
connections right after the next sync, with no restart and no dropped connection.

`CertStore.server_context()` is the one context the HTTPS listener is created with. Its
``sni_callback`` picks, for the name the client sent (case-insensitive): the exact host,
else the wildcard covering exactly one more label (``*.example.com`` for
``a.example.com``; with ``wildcard="suffix"``, as Gateway API listener hostnames say, one
or more labels, the longest wildcard first), else the default certificate. Clients that
send no SNI get the default certificate (OpenSSL calls the callback for them too, with no name).

Each Gateway listener socket has a CertStore of its own (suffix wildcards, its table
being that socket's Listener only, and the certificate of its listener without hostname,
if any, as ``default_secret``).

Default certificate: the Secret named by ``default_secret`` when given and usable, else
the first usable Secret (in namespace/name order) that an owned Ingress references, else a
self-signed certificate (CN "seaway default certificate") generated once, the first time
it is needed.

A referenced Secret that is missing, not of type kubernetes.io/tls, or whose certificate
or key does not load (bad PEM, key not matching the certificate, encrypted key) is logged
as an error naming the Ingress(es) and the Secret, once per change; its hosts get the
default certificate. Nothing here raises on bad input.

``ssl`` can only load certificates from files: the PEM bytes are written to an anonymous
memory file (``memfd_create``, no name on any file system) and read through
``/proc/self/fd``; where that is not available, to a 0600 temporary file deleted right
after loading.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from discovery.model import TLSSecret
from ingress import selfsigned
from ingress.routes import RouteTable

log = logging.getLogger("seaway.ingress.tls")

SecretKey = tuple[str, str]  # (namespace, name)
DEFAULT_ALPN = ("http/1.1",)


class _Loaded:
    """One Secret's state: its PEM bytes and context, or why it is unusable."""

    __slots__ = ("context", "error", "pem")

    def __init__(
        self, pem: tuple[bytes, bytes] | None, context: ssl.SSLContext | None, error: str
    ) -> None:
        self.pem = pem
        self.context = context
        self.error = error


def _no_password() -> bytes:
    raise ValueError("the private key is encrypted; kubernetes.io/tls keys must not be")


def load_pem(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """load_cert_chain from PEM bytes (raises ssl.SSLError / ValueError on bad input)."""
    data = cert_pem.rstrip(b"\n") + b"\n" + key_pem
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("seaway-tls", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            context.load_cert_chain(f"/proc/self/fd/{fd}", password=_no_password)
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="seaway-tls-", suffix=".pem")  # mode 0600
    try:
        os.write(fd, data)
        os.close(fd)
        fd = -1
        context.load_cert_chain(path, password=_no_password)
    finally:
        if fd >= 0:
            os.close(fd)
        os.unlink(path)


class CertStore:
    """Per-host SSL contexts for the HTTPS listener, refreshed on every sync."""

    def __init__(
        self,
        default_secret: SecretKey | None = None,
        alpn_protocols: Sequence[str] = DEFAULT_ALPN,
        generate_fallback: Callable[[], tuple[bytes, bytes]] = selfsigned.generate,
        wildcard: Literal["label", "suffix"] = "label",
    ) -> None:
        self._default_secret = default_secret
        self._suffix = wildcard == "suffix"
        self._alpn = list(alpn_protocols)
        self._generate_fallback = generate_fallback
        self._fallback: tuple[bytes, bytes] | None = None
        self._fallback_context: ssl.SSLContext | None = None
        self._loaded: dict[SecretKey, _Loaded] = {}
        self._exact: dict[str, ssl.SSLContext] = {}
        self._wildcard: dict[str, ssl.SSLContext] = {}  # ".example.com" -> context
        self._default_key: SecretKey | None = None
        self._default_context: ssl.SSLContext | None = None
        self._default_pem: tuple[bytes, bytes] | None = None
        self._server: ssl.SSLContext | None = None
        self.contexts_built = 0  # how many contexts were built (for tests and metrics)

    # --- what the listener uses -------------------------------------------------------

    def server_context(self) -> ssl.SSLContext:
        """The listener's context (always the same object); picks certificates by SNI."""
        if self._server is None:
            # OpenSSL runs the callback on every handshake (server_name None without
            # SNI) and it always swaps in the right context; the certificate loaded here
            # is only what the context needs to be a valid server context.
            self._server = self._new_context()
            load_pem(self._server, *self._current_default_pem())
            self._server.sni_callback = self._on_sni
        return self._server

    @property
    def hosts(self) -> frozenset[str]:
        """Hosts (exact, and "*.x" wildcards) that have their own usable certificate."""
        return frozenset(self._exact) | frozenset("*" + s for s in self._wildcard)

    @property
    def default_source(self) -> str:
        """Where the default certificate comes from: "namespace/name" or "self-signed"."""
        if self._default_key is None:
            return "self-signed"
        return f"{self._default_key[0]}/{self._default_key[1]}"

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        """The context a handshake with this SNI name gets."""
        if server_name:
            name = server_name.lower().rstrip(".")
            found = self._exact.get(name)
            if found is not None:
                return found
            dot = name.find(".")
            while dot > 0:
                found = self._wildcard.get(name[dot:])
                if found is not None:
                    return found
                dot = name.find(".", dot + 1) if self._suffix else -1
        if self._default_context is not None:
            return self._default_context
        if self._fallback_context is None:
            self._fallback_context = self._new_context()
            load_pem(self._fallback_context, *self._fallback_pem())
        return self._fallback_context

    def _on_sni(
        self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        conn.context = self.context_for(server_name)

    # --- refreshing ---------------------------------------------------------------------

    @property
    def preferred_default(self) -> SecretKey | None:
        """The ``default_secret`` it was made with."""
        return self._default_secret

    def update(self, secrets: Mapping[SecretKey, TLSSecret], table: RouteTable) -> None:
        """Take the TLS Secrets the table's certificates name; rebuild what changed."""
        tls_hosts = table.tls_hosts()
        users = table.secret_users()
        wanted = set(tls_hosts.values())
        if self._default_secret is not None:
            wanted.add(self._default_secret)
        loaded: dict[SecretKey, _Loaded] = {}
        for key in sorted(wanted):
            loaded[key] = self._refresh(key, secrets, users.get(key, ()))
        self._loaded = loaded
        exact: dict[str, ssl.SSLContext] = {}
        wildcard: dict[str, ssl.SSLContext] = {}
        for host, key in tls_hosts.items():
            context = loaded[key].context
            if context is None:
                continue
            if host.startswith("*."):
                wildcard[host[1:]] = context
            else:
                exact[host] = context
        self._exact, self._wildcard = exact, wildcard
        self._choose_default(loaded)

    def _refresh(
        self, key: SecretKey, secrets: Mapping[SecretKey, TLSSecret], users: Sequence[str]
    ) -> _Loaded:
        secret = secrets.get(key)
        previous = self._loaded.get(key)
        who = ", ".join(users) or "default certificate"
        if secret is None:
            error = (
                f"{who}: TLS Secret {key[0]}/{key[1]} not found (or not of type "
                "kubernetes.io/tls); its hosts get the default certificate"
            )
            if previous is None or previous.error != error:
                log.error("%s", error)
            return _Loaded(None, None, error)
        pem = (secret.cert_pem, secret.key_pem)
        if previous is not None and previous.pem == pem:
            return previous
        context = self._new_context()
        try:
            load_pem(context, *pem)
        except (ssl.SSLError, ValueError, OSError) as exc:
            error = (
                f"{who}: TLS Secret {key[0]}/{key[1]}: tls.crt/tls.key unusable ({exc}); "
                "its hosts get the default certificate"
            )
            log.error("%s", error)
            return _Loaded(pem, None, error)
        self.contexts_built += 1
        if previous is not None:
            log.info("TLS Secret %s/%s: certificate reloaded", *key)
        return _Loaded(pem, context, "")

    def _choose_default(self, loaded: dict[SecretKey, _Loaded]) -> None:
        choice: SecretKey | None = None
        preferred = self._default_secret
        if preferred is not None and loaded[preferred].context is not None:
            choice = preferred
        else:
            choice = next((k for k, v in loaded.items() if v.context is not None), None)
        if choice is None:
            self._default_key = None
            self._default_pem = None
            self._default_context = None  # the self-signed one
        else:
            self._default_key = choice
            self._default_pem = loaded[choice].pem
            self._default_context = loaded[choice].context

    def _current_default_pem(self) -> tuple[bytes, bytes]:
        return self._default_pem if self._default_pem is not None else self._fallback_pem()

    def _fallback_pem(self) -> tuple[bytes, bytes]:
        if self._fallback is None:
            self._fallback = self._generate_fallback()
            log.info("no TLS Secret to use as default certificate: using a self-signed one")
        return self._fallback

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        if self._alpn:
            context.set_alpn_protocols(self._alpn)
        return context
