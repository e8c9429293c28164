"""`python -m tests.kubeapi --listen HOST:PORT [--kubeconfig-out PATH]`: run the stand-in."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile

from tests.kubeapi.certs import make_pki
from tests.kubeapi.server import ApiServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.kubeapi",
        description="In-memory Kubernetes API stand-in (Services, EndpointSlices, Ingresses, "
        "IngressClasses, Secrets, ..., and the Gateway API kinds with their status "
        "subresource) for tests and benchmarks. Test hooks: POST "
        "/_test/compact, /_test/drop-watches, /_test/stall?on=true|false, /_test/fail?code=N, "
        "/_test/delay?seconds=S, /_test/gone-mode?mode=event|http, /_test/restart?down=S; "
        "GET /_test/stats.",
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="address to listen on (port 0: pick a free one; default 127.0.0.1:0)",
    )
    p.add_argument(
        "--kubeconfig-out",
        metavar="PATH",
        help="write a kubeconfig for this server here (default: a temporary file)",
    )
    p.add_argument(
        "--bookmark-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often watches with allowWatchBookmarks get a BOOKMARK (default 60)",
    )
    p.add_argument("--token", help="require this bearer token (written into the kubeconfig)")
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a throwaway CA and require a client certificate (all written "
        "into the kubeconfig)",
    )
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def serve() -> None:
        pki = make_pki(tempfile.mkdtemp(prefix="kubeapi-pki-")) if args.tls else None
        server = ApiServer(bookmark_interval=args.bookmark_interval, token=args.token, pki=pki)
        await server.start(host.strip("[]") or "127.0.0.1", int(port or 0))
        path = args.kubeconfig_out
        if not path:
            fd, path = tempfile.mkstemp(prefix="kubeapi-", suffix=".kubeconfig")
            os.close(fd)
        server.write_kubeconfig(path)
        print(f"listening on {server.url}", flush=True)
        print(f"kubeconfig {path}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
