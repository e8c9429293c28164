"""Limits and timeouts of the L7 proxy, in one place (defaults close to nginx's)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpSettings:
    max_request_line: int = 8192  # bytes of the request target: 414 beyond it
    max_header_bytes: int = 32768  # request line + headers: 431 beyond it
    max_headers: int = 100  # header fields: 431 beyond it
    max_body_size: int = 0  # request body bytes, 0 = unlimited: 413 beyond it
    header_timeout: float = 10.0  # from the first byte of a request to its end of head: 408
    keepalive_timeout: float = 75.0  # idle time between two requests on one connection
    connect_timeout: float = 5.0  # upstream TCP connect
    upstream_timeout: float = 60.0  # upstream idle while we wait for its response: 504
    pool_max_idle: int = 1024  # idle keep-alive connections kept per endpoint
    pool_idle_timeout: float = 60.0  # idle pooled connections older than this are closed
    # GET requests (no body) that arrive in the same loop iteration for one endpoint go
    # down one upstream connection, up to this many at a time (1 = never pipeline).
    upstream_pipelining: int = 1
    high_water: int = 256 * 1024  # write buffer above which the other side stops reading
    low_water: int = 64 * 1024
    # Retries (ingress-nginx's proxy-next-upstream defaults, see ingress/retry.py): the
    # failures that send a request to another endpoint, the attempts in all (0: no
    # limit), and the seconds after which no new attempt starts (0: none).
    next_upstream: tuple[str, ...] = ("error", "timeout")
    next_upstream_tries: int = 3
    next_upstream_timeout: float = 0.0
    # Circuit breaking per endpoint (Envoy's defaults): requests in flight, and of those
    # still waiting for their upstream connection. Beyond them: 503. 0 = no cap.
    max_endpoint_requests: int = 1024
    max_endpoint_connecting: int = 1024
    # Client connections per worker; beyond it a new connection gets 503 and is closed.
    max_connections: int = 0
    # On shutdown (SIGTERM), how long requests in flight get to finish before their
    # connections are closed (a pod's terminationGracePeriodSeconds is 30 s too).
    shutdown_grace_period: float = 30.0
    # Every listening socket expects a PROXY protocol header (v1 or v2) before anything
    # else and takes the client address from it (--proxy-protocol; ingress-nginx's
    # use-proxy-protocol does this for the Ingress listeners). Without one: closed.
    proxy_protocol: bool = False
