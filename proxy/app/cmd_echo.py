"""`seaway echo`: run the built-in echo backend."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from proxy.app.options import host_port


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "echo",
        help="run a small backend that answers with what it received",
        description="A small HTTP backend answering every request with JSON: its name, the "
        "method, path, Host, headers and body length. With --udp, a UDP echo answering "
        "each datagram with NAME:payload. For demos, tests and benchmarks.",
    )
    p.add_argument(
        "--listen",
        type=host_port,
        default=("127.0.0.1", 8000),
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:8000)",
    )
    p.add_argument("--name", default="echo", help="name reported in every answer (default echo)")
    p.add_argument("--udp", action="store_true", help="serve UDP echo instead of HTTP")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvloop

    from proxy.app.echo import start_echo

    async def main() -> None:
        host, port = args.listen
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await start_echo(host, port, args.name, udp=args.udp)
        proto = "udp" if args.udp else "http"
        print(f"seaway echo {args.name!r} serving {proto} on {host}:{port}", flush=True)
        await stop.wait()
        server.close()

    uvloop.run(main())
    return 0
