"""The node-address lookup for Gateway status never holds up a daemon's set-up."""

from __future__ import annotations

import socket
import threading

import pytest

from proxy.app.node_addresses import AddressesLater, LocalAddressesLater
from proxy.app.options import Options


def test_set_up_returns_before_the_lookup_and_readers_wait_for_it() -> None:
    release = threading.Event()
    calls: list[str] = []

    def slow_lookup() -> tuple[str, ...]:
        calls.append("looked up")
        release.wait(5)
        return ("192.0.2.7", "192.0.2.8")

    addresses = AddressesLater(slow_lookup)  # returns while the lookup is blocked
    assert not addresses.ready
    assert repr(addresses) == "AddressesLater(<looking up>)"
    release.set()
    assert list(addresses) == ["192.0.2.7", "192.0.2.8"]  # waits for the thread
    assert addresses.ready
    assert len(addresses) == 2 and addresses[1] == "192.0.2.8" and addresses[:1] == ("192.0.2.7",)
    assert addresses == ("192.0.2.7", "192.0.2.8")
    assert hash(addresses) == hash(("192.0.2.7", "192.0.2.8"))
    assert calls == ["looked up"]


def test_a_failed_lookup_reads_as_no_address() -> None:
    def broken() -> tuple[str, ...]:
        raise OSError("resolver gone")

    addresses = AddressesLater(broken)
    assert tuple(addresses) == ()
    assert not addresses


def test_gateway_config_does_not_resolve_the_node_name_while_setting_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resolver that never answers (a namespace without DNS) must not block set-up."""
    release = threading.Event()

    def hanging_getaddrinfo(*args: object, **kwargs: object) -> list[object]:
        release.wait(10)
        raise socket.gaierror("no resolver")

    def slow_interfaces() -> frozenset[str]:
        release.wait(10)
        return frozenset({"192.0.2.9"})

    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    monkeypatch.setattr("proxy.app.options.interface_addresses", slow_interfaces)
    config = Options(hostname="node-a").gateway_config()  # returns at once
    assert isinstance(config.default_addresses, AddressesLater)
    assert isinstance(config.local_addresses, LocalAddressesLater)
    assert not config.default_addresses.ready and not config.local_addresses.ready
    release.set()
    assert tuple(config.default_addresses) == ("192.0.2.9",)  # the interfaces' instead
    assert "192.0.2.9" in config.local_addresses
    assert "192.0.2.10" not in config.local_addresses


def test_unreadable_interfaces_check_nothing() -> None:
    """None (netlink unavailable) meant "not checked": every address passes."""
    local = LocalAddressesLater(lambda: None)
    assert "203.0.113.1" in local
    broken = LocalAddressesLater(lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    assert "203.0.113.1" in broken
