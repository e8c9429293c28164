"""Who the client is (ingress/client_address.py), pure: nginx's realip walk
(ngx_http_get_forwarded_addr with real_ip_recursive on), ingress-nginx's ConfigMap keys as
its nginx.tmpl turns them into realip and proxy_set_header lines, and the X-Forwarded-*
lines a connection sends."""

from __future__ import annotations

import pytest

from discovery.nginx_configmap import INGRESS_NGINX_DEFAULTS, NginxGlobalSettings
from ingress.client_address import (
    SEAWAY_DEFAULT,
    ClientAddress,
    ConnectionAddress,
    nginx_client_address,
    real_client,
)
from ingress.filters.ranges import AddressSet
from ingress.proxy_protocol import ProxyHeader
from ingress.request import RequestState

TRUSTED = AddressSet(["127.0.0.1/32", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "values", "client"),
    [
        # the peer is not a trusted proxy: its header is not read
        (b"192.0.2.1", [b"1.2.3.4"], b"192.0.2.1"),
        (b"127.0.0.1", [b"1.2.3.4"], b"1.2.3.4"),
        (b"127.0.0.1", [], b"127.0.0.1"),
        (b"127.0.0.1", [b""], b"127.0.0.1"),
        # recursive: from the right, past trusted addresses
        (b"127.0.0.1", [b"203.0.113.9, 10.0.0.2"], b"203.0.113.9"),
        (b"127.0.0.1", [b"198.51.100.1, 203.0.113.9, 10.0.0.2"], b"203.0.113.9"),
        # every address trusted: the leftmost
        (b"127.0.0.1", [b"10.0.0.1, 10.0.0.2"], b"10.0.0.1"),
        # several header lines: the last line first, as one list
        (b"127.0.0.1", [b"203.0.113.9", b"10.0.0.2"], b"203.0.113.9"),
        (b"127.0.0.1", [b"10.9.9.9", b"10.0.0.2, 10.0.0.3"], b"10.9.9.9"),
        # something that is not an address ends the walk where it is
        (b"127.0.0.1", [b"203.0.113.9, unknown, 10.0.0.2"], b"10.0.0.2"),
        (b"127.0.0.1", [b"garbage"], b"127.0.0.1"),
        # separators: commas and spaces, runs of them, at either end
        (b"127.0.0.1", [b" 1.2.3.4 , ,10.0.0.5,  "], b"1.2.3.4"),
        # ngx_parse_addr_port: a port after IPv4 or bracketed IPv6 is dropped
        (b"127.0.0.1", [b"1.2.3.4:5678"], b"1.2.3.4"),
        (b"127.0.0.1", [b"[2001:db8::1]:443"], b"2001:db8::1"),
        (b"127.0.0.1", [b"2001:db8::1"], b"2001:db8::1"),
        (b"127.0.0.1", [b"[2001:db8::1]x"], b"127.0.0.1"),
        (b"127.0.0.1", [b"::ffff:10.0.0.7, ::ffff:203.0.113.4"], b"203.0.113.4"),
    ],
)
def test_real_client_is_nginx_realip_recursive(
    peer: bytes, values: list[bytes], client: bytes
) -> None:
    assert real_client(peer, values, TRUSTED) == client


def test_no_trusted_proxy_reads_nothing() -> None:
    assert real_client(b"127.0.0.1", [b"1.2.3.4"], AddressSet([])) == b"127.0.0.1"


def test_seaway_default_and_nginx_defaults() -> None:
    assert SEAWAY_DEFAULT.default and not SEAWAY_DEFAULT.per_request
    # ingress-nginx's defaults: no realip, but its own X-Forwarded-* set
    d = nginx_client_address(INGRESS_NGINX_DEFAULTS)
    assert d == ClientAddress(ingress_nginx=True) and not d.default and not d.per_request


@pytest.mark.parametrize(
    ("keys", "want"),
    [
        # nginx.tmpl: real_ip_header proxy_protocol when use-proxy-protocol alone
        (
            {"use_proxy_protocol": True},
            ClientAddress(True, ("0.0.0.0/0",), "", ingress_nginx=True),
        ),
        # ... and with enable-real-ip too (the PROXY address still wins)
        (
            {"use_proxy_protocol": True, "enable_real_ip": True},
            ClientAddress(True, ("0.0.0.0/0",), "", ingress_nginx=True),
        ),
        # real_ip_header forwarded-for-header with enable-real-ip or use-forwarded-headers
        (
            {"enable_real_ip": True, "forwarded_for_header": "X-Client"},
            ClientAddress(False, ("0.0.0.0/0",), "X-Client", ingress_nginx=True),
        ),
        (
            {"use_forwarded_headers": True, "proxy_real_ip_cidr": ("10.0.0.0/8",)},
            ClientAddress(False, ("10.0.0.0/8",), "X-Forwarded-For", True, ingress_nginx=True),
        ),
        # both: the X-Forwarded-For-Proxy-Protocol map
        (
            {"use_forwarded_headers": True, "use_proxy_protocol": True},
            ClientAddress(True, ("0.0.0.0/0",), "X-Forwarded-For", True, ingress_nginx=True),
        ),
        # compute-full-forwarded-for counts only with use-forwarded-headers
        ({"compute_full_forwarded_for": True}, ClientAddress(ingress_nginx=True)),
        (
            {"compute_full_forwarded_for": True, "use_forwarded_headers": True},
            ClientAddress(False, ("0.0.0.0/0",), "X-Forwarded-For", True, True, True),
        ),
    ],
)
def test_configmap_keys_as_the_template_uses_them(
    keys: dict[str, object], want: ClientAddress
) -> None:
    got = nginx_client_address(NginxGlobalSettings(**keys))  # type: ignore[arg-type]
    assert got == want


PP = ProxyHeader(1, 40, ("192.168.0.1", 56324), ("192.168.0.11", 1234))


def test_proxy_address_with_the_seaway_flag_is_always_taken() -> None:
    a = ConnectionAddress(ClientAddress(proxy_protocol=True), 80)
    assert a.source(b"::1", PP) == b"192.168.0.1"
    assert a.source(b"::1", ProxyHeader(2, 16)) == b"::1"  # LOCAL: the peer stands
    assert a.source(b"::1", None) == b"::1"


def test_proxy_address_in_nginx_mode_needs_a_trusted_peer() -> None:
    """nginx realip: real_ip_header proxy_protocol replaces the address only when the
    peer is inside set_real_ip_from; ingress-nginx's 0.0.0.0/0 covers IPv4 peers only."""
    a = ConnectionAddress(nginx_client_address(NginxGlobalSettings(use_proxy_protocol=True)), 80)
    assert a.source(b"10.1.2.3", PP) == b"192.168.0.1"
    assert a.source(b"::1", PP) == b"::1"


def head_of(lines_of: ConnectionAddress, header: ProxyHeader | None, xff: bytes | None) -> bytes:
    req = RequestState(b"GET", b"/", b"")
    req.host = b"app.test"
    req.forward = b"GET / HTTP/1.1\r\nHost: app.test\r\n"
    req.xff = xff
    ip = lines_of.source(b"127.0.0.1", header)
    return req.upstream_head_with(lines_of.lines(ip, b"http", header, b"127.0.0.1"))


def test_lines_seaway_default_appends_to_an_incoming_forwarded_for() -> None:
    a = ConnectionAddress(ClientAddress(proxy_protocol=True), 8080)
    assert b"X-Forwarded-For: 1.2.3.4, 192.168.0.1\r\n" in head_of(a, PP, b"1.2.3.4")
    head = head_of(a, PP, None)
    assert b"X-Forwarded-Port" not in head and b"X-Original-Forwarded-For" not in head
    assert head.endswith(b"X-Forwarded-Host: app.test\r\nX-Real-IP: 192.168.0.1\r\n\r\n")


def test_lines_ingress_nginx_replace_and_keep_the_original() -> None:
    """nginx.tmpl: X-Forwarded-For $remote_addr, X-Forwarded-Port $pass_port (the PROXY
    destination port), X-Original-Forwarded-For $http_x_forwarded_for."""
    a = ConnectionAddress(nginx_client_address(NginxGlobalSettings(use_proxy_protocol=True)), 80)
    head = head_of(a, PP, b"1.2.3.4")
    assert b"X-Forwarded-For: 192.168.0.1\r\n" in head
    assert b"X-Original-Forwarded-For: 1.2.3.4\r\n" in head
    assert b"X-Forwarded-Port: 1234\r\n" in head and b"X-Forwarded-Proto: http\r\n" in head
    head = head_of(a, None, None)
    assert b"X-Forwarded-Port: 80\r\nX-Real-IP: 127.0.0.1\r\n\r\n" in head
    to_443 = ProxyHeader(1, 40, ("192.168.0.1", 56324), ("192.168.0.11", 443))
    assert b"X-Forwarded-Proto: https\r\n" in head_of(a, to_443, None)


def test_lines_compute_full_forwarded_for_appends_the_proxy_address() -> None:
    """nginx.tmpl $full_x_forwarded_for: the incoming value, then $proxy_protocol_addr
    (or $realip_remote_addr, the peer, without the PROXY protocol)."""
    keys = NginxGlobalSettings(
        use_proxy_protocol=True, use_forwarded_headers=True, compute_full_forwarded_for=True
    )
    a = ConnectionAddress(nginx_client_address(keys), 80)
    assert b"X-Forwarded-For: 1.2.3.4, 192.168.0.1\r\n" in head_of(a, PP, b"1.2.3.4")
    keys = NginxGlobalSettings(use_forwarded_headers=True, compute_full_forwarded_for=True)
    a = ConnectionAddress(nginx_client_address(keys), 80)
    assert b"X-Forwarded-For: 1.2.3.4, 127.0.0.1\r\n" in head_of(a, None, b"1.2.3.4")
