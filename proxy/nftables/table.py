"""Pure: the nftables table seaway wants (or the kernel holds), and what changed.

A `TableState` is one family's table as data: chains (rule text), named sets and maps
(declaration and elements, keyed by their text). The builder keeps the wanted state in an
`Assembly`, which adds and removes service ports' `Fragment`s and records every change
of the resulting state in a `Delta`; `diff` compares two whole states (the kernel's,
read back, against the wanted one). Render turns a Delta into one nft transaction.

Elements and chains may be contributed by several service ports (a pod IP that backs
two services is one `hairpin` element; every TCP service with 3 endpoints uses `pick-tcp-3`;
two services claiming one external IP and port): the Assembly counts contributions, so
an element or chain goes only when its last contributor does. When contributors
disagree on a map element's value, the smallest value wins (deterministic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Chain:
    rules: tuple[str, ...]
    base: str = ""  # base chains: "type nat hook prerouting priority -100; policy accept;"


@dataclass(frozen=True, slots=True)
class SetSpec:
    """A named set or map's declaration. `types` and `data` are nft's type names, as
    `nft -j list` reports them (what read-back compares); `typeof`, when given, is what
    the declaration says instead (needed where a type has no name: numgen's integer)."""

    types: tuple[str, ...]
    data: str = ""  # maps: "verdict", "ipv4_addr . inet_service", ...; sets: ""
    flags: tuple[str, ...] = ()  # "interval"; "dynamic", "timeout"
    timeout: int = 0  # seconds, for sets of timed elements
    typeof: str = ""

    @property
    def is_map(self) -> bool:
        return bool(self.data)

    def signature(self) -> tuple[tuple[str, ...], str, tuple[str, ...], int]:
        """What the kernel keeps of the declaration ("dynamic" is implied by use)."""
        flags = tuple(sorted(f for f in self.flags if f != "dynamic"))
        return self.types, self.data, flags, self.timeout


@dataclass(slots=True)
class TableState:
    """One family's seaway table: "ip" or "ip6"."""

    family: str
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, SetSpec] = field(default_factory=dict)
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # set -> key -> value

    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains.values())

    def element_count(self) -> int:
        return sum(len(e) for e in self.elements.values())


@dataclass(frozen=True, slots=True)
class Fragment:
    """Everything one service port contributes to one family's table."""

    chains: tuple[tuple[str, Chain], ...] = ()
    sets: tuple[tuple[str, SetSpec], ...] = ()
    elements: tuple[tuple[str, str, str], ...] = ()  # (set, key, value); sets: value ""
    endpoints: int = 0


@dataclass(slots=True)
class Delta:
    """Changes of a TableState: per object (before, after); None = absent."""

    chains: dict[str, tuple[Chain | None, Chain | None]] = field(default_factory=dict)
    sets: dict[str, tuple[SetSpec | None, SetSpec | None]] = field(default_factory=dict)
    elements: dict[str, dict[str, tuple[str | None, str | None]]] = field(default_factory=dict)

    def chain(self, name: str, before: Chain | None, after: Chain | None) -> None:
        prev = self.chains.get(name)
        self.chains[name] = (prev[0] if prev else before, after)

    def set(self, name: str, before: SetSpec | None, after: SetSpec | None) -> None:
        prev = self.sets.get(name)
        self.sets[name] = (prev[0] if prev else before, after)

    def element(self, set_name: str, key: str, before: str | None, after: str | None) -> None:
        changes = self.elements.get(set_name)
        if changes is None:
            changes = self.elements[set_name] = {}
        prev = changes.get(key)
        changes[key] = (prev[0] if prev else before, after)

    def effective(self) -> Delta:
        """Only the entries whose state really differs (a change undone is dropped)."""
        out = Delta()
        out.chains = {k: v for k, v in self.chains.items() if v[0] != v[1]}
        out.sets = {k: v for k, v in self.sets.items() if v[0] != v[1]}
        for name, changes in self.elements.items():
            kept = {k: v for k, v in changes.items() if v[0] != v[1]}
            if kept:
                out.elements[name] = kept
        return out

    def empty(self) -> bool:
        return not (self.chains or self.sets or any(self.elements.values()))

    def counts(self) -> tuple[int, int, int]:
        """(chains written, chains deleted, elements changed)."""
        written = sum(1 for _, after in self.chains.values() if after is not None)
        deleted = sum(1 for _, after in self.chains.values() if after is None)
        return written, deleted, sum(len(c) for c in self.elements.values())


# A contribution count per object: one contributor is stored as the value itself, more
# as a list of values (the effective one is the smallest).
_Contrib = str | list[str]


def _effective(c: _Contrib) -> str:
    return c if isinstance(c, str) else min(c)


class Assembly:
    """The wanted TableState of one family, built from fragments, with a Delta of the
    changes since `take_delta`. Pure."""

    __slots__ = ("_chain_refs", "_elements", "_set_refs", "delta", "state")

    def __init__(self, fixed: TableState) -> None:
        self.state = TableState(
            fixed.family,
            dict(fixed.chains),
            dict(fixed.sets),
            {name: dict(els) for name, els in fixed.elements.items()},
        )
        self._chain_refs: dict[str, int] = {}
        self._set_refs: dict[str, int] = {}
        self._elements: dict[str, dict[str, _Contrib]] = {
            name: dict(els) for name, els in fixed.elements.items()
        }
        self.delta: Delta | None = Delta()

    def recording(self, on: bool) -> None:
        """Record changes from now on (or not: a full build of 10,000 services would
        record 60,000 element additions nobody reads)."""
        if not on:
            self.delta = None
        elif self.delta is None:
            self.delta = Delta()

    def take_delta(self) -> Delta:
        delta = self.delta.effective() if self.delta is not None else Delta()
        if self.delta is not None:
            self.delta = Delta()
        return delta

    def add(self, frag: Fragment) -> None:
        state, delta = self.state, self.delta
        for name, chain in frag.chains:
            refs = self._chain_refs.get(name, 0)
            self._chain_refs[name] = refs + 1
            if refs == 0:
                if delta is not None:
                    delta.chain(name, state.chains.get(name), chain)
                state.chains[name] = chain
        for name, spec in frag.sets:
            refs = self._set_refs.get(name, 0)
            self._set_refs[name] = refs + 1
            if refs == 0:
                if delta is not None:
                    delta.set(name, state.sets.get(name), spec)
                state.sets[name] = spec
                state.elements.setdefault(name, {})
        contrib = self._elements
        elements = state.elements
        changes = delta.elements if delta is not None else None
        for set_name, key, value in frag.elements:
            per_set = contrib.get(set_name)
            if per_set is None:
                per_set = contrib[set_name] = {}
            have = per_set.get(key)
            if have is not None:
                self._another(set_name, key, value, have)
                continue
            per_set[key] = value
            elements[set_name][key] = value
            if changes is not None:  # delta.element(set_name, key, None, value), inlined
                per_delta = changes.get(set_name)
                if per_delta is None:
                    per_delta = changes[set_name] = {}
                prev = per_delta.get(key)
                per_delta[key] = (prev[0] if prev else None, value)

    def _another(self, set_name: str, key: str, value: str, have: _Contrib) -> None:
        """A second (third...) contributor of an element."""
        before = _effective(have)
        if isinstance(have, str):
            have = self._elements[set_name][key] = [have]
        have.append(value)
        if value < before:
            self.state.elements[set_name][key] = value
            if self.delta is not None:
                self.delta.element(set_name, key, before, value)

    def remove(self, frag: Fragment) -> None:
        state, delta = self.state, self.delta
        contrib = self._elements
        elements = state.elements
        for set_name, key, value in frag.elements:
            per_set = contrib[set_name]
            have = per_set[key]
            if isinstance(have, str):
                del per_set[key]
                del elements[set_name][key]
                if delta is not None:
                    delta.element(set_name, key, value, None)
                continue
            before = _effective(have)
            have.remove(value)
            if len(have) == 1:
                per_set[key] = have[0]
            after = _effective(per_set[key])
            if after != before:
                elements[set_name][key] = after
                if delta is not None:
                    delta.element(set_name, key, before, after)
        for name, _spec in frag.sets:
            refs = self._set_refs[name] - 1
            if refs:
                self._set_refs[name] = refs
                continue
            del self._set_refs[name]
            spec = state.sets.pop(name)
            if delta is not None:
                delta.set(name, spec, None)
            state.elements.pop(name, None)
        for name, _chain in frag.chains:
            refs = self._chain_refs[name] - 1
            if refs:
                self._chain_refs[name] = refs
                continue
            del self._chain_refs[name]
            chain = state.chains.pop(name)
            if delta is not None:
                delta.chain(name, chain, None)


def diff(before: TableState, after: TableState) -> Delta:
    """Everything that differs between two whole states of one family's table."""
    out = Delta()
    for name, chain in after.chains.items():
        old = before.chains.get(name)
        if old != chain:
            out.chains[name] = (old, chain)
    for name, chain in before.chains.items():
        if name not in after.chains:
            out.chains[name] = (chain, None)
    for name, spec in after.sets.items():
        old_spec = before.sets.get(name)
        if old_spec is None or old_spec.signature() != spec.signature():
            out.sets[name] = (old_spec, spec)
    for name, spec in before.sets.items():
        if name not in after.sets:
            out.sets[name] = (spec, None)
    for name in after.elements.keys() | before.elements.keys():
        changes = _element_diff(
            before.elements.get(name, {}) if name not in out.sets else {},
            after.elements.get(name, {}),
        )
        if changes:
            out.elements[name] = changes
    return out


def _element_diff(
    before: Mapping[str, str], after: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    changes: dict[str, tuple[str | None, str | None]] = {}
    for key, value in after.items():
        old = before.get(key)
        if old != value:
            changes[key] = (old, value)
    for key, value in before.items():
        if key not in after:
            changes[key] = (value, None)
    return changes
