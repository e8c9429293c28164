"""Self-signed certificates: the HTTPS fallback certificate, and test certificates.

Uses the `cryptography` package when it is importable, else the `openssl` command line
tool. Keys are ECDSA P-256 (fast to generate, accepted by every current TLS client).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

DEFAULT_COMMON_NAME = "seaway default certificate"
DEFAULT_DAYS = 3650


class CertificateError(RuntimeError):
    """Neither `cryptography` nor the openssl CLI could make a certificate."""


def generate(
    common_name: str = DEFAULT_COMMON_NAME,
    dns_names: Sequence[str] = (),
    days: int = DEFAULT_DAYS,
    backend: str = "auto",
) -> tuple[bytes, bytes]:
    """A self-signed certificate and its private key, both PEM.

    `dns_names` go into subjectAltName (wildcards such as "*.example.com" allowed).
    `backend`: "auto" (cryptography if importable, else openssl), "cryptography" or
    "openssl".
    """
    if backend in ("auto", "cryptography"):
        try:
            return _with_cryptography(common_name, dns_names, days)
        except ImportError:
            if backend == "cryptography":
                raise
    return _with_openssl(common_name, dns_names, days)


def _with_cryptography(
    common_name: str, dns_names: Sequence[str], days: int
) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    if dns_names:
        san = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _with_openssl(common_name: str, dns_names: Sequence[str], days: int) -> tuple[bytes, bytes]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError(
            "cannot generate a certificate: install the 'cryptography' Python package "
            "or the openssl command line tool"
        )
    subject = "/CN=" + common_name.replace("\\", "\\\\").replace("/", "\\/")
    with tempfile.TemporaryDirectory(prefix="seaway-cert-") as tmp:
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        cmd = [
            openssl, "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key_path, "-out", cert_path,
            "-subj", subject, "-days", str(days),
        ]  # fmt: skip
        if dns_names:
            cmd += ["-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in dns_names)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CertificateError(f"openssl req failed: {done.stderr.strip()}")
        with open(cert_path, "rb") as cert_file, open(key_path, "rb") as key_file:
            return cert_file.read(), key_file.read()
