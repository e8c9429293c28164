"""This node's addresses for Gateway status, looked up without holding up a daemon start.

Finding them means resolving the node's name (`getaddrinfo`), which on a host whose
resolver does not answer blocks for the resolver's whole timeout (10 s with glibc's
defaults: two tries of 5 s) before it fails. `seaway run` used to do that while setting
up, before any traffic flowed, and the kernel dataplanes do not need the answer at all:
only a Gateway without spec.addresses does, for its status. So the lookup starts in a
thread of its own when the daemon is set up, and only the first reader waits for it (if
it is still running then).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import overload


class AddressesLater(Sequence[str]):
    """A tuple of addresses computed by `lookup` in a daemon thread (started at once);
    reading it waits for the lookup. Compares and hashes as that tuple."""

    __slots__ = ("_done", "_value")

    def __init__(self, lookup: Callable[[], tuple[str, ...]]) -> None:
        self._value: tuple[str, ...] = ()
        self._done = threading.Event()

        def run() -> None:
            try:
                self._value = tuple(lookup())
            finally:
                self._done.set()

        threading.Thread(target=run, name="node-addresses", daemon=True).start()

    @property
    def ready(self) -> bool:
        """Whether the lookup has finished (reading will not wait)."""
        return self._done.is_set()

    def value(self) -> tuple[str, ...]:
        self._done.wait()
        return self._value

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
