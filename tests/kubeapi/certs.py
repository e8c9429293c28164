"""A throwaway CA, server certificate (for 127.0.0.1) and client certificate, made with
the openssl CLI, so the stand-in can serve HTTPS and demand client certificates the way a
real apiserver does."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True, slots=True)
class Pki:
    directory: str
    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _signed(directory: str, ca: str, ca_key: str, name: str, cn: str, ext: str) -> tuple[str, str]:
    key, csr, crt = (os.path.join(directory, f"{name}.{x}") for x in ("key", "csr", "crt"))
    extfile = os.path.join(directory, f"{name}.ext")
    with open(extfile, "w") as f:
        f.write(ext)
    _openssl("req", *_EC, "-subj", f"/CN={cn}", "-keyout", key, "-out", csr)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-out", crt, "-extfile", extfile,
    )  # fmt: skip
    return crt, key


def make_pki(directory: str) -> Pki:
    ca, ca_key = os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key")
    _openssl(
        "req", "-x509", *_EC, "-days", "2", "-subj", "/CN=standin-ca",
        "-keyout", ca_key, "-out", ca,
    )  # fmt: skip
    common = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
    server = _signed(
        directory, ca, ca_key, "server", "127.0.0.1",
        common + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )  # fmt: skip
    client = _signed(
        directory, ca, ca_key, "client", "seaway",
        common + "extendedKeyUsage=clientAuth\n",
    )  # fmt: skip
    return Pki(directory, ca, server[0], server[1], client[0], client[1])
