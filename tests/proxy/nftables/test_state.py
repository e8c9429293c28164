"""Reading the kernel's table back: `nft -j list table` output (captured from nft 1.0.6
after loading golden/layout.nft) -> the TableState the builder wants; unknown rules."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from proxy.nftables.builder import build_tables
from proxy.nftables.state import Unreadable, format_rule, parse_table
from proxy.nftables.table import diff
from tests.proxy.nftables.test_builder import CFG, layout_snapshot

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("family", ["ip", "ip6"])
def test_the_golden_layout_reads_back_as_built(family: str) -> None:
    kernel = parse_table(family, (GOLDEN / f"layout.{family}.json").read_bytes())
    wanted = build_tables(layout_snapshot(), CFG)[family]
    d = diff(kernel, wanted)
    assert d.empty(), (d.chains, d.sets, d.elements)
    assert kernel.rule_count() == wanted.rule_count()


def test_learned_affinity_clients_are_not_configuration() -> None:
    doc = {
        "nftables": [
            {
                "set": {
                    "family": "ip",
                    "name": "affinity-X",
                    "table": "seaway",
                    "type": "ipv4_addr",
                    "flags": ["timeout"],
                    "timeout": 60,
                    "elem": [{"elem": {"val": "10.1.0.7", "timeout": 60, "expires": 59}}],
                }
            }
        ]
    }
    state = parse_table("ip", orjson.dumps(doc))
    assert state.elements["affinity-X"] == {}
    assert state.sets["affinity-X"].timeout == 60


def test_a_rule_seaway_does_not_write_reads_as_no_rule_of_seaways() -> None:
    doc = {
        "nftables": [
            {"chain": {"family": "ip", "table": "seaway", "name": "services", "handle": 1}},
            {
                "rule": {
                    "chain": "services",
                    "handle": 2,
                    "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"accept": None}],
                }
            },
            {"rule": {"chain": "services", "handle": 3, "expr": [{"jump": {"target": "x"}}]}},
        ]
    }
    state = parse_table("ip", orjson.dumps(doc))
    assert state.chains["services"].rules == ("# unreadable rule (handle 2)", "jump x")
    with pytest.raises(Unreadable):
        format_rule([{"match": {"op": "<", "left": {"meta": {"key": "mark"}}, "right": 1}}])
