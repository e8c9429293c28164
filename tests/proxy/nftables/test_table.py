"""Assembly (contributions counted, changes recorded) and whole-table diff."""

from __future__ import annotations

from proxy.nftables.table import Assembly, Chain, Delta, Fragment, SetSpec, TableState, diff

FIXED = TableState(
    "ip",
    chains={"services": Chain(("jump x",))},
    sets={"hairpin": SetSpec(("ipv4_addr", "ipv4_addr")), "m": SetSpec(("ipv4_addr",), "verdict")},
    elements={"hairpin": {}, "m": {}},
)


def frag(*elements: tuple[str, str, str], chains: tuple[tuple[str, Chain], ...] = ()) -> Fragment:
    return Fragment(chains=chains, elements=elements)


def test_shared_elements_go_with_their_last_contributor() -> None:
    asm = Assembly(FIXED)
    a = frag(("hairpin", "10.1.0.1 . 10.1.0.1", ""), ("m", "1.1.1.1", "goto a"))
    b = frag(("hairpin", "10.1.0.1 . 10.1.0.1", ""), ("m", "2.2.2.2", "goto b"))
    asm.add(a)
    asm.add(b)
    first = asm.take_delta()
    assert first.elements["hairpin"] == {"10.1.0.1 . 10.1.0.1": (None, "")}
    asm.remove(a)
    delta = asm.take_delta()
    assert delta.elements == {"m": {"1.1.1.1": ("goto a", None)}}  # hairpin stays (b has it)
    asm.remove(b)
    delta = asm.take_delta()
    assert delta.elements["hairpin"] == {"10.1.0.1 . 10.1.0.1": ("", None)}
    assert asm.state.elements == {"hairpin": {}, "m": {}}


def test_conflicting_map_values_resolve_to_the_smallest_and_back() -> None:
    asm = Assembly(FIXED)
    asm.add(frag(("m", "1.1.1.1", "goto z")))
    asm.take_delta()
    asm.add(frag(("m", "1.1.1.1", "goto a")))
    assert asm.take_delta().elements == {"m": {"1.1.1.1": ("goto z", "goto a")}}
    asm.remove(frag(("m", "1.1.1.1", "goto a")))
    assert asm.take_delta().elements == {"m": {"1.1.1.1": ("goto a", "goto z")}}


def test_shared_chains_are_counted_and_a_swap_records_only_the_net_change() -> None:
    pick = ("pick-2", Chain(("dnat ...",)))
    asm = Assembly(FIXED)
    old = frag(("m", "1.1.1.1", "goto pick-2"), chains=(pick,))
    other = frag(("m", "2.2.2.2", "goto pick-2"), chains=(pick,))
    asm.add(old)
    asm.add(other)
    asm.take_delta()
    # a swap that changes nothing records nothing
    asm.remove(old)
    asm.add(old)
    assert asm.take_delta().empty()
    asm.remove(old)
    assert asm.take_delta().chains == {}  # pick-2 still used by `other`
    asm.remove(other)
    assert asm.take_delta().chains == {"pick-2": (pick[1], None)}


def test_not_recording_leaves_the_state_right() -> None:
    asm = Assembly(FIXED)
    asm.recording(False)
    asm.add(frag(("m", "1.1.1.1", "goto a")))
    assert asm.take_delta().empty()
    assert asm.state.elements["m"] == {"1.1.1.1": "goto a"}
    asm.recording(True)
    asm.remove(frag(("m", "1.1.1.1", "goto a")))
    assert asm.take_delta().elements == {"m": {"1.1.1.1": ("goto a", None)}}


def test_diff_of_whole_tables() -> None:
    before = TableState(
        "ip",
        chains={"a": Chain(("x",)), "gone": Chain(("y",))},
        sets={"s": SetSpec(("ipv4_addr",)), "old": SetSpec(("ipv4_addr",))},
        elements={"s": {"1.1.1.1": "", "2.2.2.2": ""}, "old": {"3.3.3.3": ""}},
    )
    after = TableState(
        "ip",
        chains={"a": Chain(("x", "z")), "new": Chain(())},
        sets={"s": SetSpec(("ipv4_addr",)), "t": SetSpec(("ipv4_addr",), flags=("interval",))},
        elements={"s": {"2.2.2.2": "", "4.4.4.4": ""}, "t": {"10.0.0.0/8": ""}},
    )
    d = diff(before, after)
    assert d.chains == {
        "a": (Chain(("x",)), Chain(("x", "z"))),
        "new": (None, Chain(())),
        "gone": (Chain(("y",)), None),
    }
    assert set(d.sets) == {"old", "t"}
    assert d.elements["s"] == {"4.4.4.4": (None, ""), "1.1.1.1": ("", None)}
    assert d.elements["t"] == {"10.0.0.0/8": (None, "")}
    assert diff(after, after).empty()
    # "dynamic" is implied by use: the kernel does not report it, and that is no change
    kernel = TableState("ip", sets={"aff": SetSpec(("ipv4_addr",), flags=("timeout",), timeout=9)})
    wanted = TableState(
        "ip", sets={"aff": SetSpec(("ipv4_addr",), flags=("dynamic", "timeout"), timeout=9)}
    )
    assert diff(kernel, wanted).sets == {}


def test_delta_counts() -> None:
    d = Delta()
    d.chain("a", None, Chain(("x",)))
    d.chain("b", Chain(("x",)), None)
    d.element("s", "k", None, "")
    assert d.counts() == (1, 1, 1)
