"""Is a kubernetes.io/tls Secret's PEM usable? Is a ca.crt? (pure: parsing only, no I/O)

A Gateway listener whose certificateRef points at a Secret with garbage in it must say so
in its status (ResolvedRefs False, InvalidCertificateRef) instead of failing later in the
TLS layer. Results are cached: the same Secret is checked on every status computation.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1024)
def pem_problem(cert_pem: bytes, key_pem: bytes) -> str:
    """ "" when tls.crt holds at least one certificate and tls.key an unencrypted private
    key matching the first one; otherwise what is wrong, for a status message."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return "tls.crt holds no valid PEM certificate"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return "tls.key is encrypted (kubernetes.io/tls keys must not be)"
    except (ValueError, UnsupportedAlgorithm):
        return "tls.key holds no valid PEM private key"
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    cert_key = certs[0].public_key().public_bytes(der, public)
    if key.public_key().public_bytes(der, public) != cert_key:
        return "tls.key does not match the certificate in tls.crt"
    return ""



@lru_cache(maxsize=256)
def ca_problem(ca_pem: bytes) -> str:
    """"" when `ca_pem` (a Secret's ca.crt) holds at least one PEM certificate; otherwise
    what is wrong."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(ca_pem)
    except ValueError:
        return "holds no valid PEM certificate"
    return ""
