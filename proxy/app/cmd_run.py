"""`seaway run`: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from proxy.app.options import (
    Options,
    add_daemon_flags,
    add_gateway_flags,
    add_ingress_nginx_flags,
    add_ingress_status_flags,
    add_mode_flags,
    add_operations_flags,
    add_source_flags,
    options_from_args,
)

log = logging.getLogger("seaway")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run the daemon: watch objects and keep the dataplane in sync",
        description="Run seaway: take Services, EndpointSlices, Ingresses, IngressClasses "
        "and TLS Secrets (and ingress-nginx's ConfigMap: --configmap) from manifest files "
        "(-c) or the Kubernetes API (--kubeconfig, --master, or in-cluster), and make their "
        "traffic flow through the chosen --proxy-mode; Ingresses seaway owns are served on "
        "--http-bind-address in every mode. Gateway API objects (GatewayClass, Gateway, "
        "HTTPRoute, ReferenceGrant) are read too: in API mode seaway writes the status of its "
        "own. SIGTERM or SIGINT drains and stops it (twice: at once); SIGHUP re-reads the "
        "files; SIGUSR1 reopens the access log.",
    )
    add_source_flags(p)
    add_mode_flags(p)
    add_daemon_flags(p)
    add_operations_flags(p)
    add_ingress_nginx_flags(p)
    add_ingress_status_flags(p)
    add_gateway_flags(p)
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="remove everything seaway programmed in the kernel (both iptables flavors and "
        "the nftables tables) and "
        "exit, like kube-proxy --cleanup",
    )
    p.set_defaults(func=run)


def choose_source(options: Options) -> Any:
    """Files when -c is given; else the Kubernetes API (kubeconfig, master or in-cluster)."""
    if options.config:
        from discovery.file_source import FileSource

        return FileSource(options.config, secret_refs=options.secret_refs())
    from discovery.kube_source import KubeSource

    return KubeSource(options.kube_source_config())


def choose_dataplanes(options: Options) -> list[Any]:
    dataplanes: list[Any] = []
    if options.proxy_mode == "userspace":
        from proxy.userspace.dataplane import UserspaceDataplane

        dataplanes.append(UserspaceDataplane(options.userspace_config()))
    elif options.proxy_mode == "iptables":
        from proxy.iptables.dataplane import IptablesDataplane

        dataplanes.append(IptablesDataplane(options.iptables_config()))
    elif options.proxy_mode == "nftables":
        from proxy.nftables.dataplane import NftablesDataplane

        dataplanes.append(NftablesDataplane(options.nftables_config()))
    from ingress.dataplane import IngressDataplane
    from proxy.healthcheck_server import HealthCheckServer
    from proxy.userspace.addresses import host_addresses

    dataplanes.append(IngressDataplane(options.ingress_config()))
    # Health-check node ports (LoadBalancer, externalTrafficPolicy Local), in every mode.
    dataplanes.append(
        HealthCheckServer(options.healthcheck_config(), local_addresses=host_addresses)
    )
    return dataplanes


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if args.cleanup:
        from proxy.app.cmd_kernel import cleanup_all

        return cleanup_all()
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if options.config and (options.kubeconfig or options.master):
        print(
            "seaway run: give either -c/--config or --kubeconfig/--master, not both",
            file=sys.stderr,
        )
        return 2
    if not (options.config or options.kubeconfig or options.master or in_cluster):
        print(
            "seaway run: no source of objects: give -c PATH (manifest files), --kubeconfig "
            "PATH or --master URL, or run in a Kubernetes pod",
            file=sys.stderr,
        )
        return 2
    if options.config and not os.path.exists(options.config):
        print(f"seaway run: {options.config}: no such file or directory", file=sys.stderr)
        return 2

    import uvloop

    from proxy.app import signals
    from proxy.app.daemon import Daemon
    from proxy.app.limits import raise_nofile_limit
    from proxy.healthcheck_server import HealthCheckServer

    raise_nofile_limit()  # before anything is opened; worker processes inherit it

    async def main() -> None:
        dataplanes = choose_dataplanes(options)
        daemon = Daemon(options, choose_source(options), dataplanes, freeze_start=True)
        for dataplane in dataplanes:  # "serviceProxyHealthy" is the daemon's /healthz
            if isinstance(dataplane, HealthCheckServer):
                dataplane.proxy_healthy = daemon.health.healthy
        stop = asyncio.Event()
        signals.install(asyncio.get_running_loop(), daemon, stop)
        log.info(
            "seaway starting: proxy-mode %s, source %s, healthz %s:%d, metrics %s:%d, "
            "max connections per worker %s",
            options.proxy_mode,
            options.config or options.kubeconfig or options.master or "in-cluster",
            *options.healthz_bind_address,
            *options.metrics_bind_address,
            options.resolved_max_connections() or "unlimited",
        )
        await daemon.run(stop)

    from discovery.kube_config import KubeConfigError

    try:
        uvloop.run(main())
    except (OSError, KubeConfigError) as e:
        print(f"seaway run: {e}", file=sys.stderr)
        return 1
    return 0
