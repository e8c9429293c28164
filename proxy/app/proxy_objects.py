"""`seaway proxy` as Kubernetes objects: what a user would otherwise write by hand. Pure.

`seaway proxy --listen HOST:PORT --to A:P,B:P` becomes, in namespace "seaway":
  - Service "proxy" with one port "proxy" (TCP). For --l4 it is a NodePort service whose
    node port is the listen port (the userspace L4 proxy then listens on HOST:PORT); for
    HTTP the Ingress below is what listens. Its cluster IPs are placeholders that are
    never local, so nothing listens on them.
  - one EndpointSlice per backend (backends may use different ports), ready unless the
    health check says otherwise;
  - for HTTP: IngressClass "seaway" and Ingress "proxy" whose defaultBackend is the
    Service, plus spec.tls and a kubernetes.io/tls Secret with --tls-cert/--tls-key; the
    tls hosts are the certificate's DNS names, so it is chosen by SNI for them and is
    the default certificate for every other name.
They go through the normal store -> Snapshot -> dataplane path, so metrics, the status
page, the access log and draining work exactly as for manifests.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from discovery.model import (
    Endpoint,
    EndpointConditions,
    EndpointPort,
    EndpointSlice,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressTLS,
    KubeObject,
    ObjectMeta,
    Service,
    ServicePort,
    TLSSecret,
)

NAMESPACE = "seaway"
NAME = "proxy"
PORT_NAME = "proxy"
SERVICE_PORT = 80  # the Service's own port number: only the Ingress refers to it
# Placeholder cluster IPs (one per family, so IPv4 and IPv6 backends both count); they are
# never local, so the userspace proxy never listens on them.
CLUSTER_IPS = ("10.255.255.254", "fd00:5ea:3a7::fffe")
CONTROLLER = "seaway.dev/ingress"

Backend = tuple[str, int]  # (ip, port)


@dataclass(frozen=True, slots=True)
class ProxySpec:
    listen: tuple[str, int]
    backends: tuple[Backend, ...]
    l4: bool = False
    tls: tuple[bytes, bytes] | None = None  # (certificate PEM, key PEM)


def _meta(name: str, namespace: str = NAMESPACE) -> ObjectMeta:
    return ObjectMeta(name, namespace, creation_timestamp="1970-01-01T00:00:00Z")


def service(spec: ProxySpec) -> Service:
    port = spec.listen[1]
    if spec.l4:
        return Service(
            _meta(NAME),
            type="NodePort",
            cluster_ips=CLUSTER_IPS,
            ports=(ServicePort(PORT_NAME, "TCP", port, port, node_port=port),),
        )
    return Service(
        _meta(NAME),
        cluster_ips=CLUSTER_IPS,
        ports=(ServicePort(PORT_NAME, "TCP", SERVICE_PORT, SERVICE_PORT),),
    )


def endpoint_slices(spec: ProxySpec, down: frozenset[Backend] = frozenset()) -> list[EndpointSlice]:
    """One slice per backend; those in `down` (failing their health check) not ready."""
    slices = []
    for i, (ip, port) in enumerate(spec.backends):
        v6 = ipaddress.ip_address(ip).version == 6
        ready = (ip, port) not in down
        slices.append(
            EndpointSlice(
                _meta(f"{NAME}-{i + 1}"),
                service_name=NAME,
                address_type="IPv6" if v6 else "IPv4",
                endpoints=(Endpoint((ip,), EndpointConditions(ready, ready, False)),),
                ports=(EndpointPort(PORT_NAME, port),),
            )
        )
    return slices


def certificate_names(cert_pem: bytes) -> tuple[str, ...]:
    """The DNS names of a certificate (subjectAltName, else the subject's CN)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if not names:
        names = tuple(
            str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
    return tuple(n.lower() for n in names if n and "/" not in n and ":" not in n) or (
        "seaway-proxy.invalid",  # no usable name: it still becomes the default certificate
    )


def ingress_objects(spec: ProxySpec) -> list[KubeObject]:
    """IngressClass, Ingress (and the TLS Secret) of an HTTP proxy; none for --l4."""
    if spec.l4:
        return []
    objects: list[KubeObject] = [IngressClass(_meta("seaway", ""), CONTROLLER)]
    tls: tuple[IngressTLS, ...] = ()
    if spec.tls is not None:
        cert, key = spec.tls
        objects.append(TLSSecret(_meta(f"{NAME}-tls"), cert, key))
        tls = (IngressTLS(certificate_names(cert), f"{NAME}-tls"),)
    objects.append(
        Ingress(
            _meta(NAME),
            ingress_class_name="seaway",
            default_backend=IngressBackend(NAME, port_number=SERVICE_PORT),
            tls=tls,
        )
    )
    return objects


def proxy_objects(spec: ProxySpec, down: frozenset[Backend] = frozenset()) -> list[KubeObject]:
    return [service(spec), *endpoint_slices(spec, down), *ingress_objects(spec)]
