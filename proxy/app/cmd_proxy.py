"""`seaway proxy`: a reverse proxy in one line, no manifest.

    seaway proxy --listen 0.0.0.0:8080 --to 10.0.0.5:9000,10.0.0.6:9000
    seaway proxy --listen :8443 --to app:9000 --tls-cert cert.pem --tls-key key.pem
    seaway proxy --listen :5432 --to db1:5432,db2:5432 --l4

The listen address and backends become in-memory Kubernetes objects
(proxy/app/proxy_objects.py) fed to the daemon like manifests would be, so it has all the
daemon has: request metrics and the status page on --metrics-bind-address, the access
log, graceful drain on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import ssl
import sys
from typing import TYPE_CHECKING, Any

from proxy.app.options import (
    add_address_flag,
    add_operations_flags,
    host_port,
    options_from_args,
    parse_duration,
    pipeline_depth,
)

if TYPE_CHECKING:
    from proxy.app.options import Options
    from proxy.app.proxy_objects import ProxySpec

log = logging.getLogger("seaway")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "proxy",
        help="a reverse proxy in one line: --listen HOST:PORT --to A:P,B:P (HTTP or TCP)",
        description="Forward --listen to the --to backends, least request: HTTP/1.1 (keep-alive "
        "pools, retries of failed connects, X-Forwarded-*), HTTPS with --tls-cert/--tls-key, "
        "or plain TCP with --l4. Metrics, the status page (/status) and /readyz are on "
        "--metrics-bind-address. SIGTERM drains (twice: stops at once); SIGUSR1 reopens the "
        "access log.",
    )
    p.add_argument("--listen", required=True, type=host_port, metavar="HOST:PORT",
                   help="address to serve on (':8080' = all addresses)")
    p.add_argument("--to", required=True, action="append", metavar="HOST:PORT[,HOST:PORT]",
                   help="backends, comma-separated (or the flag repeated); names are resolved "
                   "once at start")
    p.add_argument("--l4", action="store_true",
                   help="forward TCP connections as they are (no HTTP parsing)")
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate chain")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    p.add_argument("--health-path", default="", metavar="PATH",
                   help="check every backend with GET PATH; one failing 3 checks in a row "
                   "gets no new traffic until it passes 2 (default: no checks)")
    p.add_argument("--health-interval", type=parse_duration, default=5.0, metavar="DURATION",
                   help="time between two checks of a backend (default 5s)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="HTTP worker processes (default: CPU count; --l4 uses one)")
    p.add_argument("--upstream-pipelining", type=pipeline_depth, default=1, metavar="N",
                   help="HTTP: pipeline up to N GETs per backend connection (see `seaway run "
                   "--help`; default 1: off)")
    p.add_argument("--proxy-protocol", action="store_true",
                   help="HTTP(S): expect a PROXY protocol header (v1 or v2) on every "
                   "connection and take the client address from it; a connection without "
                   "one is closed (see `seaway run --help`)")
    add_address_flag(p, "--metrics-bind-address")
    add_address_flag(p, "--healthz-bind-address", ("0.0.0.0", 0))
    add_operations_flags(p)
    p.set_defaults(func=run)


class UsageError(Exception):
    pass


def resolve_backends(specs: list[str]) -> tuple[tuple[str, int], ...]:
    """'host:port' items (comma-separated, in several flags) -> (ip, port), in order."""
    backends: list[tuple[str, int]] = []
    for spec in specs:
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            try:
                host, port = host_port(item)
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"--to {item!r}: {exc}") from None
            if not port:
                raise UsageError(f"--to {item!r}: a backend needs a port other than 0")
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                msg = f"--to {item!r}: cannot resolve {host!r}: {exc.strerror}"
                raise UsageError(msg) from None
            ip = str(sorted(infos, key=lambda i: i[0] != socket.AF_INET)[0][4][0])
            if (ip, port) not in backends:
                backends.append((ip, port))
    if not backends:
        raise UsageError("--to: no backend given")
    return tuple(backends)


def read_tls(cert: str | None, key: str | None) -> tuple[bytes, bytes] | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise UsageError("--tls-cert and --tls-key go together")
    try:
        with open(cert, "rb") as f:
            cert_pem = f.read()
        with open(key, "rb") as f:
            key_pem = f.read()
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except OSError as exc:
        raise UsageError(f"{exc.filename}: {exc.strerror}") from None
    except ssl.SSLError as exc:
        raise UsageError(f"--tls-cert/--tls-key: not a usable certificate and key: {exc}") from None
    return cert_pem, key_pem


def run(args: argparse.Namespace) -> int:
    from proxy.app.proxy_objects import ProxySpec

    try:
        backends = resolve_backends(args.to)
        tls = read_tls(args.tls_cert, args.tls_key)
        if args.l4 and tls is not None:
            raise UsageError("--l4 forwards TCP as it is: TLS is for HTTP (leave out --l4)")
        if args.l4 and args.proxy_protocol:
            raise UsageError("--proxy-protocol is for HTTP(S): the --l4 relay does not read it")
        if args.health_path and not args.health_path.startswith("/"):
            raise UsageError(f"--health-path {args.health_path!r}: must start with '/'")
        if not args.listen[1]:
            raise UsageError("--listen: give a port")
    except UsageError as exc:
        print(f"seaway proxy: {exc}", file=sys.stderr)
        return 2
    spec = ProxySpec(args.listen, backends, args.l4, tls)
    options = options_from_args(args)
    options.proxy_mode = "userspace"
    options.min_sync_period = 0.0
    if args.l4:
        options.workers = 1

    import uvloop

    from discovery.kube_config import KubeConfigError
    from proxy.app import signals
    from proxy.app.daemon import Daemon
    from proxy.app.health_check import ProxySource

    source = ProxySource(spec, args.health_path, args.health_interval)

    async def main() -> int:
        planes = dataplanes(spec, options)
        daemon = Daemon(options, source, planes)
        stop = asyncio.Event()
        signals.install(asyncio.get_running_loop(), daemon, stop)
        kind = "TCP" if spec.l4 else "HTTPS" if tls else "HTTP"
        log.info("seaway proxy: %s %s:%d -> %s; status page http://%s:%d/status", kind,
                 *spec.listen, ", ".join(f"{ip}:{port}" for ip, port in backends),
                 *options.metrics_bind_address)
        failed: list[str] = []
        checked = None
        if spec.l4:  # (the L7 listener's bind error ends the run by itself)
            checked = asyncio.create_task(_listener_opened(daemon, planes[0], stop, failed))
        await daemon.run(stop)
        if checked is not None:
            checked.cancel()
        for error in failed:
            print(f"seaway proxy: {error}", file=sys.stderr)
        return 1 if failed else 0

    try:
        return uvloop.run(main())
    except (OSError, KubeConfigError) as e:
        print(f"seaway proxy: {e}", file=sys.stderr)
        return 1


async def _listener_opened(
    daemon: Any, plane: Any, stop: asyncio.Event, failed: list[str]
) -> None:
    """`seaway proxy --l4` has one listener, the one it was asked for: when the first sync
    could not open it (the port is taken), stop with an error, as nginx does, rather than
    retry it at each sync as the daemon does for Service ports."""
    await daemon.synced.wait()
    if not plane.listening():
        failed.append("cannot listen on the --listen address (see the log): exiting")
        stop.set()


def dataplanes(spec: ProxySpec, options: Options) -> list[Any]:
    """The one dataplane a ProxySpec needs: userspace L4, or the L7 proxy."""
    host = spec.listen[0]
    if spec.l4:
        from proxy.userspace.dataplane import UserspaceConfig, UserspaceDataplane

        wildcard = host in ("0.0.0.0", "::")
        prefix = 128 if ":" in host else 32
        addresses = () if wildcard else (f"{host}/{prefix}",)
        l4 = UserspaceConfig(False, addresses, options.shutdown_grace_period)
        return [UserspaceDataplane(l4)]
    from dataclasses import replace

    from ingress.dataplane import IngressDataplane

    tls = spec.tls is not None
    l7 = replace(
        options.ingress_config(),
        http_bind_address=None if tls else spec.listen,
        https_bind_address=spec.listen if tls else None,
    )
    return [IngressDataplane(l7)]
