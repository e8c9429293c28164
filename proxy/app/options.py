"""Command-line flags shared by the subcommands, named after kube-proxy's where one exists."""

from __future__ import annotations

import argparse
import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

PROXY_MODES = ("userspace", "iptables", "nftables")

DEFAULT_GATEWAY_CONTROLLER = "seaway.dev/gateway-controller"

if TYPE_CHECKING:  # imported where used: `seaway --help` must not load every dataplane
    from collections.abc import Sequence

    from discovery.gateway_attach import GatewayConfig
    from discovery.ingress_status import IngressStatusConfig
    from discovery.kube_source import KubeSourceConfig
    from discovery.nginx_configmap import IngressNginxMode
    from discovery.secret_refs import SecretRefs
    from discovery.topology import NodeTopology
    from ingress.dataplane import IngressConfig
    from proxy.healthcheck_server import HealthCheckConfig
    from proxy.iptables.dataplane import IptablesConfig
    from proxy.nftables.builder import BuildConfig as NftBuildConfig
    from proxy.nftables.dataplane import NftablesConfig
    from proxy.userspace.dataplane import UserspaceConfig


def parse_duration(text: str) -> float:
    """Parse '250ms', '1s', '2m', or a bare number of seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip()
    for suffix in ("ms", "s", "m", "h"):
        if t.endswith(suffix) and t[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(t[: -len(suffix)]) * units[suffix]
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use e.g. 250ms, 1s, 2m"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must not be negative")
    return value


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


MAX_PIPELINING = 64


def pipeline_depth(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_PIPELINING:
        raise argparse.ArgumentTypeError(
            f"invalid --upstream-pipelining {text!r}: a whole number from 1 (off) to "
            f"{MAX_PIPELINING}"
        )
    return int(text)


def _max_connections(text: str) -> int | None:
    if text.strip() == "auto":
        return None
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"invalid --max-connections {text!r}: a whole number (0 = no limit) or auto"
        )
    return int(text)


def _cap(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"invalid limit {text!r}: a whole number (0 = no cap)")
    return int(text)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def namespaced_name(text: str) -> tuple[str, str]:
    """NAMESPACE/NAME of a ConfigMap (--configmap, as ingress-nginx's flag)."""
    namespace, sep, name = text.partition("/")
    if (
        not sep
        or not _DNS_LABEL.fullmatch(namespace)
        or len(namespace) > 63
        or not _DNS_SUBDOMAIN.fullmatch(name)
        or len(name) > 253
    ):
        raise argparse.ArgumentTypeError(
            f"invalid --configmap {text!r}: expected NAMESPACE/NAME, "
            "e.g. ingress-nginx/ingress-nginx-controller"
        )
    return namespace, name


def go_bool(text: str) -> bool:
    """A boolean flag's value as Go's flag package takes it (ingress-nginx's flags are
    written --update-status-on-shutdown=false)."""
    value = text.strip().lower()
    if value in ("true", "t", "1"):
        return True
    if value in ("false", "f", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}: true or false")


def publish_service(text: str) -> tuple[str, str]:
    """--publish-service NAMESPACE/NAME (as ingress-nginx's flag)."""
    try:
        return namespaced_name(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"invalid --publish-service {text!r}: expected NAMESPACE/NAME of a Service, "
            "e.g. ingress-nginx/ingress-nginx-controller"
        ) from None


def status_addresses(text: str) -> tuple[str, ...]:
    """--publish-status-address: IPs or hostnames, comma-separated (spaces allowed)."""
    import ipaddress

    out: list[str] = []
    for part in re.split(r",\s*", text.strip()):
        try:
            out.append(str(ipaddress.ip_address(part)))
            continue
        except ValueError:
            pass
        name = part.lower().rstrip(".")
        if not _DNS_SUBDOMAIN.fullmatch(name) or len(name) > 253:
            raise argparse.ArgumentTypeError(
                f"invalid --publish-status-address {text!r}: {part!r} is neither an IP "
                "address nor a DNS name"
            )
        out.append(name)
    return tuple(out)


def annotation_prefix(text: str) -> str:
    if not _DNS_SUBDOMAIN.fullmatch(text) or len(text) > 253:
        raise argparse.ArgumentTypeError(
            f"invalid --annotations-prefix {text!r}: expected a DNS name such as "
            "nginx.ingress.kubernetes.io (without the /)"
        )
    return text


def _ip(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: expected an IP") from None


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass(slots=True)
class Options:
    """Resolved settings for sources and dataplanes (built from parsed flags)."""

    config: str | None = None
    kubeconfig: str | None = None
    master: str | None = None
    proxy_mode: str = "userspace"
    hostname: str = field(default_factory=socket.gethostname)
    node_zone: str = ""  # "" = this Node's topology.kubernetes.io/zone label (API mode)
    cluster_cidr: list[str] = field(default_factory=list)
    nodeport_addresses: list[str] = field(default_factory=list)  # empty: all local
    bind_cluster_ips: bool = False
    iptables_flavor: str = "auto"
    metrics_bind_address: tuple[str, int] = ("127.0.0.1", 10249)
    healthz_bind_address: tuple[str, int] = ("0.0.0.0", 10256)
    http_bind_address: tuple[str, int] = ("0.0.0.0", 8080)
    https_bind_address: tuple[str, int] = ("0.0.0.0", 8443)
    workers: int = 1
    ingress_controller: str = "seaway.dev/ingress"
    watch_ingress_without_class: bool = False
    gateway_controller_name: str = DEFAULT_GATEWAY_CONTROLLER
    gateway_bind_address: str = "0.0.0.0"
    min_sync_period: float = 0.1
    sync_period: float = 30.0
    max_body_size: int = 0  # 0 = unlimited
    upstream_pipelining: int = 1  # 1 = off
    shutdown_grace_period: float = 30.0
    request_metrics: bool = True
    metrics_compat: str = ""  # "" or "ingress-nginx"
    access_log: str = ""  # "" = off, "-" = stdout
    access_log_format: str = "combined"
    max_connections: int | None = None  # per worker; None = auto (from the files limit)
    max_endpoint_connections: int = 1024  # 0 = no cap
    max_endpoint_pending: int = 1024
    annotations_prefix: str = "nginx.ingress.kubernetes.io"
    configmap: tuple[str, str] | None = None  # ingress-nginx's ConfigMap (namespace, name)
    update_status: bool = True  # write status.loadBalancer.ingress (API mode)
    publish_status_address: tuple[str, ...] = ()
    publish_service: tuple[str, str] | None = None
    update_status_on_shutdown: bool = True
    report_node_internal_ip_address: bool = False
    proxy_protocol: bool = False  # every L7 listening socket expects a PROXY header
    enable_ssl_passthrough: bool = False

    def resolved_max_connections(self) -> int:
        """--max-connections, with auto worked out from the open-files limit now."""
        if self.max_connections is not None:
            return self.max_connections
        import resource

        from proxy.app.limits import auto_max_connections

        return auto_max_connections(resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    # Each dataplane and source takes its own small config, never this whole bag.
    def userspace_config(self) -> UserspaceConfig:
        from proxy.balancer import EndpointLimits
        from proxy.userspace.dataplane import UserspaceConfig

        return UserspaceConfig(
            self.bind_cluster_ips,
            tuple(self.nodeport_addresses),
            self.shutdown_grace_period,
            self.resolved_max_connections(),
            EndpointLimits(self.max_endpoint_connections, self.max_endpoint_pending),
            self.gateway_config(),
        )

    def iptables_config(self) -> IptablesConfig:
        from proxy.iptables.builder import BuildConfig
        from proxy.iptables.dataplane import IptablesConfig

        build = BuildConfig(
            hostname=self.hostname,
            cluster_cidrs=tuple(self.cluster_cidr),
            nodeport_addresses=tuple(self.nodeport_addresses),
        )
        return IptablesConfig(build, self.iptables_flavor)

    def nftables_config(self) -> NftablesConfig:
        from proxy.nftables.dataplane import NftablesConfig

        return NftablesConfig(self.nftables_build())

    def nftables_build(self) -> NftBuildConfig:
        """What the nftables rule builder needs; without the daemon's dataplane module
        (and asyncio with it), which `seaway apply` does not use."""
        from proxy.nftables.builder import BuildConfig

        return BuildConfig(
            hostname=self.hostname,
            cluster_cidrs=tuple(self.cluster_cidr),
            nodeport_addresses=tuple(self.nodeport_addresses),
        )

    def ingress_config(self) -> IngressConfig:
        from ingress.dataplane import IngressConfig
        from ingress.stats import ObservabilitySettings

        return IngressConfig(
            ingress_controller=self.ingress_controller,
            watch_ingress_without_class=self.watch_ingress_without_class,
            http_bind_address=self.http_bind_address,
            https_bind_address=self.https_bind_address,
            max_body_size=self.max_body_size,
            upstream_pipelining=self.upstream_pipelining,
            workers=self.workers,
            max_connections=self.resolved_max_connections(),
            max_endpoint_requests=self.max_endpoint_connections,
            max_endpoint_connecting=self.max_endpoint_pending,
            observability=ObservabilitySettings(
                self.request_metrics,
                self.metrics_compat,
                self.access_log,
                self.access_log_format,
            ),
            shutdown_grace_period=self.shutdown_grace_period,
            gateway=self.gateway_config(),
            proxy_protocol=self.proxy_protocol,
        )

    def kube_source_config(self) -> KubeSourceConfig:
        from discovery.kube_source import KubeSourceConfig

        return KubeSourceConfig(
            self.kubeconfig,
            self.master,
            self.ingress_controller,
            self.watch_ingress_without_class,
            self.annotations_prefix,
            self.configmap,
            node_name=self.hostname if self._watch_node() else "",
            gateway=self.gateway_config(),
            ingress_status=self.ingress_status_config(),
        )

    def _watch_node(self) -> bool:
        """This node's Node is watched for its zone label (unless --node-zone gives it)
        and for its addresses (the Ingress status, unless something else is published)."""
        return not self.node_zone or self._status_shows_node()

    def _status_shows_node(self) -> bool:
        return self.update_status and not (self.publish_status_address or self.publish_service)

    def ingress_status_config(self) -> IngressStatusConfig | None:
        """What the Ingress status says (API mode); None with --update-status=false."""
        from discovery.ingress_status import IngressStatusConfig

        if not self.update_status:
            return None
        from proxy.app.node_addresses import AddressesLater

        shared = self._status_shows_node()
        hostname = self.hostname
        return IngressStatusConfig(
            self.ingress_controller,
            self.watch_ingress_without_class,
            self.publish_status_address,
            self.publish_service,
            self.hostname,
            self.report_node_internal_ip_address,
            AddressesLater(lambda: node_addresses(hostname)) if shared else (),
            self.update_status_on_shutdown,
        )

    def secret_refs(self) -> SecretRefs:
        """Which Secrets the file source keeps: those the owned Ingresses name."""
        from discovery.secret_refs import SecretRefs

        return SecretRefs(
            self.ingress_controller, self.watch_ingress_without_class, self.annotations_prefix
        )

    def ingress_nginx_mode(self) -> IngressNginxMode:
        from discovery.nginx_configmap import IngressNginxMode

        return IngressNginxMode.from_flags(
            self.annotations_prefix,
            self.configmap,
            self.ingress_controller,
            self.enable_ssl_passthrough,
        )

    def healthcheck_config(self) -> HealthCheckConfig:
        from proxy.healthcheck_server import HealthCheckConfig

        return HealthCheckConfig(self.hostname, tuple(self.nodeport_addresses))

    def node_topology(self) -> NodeTopology:
        """For the snapshot builder: this node's name and its zone when given."""
        from discovery.topology import NodeTopology

        return NodeTopology(self.hostname, self.node_zone)

    def gateway_config(self, on_this_node: bool = True) -> GatewayConfig:
        """Which GatewayClasses are seaway's, and the addresses Gateways get: the
        --gateway-bind-address, or when it is a wildcard, this node's addresses (its name
        resolved, else its interfaces'). `on_this_node=False` (seaway check): spec
        addresses are not checked against this machine's."""
        from discovery.gateway_attach import GatewayConfig
        from proxy.app.node_addresses import AddressesLater, LocalAddressesLater

        # Both looked up in threads, read when a Gateway needs them (resolving the node's
        # name may wait for a resolver's timeout): never in the way of a daemon start.
        bind = self.gateway_bind_address
        local = LocalAddressesLater(interface_addresses) if on_this_node else None
        hostname = self.hostname
        defaults: Sequence[str] = (bind,)
        if bind in ("0.0.0.0", "::"):
            defaults = AddressesLater(lambda: node_addresses(hostname))
        reserved = tuple(
            (*address, what)
            for address, what in (
                (self.http_bind_address, "Ingress HTTP listener (--http-bind-address)"),
                (self.https_bind_address, "Ingress HTTPS listener (--https-bind-address)"),
            )
            if address is not None
        )
        return GatewayConfig(
            self.gateway_controller_name,
            bind,
            defaults,
            local,
            reserved=reserved,
            l4_listeners=self.proxy_mode == "userspace",
        )


def node_addresses(hostname: str) -> tuple[str, ...]:
    """This node's addresses for Gateway status: its hostname's (as kube-proxy finds a
    node IP), else its interfaces', loopback last; 127.0.0.1 when nothing else is known."""
    found: list[str] = []
    try:
        for info in socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP):
            ip = str(info[4][0])
            if ip not in found and _routable(ip):
                found.append(ip)
    except OSError:
        pass
    if not found:
        found = sorted(a for a in interface_addresses() or () if _routable(a))
    return tuple(found[:4]) or ("127.0.0.1",)


def interface_addresses() -> frozenset[str] | None:
    """The addresses on this host's interfaces, read over netlink in a thread of its own
    (callable from inside a running event loop); None when they cannot be read."""
    from concurrent.futures import ThreadPoolExecutor

    from proxy.userspace.addresses import host_addresses

    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(host_addresses).result(timeout=10)
        except Exception:  # no netlink (not Linux, sandboxed): unknown
            return None


def _routable(ip: str) -> bool:
    """Not loopback, not link-local: an address another machine could reach."""
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_link_local or addr.is_unspecified)


def add_gateway_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("Gateway API")
    g.add_argument(
        "--gateway-controller-name",
        default=DEFAULT_GATEWAY_CONTROLLER,
        metavar="NAME",
        help="GatewayClass spec.controllerName seaway answers to (default "
        f"{DEFAULT_GATEWAY_CONTROLLER})",
    )
    g.add_argument(
        "--gateway-bind-address",
        type=_ip,
        default="0.0.0.0",
        metavar="IP",
        help="address the listeners of Gateways without spec.addresses are served on "
        "(default 0.0.0.0: every address; their status then shows this node's addresses)",
    )


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("where objects come from")
    g.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="manifest file or directory (YAML, multi-document or kind: List, or JSON); "
        "watched for changes",
    )
    g.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file of a cluster to watch")
    g.add_argument(
        "--master", metavar="URL", help="Kubernetes API server URL (overrides kubeconfig)"
    )


def add_ingress_nginx_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "ingress-nginx compatibility",
        "seaway reads and validates the nginx.ingress.kubernetes.io/* annotations of "
        "Ingresses written for ingress-nginx, whatever their class (`seaway check` lists "
        "what each one amounts to; the README's migration section says which act on "
        "traffic). To take over ingress-nginx's IngressClass, give --ingress-controller "
        "k8s.io/ingress-nginx.",
    )
    g.add_argument(
        "--annotations-prefix",
        type=annotation_prefix,
        default="nginx.ingress.kubernetes.io",
        metavar="PREFIX",
        help="prefix of the ingress-nginx annotations to read, as ingress-nginx's flag of "
        "that name (default nginx.ingress.kubernetes.io)",
    )
    g.add_argument(
        "--configmap",
        type=namespaced_name,
        metavar="NAMESPACE/NAME",
        help="ingress-nginx's controller ConfigMap to read global settings from (body size, "
        "timeouts, ssl-redirect, HSTS, forwarded headers, PROXY protocol, ...): from the "
        "files, or watched by name in the API. With it, or with --ingress-controller "
        "k8s.io/ingress-nginx, every setting the ConfigMap leaves out takes ingress-nginx's "
        "default (proxy-body-size 1m, proxy-read-timeout 60s, ssl-redirect true, HSTS on); "
        "without either, seaway's own defaults apply",
    )
    g.add_argument(
        "--enable-ssl-passthrough",
        action="store_true",
        help="honour the ssl-passthrough annotation, as ingress-nginx's flag of that name: "
        "TLS connections to the HTTPS listener whose SNI names such a host are relayed "
        "unterminated to the host's \"/\" backend (the client sees the pod's certificate); "
        "the others are terminated as usual. Costs a look at each ClientHello only while "
        "some host uses it",
    )


def add_ingress_status_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "Ingress status (API mode)",
        "seaway writes status.loadBalancer.ingress of the Ingresses it owns, so `kubectl get "
        "ingress` shows an ADDRESS, as ingress-nginx does (the flags are ingress-nginx's). "
        "Without --publish-status-address or --publish-service, each seaway adds its node's "
        "address (its Node's ExternalIP, else InternalIP) and leaves the other nodes'",
    )
    g.add_argument(
        "--update-status",
        type=go_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="true|false",
        help="write the Ingress status (default true)",
    )
    which = g.add_mutually_exclusive_group()
    which.add_argument(
        "--publish-status-address",
        type=status_addresses,
        default=(),
        metavar="ADDR[,ADDR]",
        help="the addresses (IPs or hostnames) every owned Ingress shows, e.g. the load "
        "balancer in front of seaway",
    )
    which.add_argument(
        "--publish-service",
        type=publish_service,
        metavar="NAMESPACE/NAME",
        help="show the addresses of this Service (the one in front of seaway): its "
        "load-balancer ingress and external IPs, else its cluster IP; ExternalName: its name",
    )
    g.add_argument(
        "--update-status-on-shutdown",
        type=go_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="true|false",
        help="on shutdown, take seaway's addresses out of the Ingresses it owns (default "
        "true, as ingress-nginx; a replica still running that publishes the same addresses "
        "puts them back at once)",
    )
    g.add_argument(
        "--report-node-internal-ip-address",
        action="store_true",
        help="publish the node's InternalIP even when it has an ExternalIP",
    )


def add_mode_flags(parser: argparse.ArgumentParser, default_mode: str = "userspace") -> None:
    g = parser.add_argument_group("dataplane")
    g.add_argument(
        "--proxy-mode",
        choices=PROXY_MODES,
        default=default_mode,
        help=f"how Service traffic is forwarded (default {default_mode}): userspace = seaway's "
        "own L4 proxy; iptables = kernel DNAT rules (iptables-restore); nftables = kernel "
        "DNAT through nftables verdict maps (tables ip/ip6 seaway)",
    )
    g.add_argument(
        "--hostname-override",
        metavar="NAME",
        help="node name used for Local traffic policies (default: this host's name)",
    )
    g.add_argument(
        "--node-zone",
        default="",
        metavar="ZONE",
        help="this node's zone, for topology-aware routing (EndpointSlice hints, "
        "trafficDistribution); default: the topology.kubernetes.io/zone label of this "
        "node's Node object when watching the API, else none",
    )
    g.add_argument(
        "--cluster-cidr",
        type=_csv,
        default=[],
        metavar="CIDR[,CIDR]",
        help="pod network range(s); traffic from outside them is masqueraded",
    )
    g.add_argument(
        "--nodeport-addresses",
        type=_csv,
        default=[],
        metavar="CIDR[,CIDR]",
        help="addresses or ranges NodePorts are served on (default: all local addresses)",
    )
    g.add_argument(
        "--bind-cluster-ips",
        action="store_true",
        help="userspace mode: add cluster IPs to a dummy interface (seaway0) so they can be "
        "listened on (needs root); removed on exit",
    )
    g.add_argument(
        "--iptables-flavor",
        choices=("auto", "legacy", "nft"),
        default="auto",
        help="iptables backend to drive in iptables mode (default: detect, as kube-proxy does)",
    )


ADDRESS_FLAGS: dict[str, tuple[tuple[str, int], str]] = {
    "--metrics-bind-address": (
        ("127.0.0.1", 10249),
        "Prometheus /metrics, the status page (/status, /status.json) and /healthz, /readyz; "
        "port 0 disables",
    ),
    "--healthz-bind-address": (("0.0.0.0", 10256), "/healthz and /readyz; port 0 disables"),
    "--http-bind-address": (
        ("0.0.0.0", 8080),
        "Ingress HTTP listener, opened when seaway owns Ingresses",
    ),
    "--https-bind-address": (
        ("0.0.0.0", 8443),
        "Ingress HTTPS listener, opened when an owned Ingress has tls (or a host with "
        "ssl-passthrough)",
    ),
}


def add_address_flag(
    group: argparse._ArgumentGroup | argparse.ArgumentParser,
    flag: str,
    default: tuple[str, int] | None = None,
) -> None:
    """One of the HOST:PORT listener flags, with its standard help and a default."""
    standard, what = ADDRESS_FLAGS[flag]
    host, port = default or standard
    group.add_argument(
        flag,
        type=host_port,
        default=(host, port),
        metavar="HOST:PORT",
        help=f"{what} (default {host}:{port})",
    )


def add_daemon_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("daemon")
    for flag in ADDRESS_FLAGS:
        add_address_flag(g, flag)
    g.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="HTTP worker processes sharing the listeners via SO_REUSEPORT (default: CPU count)",
    )
    g.add_argument(
        "--ingress-controller",
        default="seaway.dev/ingress",
        metavar="NAME",
        help="IngressClass spec.controller value seaway answers to (default "
        "seaway.dev/ingress; k8s.io/ingress-nginx to take over ingress-nginx's classes, "
        "with its defaults: see --configmap)",
    )
    g.add_argument(
        "--watch-ingress-without-class",
        action="store_true",
        help="also serve Ingresses that name no class",
    )
    g.add_argument(
        "--max-body-size",
        type=int,
        default=0,
        metavar="BYTES",
        help="largest request body accepted (413 beyond it; default 0 = unlimited)",
    )
    g.add_argument(
        "--upstream-pipelining",
        type=pipeline_depth,
        default=1,
        metavar="N",
        help="send up to N GET requests (no body) that arrive together for one backend "
        "down one keep-alive connection before its first response (HTTP/1.1 pipelining; "
        "fewer packets, less CPU per request, but the backend answers them one after "
        "another); only for backends known to handle pipelining. Default 1: off",
    )
    g.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="expect a PROXY protocol header (v1 or v2, as haproxy's send-proxy and "
        "cloud TCP load balancers write it) at the start of every connection to the HTTP, "
        "HTTPS and Gateway listeners, before any TLS; the client address it carries is "
        "the one logs, allow/deny ranges, rate limits and X-Forwarded-For see. A "
        "connection without a valid header, or whose header does not arrive within the "
        "header timeout (10s), is closed unanswered, as nginx does (ingress-nginx's "
        "ConfigMap key use-proxy-protocol does this for the Ingress listeners)",
    )
    add_limit_flags(parser)
    g.add_argument(
        "--min-sync-period",
        type=parse_duration,
        default=0.1,
        metavar="DURATION",
        help="least time between two syncs; bursts of changes are coalesced (default 100ms)",
    )
    g.add_argument(
        "--sync-period",
        type=parse_duration,
        default=30.0,
        metavar="DURATION",
        help="most time between two syncs, changes or not (default 30s)",
    )


def add_limit_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "limits",
        "at start the soft open-files limit is raised to the hard limit (both logged); "
        "when descriptors run out anyway, accepting pauses (10 ms doubling up to 1 s) "
        "instead of spinning",
    )
    g.add_argument(
        "--max-connections",
        type=_max_connections,
        default=None,
        metavar="N|auto",
        help="client connections per worker process; beyond it a new connection gets 503 "
        "and is closed (L7) or is reset at once (L4). auto (default): (open-files limit - "
        "100) / 2, so a worker never runs out of descriptors; 0: no limit",
    )
    g.add_argument(
        "--max-endpoint-connections",
        type=_cap,
        default=1024,
        metavar="N",
        help="per endpoint and worker: connections at L4, requests in flight at L7; an "
        "endpoint at its cap is passed over, and when all are, L7 answers 503 and L4 "
        "refuses (circuit breaking; default 1024 as Envoy; 0 = no cap)",
    )
    g.add_argument(
        "--max-endpoint-pending",
        type=_cap,
        default=1024,
        metavar="N",
        help="per endpoint and worker: connects in progress (default 1024; 0 = no cap)",
    )


def add_operations_flags(parser: argparse.ArgumentParser) -> None:
    """Metrics, access log and shutdown: every command that serves traffic has them."""
    g = parser.add_argument_group("operations")
    g.add_argument(
        "--request-metrics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count requests and connections for /metrics and the status page (default on; "
        "--no-request-metrics turns counting off)",
    )
    g.add_argument(
        "--metrics-compat",
        choices=("ingress-nginx",),
        default="",
        help="also serve ingress-nginx's request metrics (nginx_ingress_controller_requests, "
        "..._request_duration_seconds, ..._request_size, ..._response_size) with its labels",
    )
    g.add_argument(
        "--access-log",
        default="",
        metavar="PATH|-",
        help="write one line per HTTP request to PATH (appended; reopened on SIGUSR1) or to "
        "stdout with '-' (default: off)",
    )
    g.add_argument(
        "--access-log-format",
        choices=("combined", "json"),
        default="combined",
        help="nginx's combined format plus request length and time, upstream address, "
        "status and time, route and service; or the same fields as one JSON object per line "
        "(default combined)",
    )
    g.add_argument(
        "--shutdown-grace-period",
        type=parse_duration,
        default=30.0,
        metavar="DURATION",
        help="on SIGTERM, how long requests and connections in flight get to finish before "
        "they are closed (default 30s, a pod's default grace period)",
    )


def options_from_args(args: argparse.Namespace) -> Options:
    """Build Options from whatever flags the subcommand defined (others keep defaults)."""
    import os

    o = Options()
    for name in (
        "config",
        "kubeconfig",
        "master",
        "proxy_mode",
        "node_zone",
        "cluster_cidr",
        "nodeport_addresses",
        "bind_cluster_ips",
        "iptables_flavor",
        "metrics_bind_address",
        "healthz_bind_address",
        "http_bind_address",
        "https_bind_address",
        "workers",
        "ingress_controller",
        "watch_ingress_without_class",
        "gateway_controller_name",
        "gateway_bind_address",
        "min_sync_period",
        "sync_period",
        "max_body_size",
        "upstream_pipelining",
        "max_connections",
        "max_endpoint_connections",
        "max_endpoint_pending",
        "shutdown_grace_period",
        "request_metrics",
        "metrics_compat",
        "access_log",
        "access_log_format",
        "annotations_prefix",
        "configmap",
        "update_status",
        "publish_status_address",
        "publish_service",
        "update_status_on_shutdown",
        "report_node_internal_ip_address",
        "proxy_protocol",
        "enable_ssl_passthrough",
    ):
        if hasattr(args, name):
            setattr(o, name, getattr(args, name))
    if getattr(args, "hostname_override", None):
        o.hostname = args.hostname_override
    o.hostname = o.hostname.strip().lower()  # as kube-proxy: node names are lower case
    if not o.workers:
        o.workers = os.cpu_count() or 1
    return o
