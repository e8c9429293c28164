"""This node's addresses for the Gateway API, looked up without holding up a daemon start.

A Gateway's status needs the node's addresses (its name resolved, `getaddrinfo`), and
its spec.addresses are checked against the interfaces' (netlink, through pyroute2, 0.2 s
of CPU to import). The name lookup blocks for the resolver's whole timeout (10 s with
glibc's defaults: two tries of 5 s) on a host whose resolver does not answer, and
`seaway run` used to do both while setting up, before any traffic flowed; the kernel
dataplanes never need them, and a config without Gateways never reads them. So each
lookup starts in a thread of its own when the daemon is set up, and only the first
reader waits for it (if it is still running then).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Generic, TypeVar, overload

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Later(Generic[T]):
    """`lookup()` run in a daemon thread from construction on; `fallback` (logged) if it
    raises."""

    __slots__ = ("_done", "_value")

    def __init__(self, lookup: Callable[[], T], fallback: T) -> None:
        self._value = fallback
        self._done = threading.Event()

        def run() -> None:
            try:
                self._value = lookup()
            except Exception:
                log.exception("looking up this node's addresses failed")
            finally:
                self._done.set()

        threading.Thread(target=run, name="node-addresses", daemon=True).start()

    @property
    def ready(self) -> bool:
        """Whether the lookup has finished (reading will not wait)."""
        return self._done.is_set()

    def value(self) -> T:
        self._done.wait()
        return self._value


class AddressesLater(_Later[tuple[str, ...]], Sequence[str]):
    """A tuple of addresses (the node's, for Gateway status) computed in a thread;
    reading it waits for the lookup. Compares and hashes as that tuple."""

    __slots__ = ()

    def __init__(self, lookup: Callable[[], tuple[str, ...]]) -> None:
        super().__init__(lambda: tuple(lookup()), ())

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self.value()[index]

    def __len__(self) -> int:
        return len(self.value())

    def __iter__(self) -> Iterator[str]:
        return iter(self.value())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AddressesLater):
            return self.value() == other.value()
        return isinstance(other, tuple) and self.value() == other

    def __hash__(self) -> int:
        return hash(self.value())

    def __repr__(self) -> str:
        return repr(self.value()) if self.ready else "AddressesLater(<looking up>)"


class LocalAddressesLater(_Later[frozenset[str] | None], Container[str]):
    """The addresses on this host's interfaces, read in a thread; `in` waits for them.
    When they could not be read (None), every address counts as local: unchecked."""

    __slots__ = ()

    def __init__(self, lookup: Callable[[], frozenset[str] | None]) -> None:
        super().__init__(lookup, None)

    def __contains__(self, address: object) -> bool:
        known = self.value()
        return known is None or address in known

    def __repr__(self) -> str:
        return repr(self.value()) if self.ready else "LocalAddressesLater(<looking up>)"
