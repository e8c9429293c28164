"""Who the client is, and what the X-Forwarded-* fields sent upstream say. Pure.

By default the client is the connection's peer and seaway sends X-Forwarded-For (the
incoming value with the peer appended), -Proto, -Host and X-Real-IP, made once per
connection (ingress/request.py ForwardedLines). A listener's `ClientAddress` (the route
model's, from ingress-nginx's ConfigMap, or seaway's --proxy-protocol) changes that:

- ``proxy_protocol``: a PROXY header (ingress/proxy_protocol.py) starts every connection;
  its source address is the client's. In ingress-nginx mode (``real_ip_from`` set) only
  when the peer, the balancer, is inside ``real_ip_from`` (nginx ``real_ip_header
  proxy_protocol`` with ``set_real_ip_from``: proxy-real-ip-cidr, 0.0.0.0/0 by default,
  which as in nginx covers IPv4 peers only).
- ``real_ip_header`` (enable-real-ip or use-forwarded-headers: forwarded-for-header): the
  client is read from that header when the peer is trusted, walking it from the right
  past trusted addresses (nginx realip with ``real_ip_recursive on``: `real_client`).
  With the PROXY protocol too, the header is read only when the PROXY address is
  trusted, else the PROXY address is the client (ingress-nginx's
  X-Forwarded-For-Proxy-Protocol map; where that map leaves nginx with the balancer's
  address, a trusted PROXY address and no header, seaway uses the PROXY address).
- ``use_forwarded_headers``: the incoming X-Forwarded-Proto, -Host (its first value) and
  -Port are sent on instead of seaway's (and that Proto decides the HTTPS redirect, as
  ingress-nginx's $pass_access_scheme does); Host sent upstream follows X-Forwarded-Host.
- ``ingress_nginx``: ingress-nginx's set of fields: X-Forwarded-For is the client alone
  (or, with ``compute_full_forwarded_for``, the incoming value plus the peer or PROXY
  address: $full_x_forwarded_for), X-Forwarded-Port, X-Original-Forwarded-For (the
  incoming X-Forwarded-For), and a PROXY destination port 443 means https.

That client address is the one access logs, allow/deny ranges, rate-limit keys,
hash-by $remote_addr, X-Real-IP and X-Forwarded-For see (they all read the
connection's ``client_ip``). Connection-level choices cost once per connection; only the
header-based ones (``per_request``) cost per request (ingress/client_protocol.py, which
also reads the PROXY header off the socket).
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery.nginx_configmap import NginxGlobalSettings
from ingress.filters.ranges import AddressSet, client_address
from ingress.proxy_protocol import ProxyHeader
from ingress.request import ForwardedLines

_OWS = b" ,"


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """How a listener learns the client's address (see the module docstring)."""

    proxy_protocol: bool = False
    real_ip_from: tuple[str, ...] = ()  # trusted proxies; () = trust no header (realip off)
    real_ip_header: str = ""  # the forwarded-for header read (with real_ip_from)
    use_forwarded_headers: bool = False
    compute_full_forwarded_for: bool = False
    ingress_nginx: bool = False

    @property
    def per_request(self) -> bool:
        """Whether the request's own fields change who the client is or what is sent."""
        return bool(self.real_ip_from and self.real_ip_header) or self.use_forwarded_headers

    @property
    def default(self) -> bool:
        """Seaway's own behaviour: nothing to do beyond the plain connection."""
        return self == SEAWAY_DEFAULT


SEAWAY_DEFAULT = ClientAddress()


def nginx_client_address(s: NginxGlobalSettings) -> ClientAddress:
    """ingress-nginx's ConfigMap keys, as its template (nginx.tmpl) turns them into the
    realip module and proxy_set_header lines: realip is on with use-forwarded-headers,
    use-proxy-protocol or enable-real-ip; its header is the PROXY address with
    use-proxy-protocol alone, else forwarded-for-header."""
    realip = s.use_forwarded_headers or s.use_proxy_protocol or s.enable_real_ip
    header = ""
    if s.use_forwarded_headers or (s.enable_real_ip and not s.use_proxy_protocol):
        header = s.forwarded_for_header
    return ClientAddress(
        proxy_protocol=s.use_proxy_protocol,
        real_ip_from=s.proxy_real_ip_cidr if realip else (),
        real_ip_header=header,
        use_forwarded_headers=s.use_forwarded_headers,
        compute_full_forwarded_for=s.use_forwarded_headers and s.compute_full_forwarded_for,
        ingress_nginx=True,
    )


def real_client(peer: bytes, values: list[bytes], trusted: AddressSet) -> bytes:
    """nginx's ngx_http_get_forwarded_addr with real_ip_recursive on: starting from the
    peer, while the current address is trusted, step to the next address from the right
    of the header values (the last header line first). An entry that is not an address
    ends the walk where it is; an untrusted peer reads nothing."""
    addr = peer
    for value in reversed(values):
        end = len(value)
        while end > 0:
            if addr not in trusted:
                return addr
            while end > 0 and value[end - 1] in _OWS:
                end -= 1
            start = end
            while start > 0 and value[start - 1] not in _OWS:
                start -= 1
            if start == end:
                break
            entry = _address(value[start:end])
            if entry is None:
                return addr
            addr = entry
            end = start
    return addr


def _address(raw: bytes) -> bytes | None:
    """An X-Forwarded-For entry as an address (nginx's ngx_parse_addr_port: a port after
    an IPv4 address or a bracketed IPv6 one is allowed and dropped)."""
    if raw.startswith(b"["):
        close = raw.find(b"]")
        if close < 0 or (close + 1 < len(raw) and raw[close + 1 : close + 2] != b":"):
            return None
        raw = raw[1:close]
    elif raw.count(b":") == 1:
        raw = raw.partition(b":")[0]
    addr = client_address(raw)
    return None if addr is None else str(addr).encode()


class ConnectionAddress:
    """What one listener socket knows of its clients' addresses (a ClientAddress made
    ready: trusted networks parsed once, the listener's port as bytes)."""

    __slots__ = ("model", "port", "trusted")

    def __init__(self, model: ClientAddress, port: int) -> None:
        self.model = model
        self.port = b"%d" % port
        self.trusted = AddressSet(model.real_ip_from) if model.real_ip_from else None

    def source(self, peer: bytes, header: ProxyHeader | None) -> bytes:
        """The client address of a connection, before any request field is read."""
        if header is None or header.source is None:
            return peer
        carried = header.source[0].encode()
        trusted = self.trusted
        if trusted is not None and not self.model.per_request and peer not in trusted:
            return peer  # nginx: real_ip_header proxy_protocol needs a trusted peer
        return carried

    def lines(
        self,
        client_ip: bytes,
        scheme: bytes,
        header: ProxyHeader | None,
        peer: bytes,
        port: bytes | None = None,
    ) -> ForwardedLines:
        """The X-Forwarded-* lines for `client_ip` on this listener."""
        m = self.model
        if not m.ingress_nginx:
            return ForwardedLines(client_ip, scheme)
        carried = header.destination if header is not None else None
        if port is None:
            port = b"%d" % carried[1] if carried is not None else self.port
        if carried is not None and carried[1] == 443:
            scheme = b"https"  # lua_ingress.lua: a PROXY destination port 443 is https
        if not m.compute_full_forwarded_for:
            return ForwardedLines(client_ip, scheme, port, replace=True, original=True)
        # $full_x_forwarded_for: the incoming value, then the PROXY address or else
        # nginx's $realip_remote_addr (the peer), not the client address read from it
        appended = header.source[0].encode() if header and header.source else peer
        return ForwardedLines(client_ip, scheme, port, appended, original=True)
