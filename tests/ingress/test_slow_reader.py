"""A client that stops reading a large response costs the proxy at most its write buffer's
high-water mark (issue 15 part 5): a client that reads nothing of a 50 MB response leaves
the proxy holding about `high_water` bytes for it, while the rest waits in the backend
(the upstream connection stops being read); and when the client leaves, the upstream
connection is closed."""

from __future__ import annotations

import socket
import time

from ingress.http1 import HttpProtocol
from ingress.settings import HttpSettings
from tests.ingress.l7kit import HOST, LoopThread, one_backend
from tests.support import wait_until

SIZE = 50 * 1024 * 1024


def test_a_client_that_reads_nothing_costs_at_most_the_high_water_mark(lt: LoopThread) -> None:
    settings = HttpSettings()
    with one_backend(lt, settings) as (proxy, backend):
        server = proxy.server
        assert server is not None
        ctx = server.ctx
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        client.connect((HOST, proxy.port))
        client.sendall(b"GET /big/%d HTTP/1.1\r\nHost: web.test\r\n\r\n" % SIZE)

        def downstream() -> HttpProtocol | None:
            found = [c for c in list(ctx.connections) if isinstance(c, HttpProtocol)]
            return found[0] if found else None

        def paused() -> bool:
            c = downstream()
            ex = c.exchange if c is not None else None
            return ex is not None and ex.conn is not None and ex.conn.paused

        try:
            wait_until(paused, 10, "the upstream connection to be paused")
            samples = []
            for _ in range(3):
                c = downstream()
                assert c is not None and c.transport is not None and c.exchange is not None
                samples.append((c.transport.get_write_buffer_size(), c.exchange.received))
                time.sleep(0.3)
            up = backend.stats.transports[-1]
            held_by_backend = up.get_write_buffer_size()  # type: ignore[attr-defined]
        finally:
            client.close()
        buffered = [b for b, _ in samples]
        received = [r for _, r in samples]
        # The proxy holds at most the high-water mark plus one read for this client...
        assert max(buffered) <= settings.high_water + 256 * 1024, samples
        # ...and stops reading the backend: nothing more comes in while the client reads
        # nothing, the rest (what the kernel's socket buffers do not hold) stays there.
        assert received[0] == received[-1], samples
        assert received[-1] < SIZE // 5 and held_by_backend > SIZE // 2, (samples, held_by_backend)
        wait_until(lambda: not ctx.connections, 10, "the client connection to close")
        wait_until(lambda: up.is_closing(), 10, "the upstream connection to close")
