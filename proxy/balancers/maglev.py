"""Consistent hashing by Maglev (Eisenbud et al., NSDI 2016), as Envoy's MAGLEV does.

A lookup table of TABLE_SIZE slots (a prime; Envoy's default 65537) is filled by letting
every endpoint claim slots in turn along its own permutation of the table (an offset and
a step derived from its address), so each gets an equal share, or a share proportional
to its weight (an endpoint claims a slot in a round only when its accumulated weight
allows, Envoy's weighted Maglev). A key (client IP, header or cookie value) maps to
table[hash(key) % size]. When one of N endpoints is added or removed, about 1/N of the
keys move, and only those that have to (plus a small fraction the paper bounds).

Hashes are blake2b, not Python's hash(): every worker process and every restart must
send one key to one endpoint. A key of None (the header or cookie is absent) is served
round robin. When the hashed endpoint was already tried or is at its cap, the next slots
of the table are taken in order, so retries are consistent across workers too.

The table is built lazily, on the first keyed pick after a change (20-40 ms of CPython
for 65537 slots and 3-1,000 endpoints), so endpoint churn without keyed traffic costs
nothing.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from collections.abc import Collection, Sequence
from typing import Final

from discovery.snapshot import EndpointInfo
from proxy.balancers.base import Address, Balancer

TABLE_SIZE: Final = 65537


def hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def build_table(names: Sequence[str], weights: Sequence[float] | None, size: int) -> array[int]:
    """Slot -> index into `names`. `size` must be a prime larger than len(names)."""
    n = len(names)
    if n == 0:
        return array("i")
    if n >= size:
        raise ValueError(f"a Maglev table of {size} slots cannot hold {n} endpoints")
    pos: list[int] = []
    step: list[int] = []
    for name in names:
        raw = name.encode()
        pos.append(hash64(b"offset:" + raw) % size)
        step.append(hash64(b"skip:" + raw) % (size - 1) + 1)
    if weights is None:
        share = [1.0] * n
    else:
        top = max(weights)
        share = [w / top for w in weights]
    credit = [0.0] * n
    table = [-1] * size
    filled = 0
    while True:
        for i in range(n):
            if share[i] < 1.0:
                credit[i] += share[i]
                if credit[i] < 1.0:
                    continue
                credit[i] -= 1.0
            c = pos[i]
            s = step[i]
            while table[c] >= 0:
                c += s
                if c >= size:
                    c -= size
            table[c] = i
            c += s
            pos[i] = c - size if c >= size else c
            filled += 1
            if filled == size:
                return array("i", table)


class Maglev(Balancer):
    policy = "maglev"

    __slots__ = ("_next", "_size", "_table")

    def __init__(
        self,
        endpoints: Sequence[EndpointInfo] = (),
        weights: Sequence[float] | None = None,
        *,
        rng: random.Random | None = None,
        max_active: int = 0,
        max_connecting: int = 0,
        table_size: int = TABLE_SIZE,
    ) -> None:
        self._size = table_size
        super().__init__(
            endpoints, weights, rng=rng, max_active=max_active, max_connecting=max_connecting
        )
        self.needs_key = True

    def _setup(self) -> None:
        self._table: array[int] | None = None
        self._next = 0

    def _rebuild(self, old: tuple[EndpointInfo, ...], old_index: dict[Address, int]) -> None:
        self._table = None
        n = len(self._endpoints)
        self._next = self._next % n if n else 0

    def table(self) -> array[int]:
        """The lookup table, built now if the endpoints changed since the last one."""
        table = self._table
        if table is None:
            # Sorted by address, so every worker fills the table in the same order.
            eps = self._endpoints
            order = sorted(range(len(eps)), key=lambda i: (eps[i].ip, eps[i].port))
            ws = self._weights
            sorted_table = build_table(
                [eps[i].address for i in order],
                [ws[i] for i in order] if ws is not None else None,
                self._size,
            )
            table = self._table = array("i", (order[j] for j in sorted_table))
        return table

    def slot_of(self, key: bytes | str) -> int:
        data = key.encode() if isinstance(key, str) else key
        return hash64(data) % self._size

    def _choose(self, key: bytes | str | None, skip: Collection[int]) -> int:
        if key is None:
            return self._round_robin(skip)
        table = self.table()
        slot = self.slot_of(key)
        i = table[slot]
        if not skip or i not in skip:
            return i
        size = self._size
        for _ in range(size - 1):
            slot = slot + 1 if slot + 1 < size else 0
            i = table[slot]
            if i not in skip:
                return i
        return -1

    def _round_robin(self, skip: Collection[int]) -> int:
        n = len(self._endpoints)
        i = self._next % n
        for _ in range(n):
            if i not in skip:
                self._next = i + 1
                return i
            i = i + 1 if i + 1 < n else 0
        return -1
