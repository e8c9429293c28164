"""Pure: TableStates and Deltas -> `nft -f` input.

Full: every family's table written whole in one transaction: `add table` + `delete
table` (so whatever was there goes, atomically) + the table block. That is the first
sync on a node, and the way back from any failure.

Delta: one transaction with only what changed, ordered so that nothing is removed while
something still refers to it: flush the chains that change or go, delete elements that
go or change value, delete chains and sets that go, add sets and chains, add the rules of
new and changed chains, add elements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from proxy.nftables.names import TABLE
from proxy.nftables.table import Chain, Delta, SetSpec, TableState


def spec_lines(spec: SetSpec) -> list[str]:
    """A set's or map's declaration, one statement per line."""
    if spec.typeof:
        lines = [f"typeof {spec.typeof}"]
    else:
        types = " . ".join(spec.types)
        lines = [f"type {types} : {spec.data}" if spec.data else f"type {types}"]
    if spec.flags:
        lines.append(f"flags {','.join(spec.flags)}")
    if spec.timeout:
        lines.append(f"timeout {spec.timeout}s")
    return lines


def _kind(spec: SetSpec) -> str:
    return "map" if spec.is_map else "set"


def render_table(state: TableState) -> str:
    """`table FAMILY seaway { ... }`: sets and maps with their elements, then chains."""
    lines = [f"table {state.family} {TABLE} {{"]
    for name, spec in state.sets.items():
        lines.append(f"\t{_kind(spec)} {name} {{")
        lines.extend(f"\t\t{line}" for line in spec_lines(spec))
        elements = state.elements.get(name)
        if elements:
            sep = ",\n\t\t\t     "
            body = sep.join(f"{k} : {v}" if v else k for k, v in elements.items())
            lines.append(f"\t\telements = {{ {body} }}")
        lines.append("\t}")
    for name, chain in state.chains.items():
        lines.append(f"\tchain {name} {{")
        if chain.base:
            lines.append(f"\t\t{chain.base}")
        lines.extend(f"\t\t{rule}" for rule in chain.rules)
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_full(
    states: Iterable[TableState], rendered: Mapping[str, str] | None = None
) -> str:
    """Every given table replaced whole, in one transaction. `rendered`: render_table's
    text of these very states by family, when the caller has it already."""
    out: list[str] = []
    for state in states:
        out.append(f"add table {state.family} {TABLE}\n")
        out.append(f"delete table {state.family} {TABLE}\n")
        text = rendered.get(state.family) if rendered is not None else None
        out.append(text if text is not None else render_table(state))
    return "".join(out)


def _chain_decl(family: str, name: str, chain: Chain) -> str:
    head = f"add chain {family} {TABLE} {name}"
    return f"{head} {{ {chain.base} }}" if chain.base else head


def render_delta(family: str, delta: Delta) -> str:
    """One family's changes as flat nft commands ("" when nothing changed)."""
    t = f"{family} {TABLE}"
    out: list[str] = []
    # Sets that go or are declared anew: their elements go with them.
    replaced = {n for n, (before, _) in delta.sets.items() if before is not None}
    for name, (before, _after) in delta.chains.items():
        if before is not None:
            out.append(f"flush chain {t} {name}")
    for set_name, changes in delta.elements.items():
        if set_name in replaced:
            continue
        gone = [k for k, (before, _after) in changes.items() if before is not None]
        if gone:
            out.append(f"delete element {t} {set_name} {{ {', '.join(gone)} }}")
    for name, (_, gone_chain) in delta.chains.items():
        if gone_chain is None:
            out.append(f"delete chain {t} {name}")
    for name in replaced:
        before_spec = delta.sets[name][0]
        assert before_spec is not None
        out.append(f"delete {_kind(before_spec)} {t} {name}")
    for name, (_old_spec, after_spec) in delta.sets.items():
        if after_spec is not None:
            decl = "; ".join(spec_lines(after_spec))
            out.append(f"add {_kind(after_spec)} {t} {name} {{ {decl}; }}")
    for name, (before_chain, after_chain) in delta.chains.items():
        if after_chain is not None and before_chain is None:
            out.append(_chain_decl(family, name, after_chain))
    for name, (_, after_chain) in delta.chains.items():
        if after_chain is not None:
            out.extend(f"add rule {t} {name} {rule}" for rule in after_chain.rules)
    for set_name, changes in delta.elements.items():
        new = [f"{k} : {v}" if v else k for k, (_b, v) in changes.items() if v is not None]
        if new:
            out.append(f"add element {t} {set_name} {{ {', '.join(new)} }}")
    return "\n".join(out) + "\n" if out else ""
