"""`seaway demo`: echo backends at every endpoint of the demo config, plus the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from proxy.app.options import Options, add_address_flag, add_operations_flags, options_from_args

log = logging.getLogger("seaway.demo")

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="start echo backends and the proxy on the bundled demo config",
        description="Start an echo backend at every endpoint of the demo config "
        "(configs/demo.yaml: loopback addresses, no root needed) and run the daemon in "
        "userspace mode on it, then print curl commands to try. Edit the file while it "
        "runs: changes apply live. Ctrl-C stops everything.",
    )
    p.add_argument(
        "-c",
        "--config",
        default=str(DEMO_CONFIG),
        metavar="PATH",
        help=f"config to serve (default {DEMO_CONFIG})",
    )
    add_address_flag(p, "--http-bind-address", ("127.0.0.1", 8080))
    add_address_flag(p, "--healthz-bind-address", ("127.0.0.1", 10256))
    add_address_flag(p, "--metrics-bind-address", ("127.0.0.1", 10249))
    add_operations_flags(p)
    p.set_defaults(func=run)


def backends_of(objects: list[Any]) -> list[tuple[str, int, str, bool]]:
    """(ip, port, name, udp) for every endpoint address of every EndpointSlice."""
    from discovery.model import EndpointSlice

    found: list[tuple[str, int, str, bool]] = []
    for obj in objects:
        if not isinstance(obj, EndpointSlice):
            continue
        for i, endpoint in enumerate(obj.endpoints, start=1):
            for port in obj.ports:
                for address in endpoint.addresses[:1]:
                    found.append(
                        (address, port.port, f"{obj.service_name}-{i}", port.protocol == "UDP")
                    )
    return found


def try_these(options: Options) -> str:
    http = "{}:{}".format(*options.http_bind_address)
    health = "{}:{}".format(*options.healthz_bind_address)
    metrics = "{}:{}".format(*options.metrics_bind_address)
    return f"""
seaway demo is up. Try:

  # L4, userspace proxy: round robin over web-1..3 (web-4 is terminating, so skipped)
  for i in 1 2 3 4; do curl -s 127.0.10.1:8000/ | head -c 60; echo; done
  curl -s 127.0.0.1:30080/hello                  # the same service on its NodePort
  curl -s 127.0.10.2:8000/                       # api: ClientIP affinity, always one pod
  python3 -c 'import socket; s = socket.socket(type=socket.SOCK_DGRAM); \
    s.sendto(b"ping", ("127.0.10.3", 5353)); print(s.recv(99))'     # UDP service

  # L7, Ingress routing by host and path
  curl -s -H 'Host: demo.localhost' {http}/            # -> web
  curl -s -H 'Host: demo.localhost' {http}/api/users   # -> api (Prefix /api)
  curl -s -H 'Host: shop.apps.localhost' {http}/       # -> api (wildcard host)
  curl -s -H 'Host: other.example' {http}/             # -> web (defaultBackend)

  # admin: the status page (open it in a browser), metrics, health
  http://{metrics}/status
  curl -s {metrics}/metrics | grep seaway_http_requests_total ; curl -s {health}/healthz

Edit {options.config} while this runs; Ctrl-C stops everything.
"""


def run(args: argparse.Namespace) -> int:
    from discovery.manifest import load_path

    loaded = load_path(args.config)
    if loaded.errors:
        for error in loaded.errors:
            print(error, file=sys.stderr)
        return 1
    options = options_from_args(args)
    options.proxy_mode = "userspace"
    options.nodeport_addresses = ["127.0.0.1/32"]
    options.https_bind_address = ("127.0.0.1", 0)
    options.workers = 1

    import uvloop

    from discovery.file_source import FileSource
    from proxy.app import signals
    from proxy.app.cmd_run import choose_dataplanes
    from proxy.app.daemon import Daemon
    from proxy.app.echo import start_echo
    from proxy.app.limits import raise_nofile_limit

    raise_nofile_limit()

    async def main() -> None:
        servers = []
        for ip, port, name, udp in backends_of(loaded.objects()):
            servers.append(await start_echo(ip, port, name, udp=udp))
        log.info("started %d echo backends", len(servers))
        source = FileSource(options.config or "", secret_refs=options.secret_refs())
        daemon = Daemon(options, source, choose_dataplanes(options))
        stop = asyncio.Event()
        signals.install(asyncio.get_running_loop(), daemon, stop)
        runner = asyncio.create_task(daemon.run(stop))
        waiter = asyncio.create_task(daemon.synced.wait())
        await asyncio.wait([runner, waiter], return_when=asyncio.FIRST_COMPLETED)
        if daemon.synced.is_set():
            print(try_these(options), flush=True)
        waiter.cancel()
        try:
            await runner
        finally:
            for server in servers:
                server.close()

    try:
        uvloop.run(main())
    except OSError as e:
        print(f"seaway demo: {e}", file=sys.stderr)
        return 1
    return 0
