"""NftSyncer with a fake nft: full, partial and read-back syncs, failures, conntrack."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace

import pytest

from proxy.command import Result
from proxy.nftables import names as N
from proxy.nftables.applier import ApplyError, NftApplier
from proxy.nftables.builder import BuildConfig, build_tables
from proxy.nftables.render import render_table
from proxy.nftables.syncer import NftSyncer
from proxy.nftables.table import Chain, TableState
from tests.proxy.iptables.helpers import eps, snapshot, svc

CFG = BuildConfig(hostname="node-a", cluster_cidrs=("10.1.0.0/16",))


class FakeNft:
    """Records nft and conntrack calls; holds no table unless told."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.inputs: list[str] = []
        self.fail: int = 0  # how many next `nft -f` fail
        self.conntrack_list = ""

    def __call__(self, argv: Sequence[str], stdin: bytes | None = None) -> Result:
        self.calls.append(list(argv))
        if list(argv[:2]) == ["nft", "-f"]:
            self.inputs.append((stdin or b"").decode())
            if self.fail:
                self.fail -= 1
                return Result(1, b"", b"Error: Could not process rule: No such file or directory")
            return Result(0, b"", b"")
        if list(argv[:3]) == ["nft", "-j", "list"]:
            return Result(1, b"", b"Error: No such file or directory")
        if list(argv[:2]) == ["conntrack", "-L"]:
            return Result(0, self.conntrack_list.encode(), b"")
        return Result(0, b"", b"")

    def commands(self, tool: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == tool]


def syncer() -> tuple[NftSyncer, FakeNft]:
    """Without a ruleset generation (none known): no sync record is written or read."""
    run = FakeNft()
    return NftSyncer(CFG, NftApplier(run, generation=lambda: None)), run


class RecordingNft(FakeNft):
    """Also keeps the namespace's generation (one per successful `nft -f`, as the kernel
    counts commits) and answers for the sync record as nft would list it."""

    def __init__(self) -> None:
        super().__init__()
        self.generation = 41
        self.record: tuple[int, str] | None = None

    def __call__(self, argv: Sequence[str], stdin: bytes | None = None) -> Result:
        if list(argv[:4]) == ["nft", "-j", "list", "set"]:
            self.calls.append(list(argv))
            if self.record is None:
                return Result(1, b"", b"Error: No such file or directory")
            value, comment = self.record
            elem = {"elem": {"val": value, "comment": comment}}
            listing = {"nftables": [{"set": {"name": N.SYNC_STATE, "elem": [elem]}}]}
            return Result(0, json.dumps(listing).encode(), b"")
        result = super().__call__(argv, stdin)
        if list(argv[:2]) == ["nft", "-f"] and result.rc == 0:
            self.generation += 1
            found = re.search(r'sync-state \{ (\d+) comment "([^"]+)" \}', self.inputs[-1])
            if found:
                self.record = (int(found.group(1)), found.group(2))
        return result


def recording_syncer(run: RecordingNft) -> NftSyncer:
    return NftSyncer(CFG, NftApplier(run, generation=lambda: run.generation))


def test_the_sync_record_spares_reading_back_an_unchanged_table() -> None:
    run = RecordingNft()
    snap = snapshot(svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.2")))
    first = recording_syncer(run).sync(snap)
    assert first.kind == "full"
    assert run.record is not None and run.record[0] == run.generation == 42
    assert run.inputs[0].endswith(
        "flush set ip seaway sync-state\n"
        f'add element ip seaway sync-state {{ 42 comment "{run.record[1]}" }}\n'
    )
    assert re.fullmatch(r"seaway-sync-v1 [0-9a-f]{32}", run.record[1])
    # A re-apply or restart: the generation is still the recorded one, the config the same.
    before = len(run.calls)
    again = recording_syncer(run).sync(snap)
    assert again.kind == "unchanged" and len(run.inputs) == 1  # nothing written
    assert run.calls[before:] == [["nft", "-j", "list", "set", "ip", "seaway", "sync-state"]]


def test_a_commit_since_the_record_or_another_config_reads_the_tables_back() -> None:
    run = RecordingNft()
    snap = snapshot(svc("web", "10.96.0.10", eps("10.1.0.1")))
    recording_syncer(run).sync(snap)
    run.generation += 1  # someone else committed something (maybe to seaway's tables)
    report = recording_syncer(run).sync(snap)
    assert report.kind == "full"  # the fake lists no tables: read back as absent
    assert [c for c in run.calls if c[:3] == ["nft", "-j", "list"]][-2:] == [
        ["nft", "-j", "list", "table", "ip", "seaway"],
        ["nft", "-j", "list", "table", "ip6", "seaway"],
    ]
    assert run.record == (run.generation, run.record[1])  # recorded again
    changed = snapshot(svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.3")))
    writes = len(run.inputs)
    assert recording_syncer(run).sync(changed).kind == "full"  # a digest that differs
    assert len(run.inputs) == writes + 1


def test_a_partial_sync_leaves_the_record_stale() -> None:
    run = RecordingNft()
    s = recording_syncer(run)
    s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.1"))))
    report = s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.2"))))
    assert report.kind == "partial" and "sync-state" not in run.inputs[-1]
    assert run.record is not None and run.record[0] == run.generation - 1
    assert recording_syncer(run).recorded() is None


def web(*ips: str, **kw: object) -> object:
    return svc("web", "10.96.0.10", eps(*ips), **kw)  # type: ignore[arg-type]


def test_first_sync_writes_both_tables_whole_in_one_transaction() -> None:
    s, run = syncer()
    report = s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.1"))))
    assert report.kind == "full" and report.service_ports == 1 and report.endpoints == 1
    (text,) = run.inputs
    assert text.startswith("add table ip seaway\ndelete table ip seaway\ntable ip seaway {")
    assert "add table ip6 seaway\ndelete table ip6 seaway\ntable ip6 seaway {" in text
    assert len(run.commands("nft")) == 3  # two reads, one transaction


def test_an_endpoint_change_writes_only_its_elements() -> None:
    s, run = syncer()
    other = svc("other", "10.96.0.11", eps("10.1.0.9"), node_port=30011)
    s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.2")), other))
    report = s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.3")), other))
    assert report.kind == "partial"
    assert run.inputs[-1] == (
        "delete element ip seaway hairpin { 10.1.0.2 . 10.1.0.2 }\n"
        "delete element ip seaway endpoints-tcp { 10.96.0.10 . 80 . 1 }\n"
        "add element ip seaway hairpin { 10.1.0.3 . 10.1.0.3 }\n"
        "add element ip seaway endpoints-tcp { 10.96.0.10 . 80 . 1 : 10.1.0.3 . 8080 }\n"
    )
    # one more endpoint: the dispatch goes to pick-tcp-3, which is created
    s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.3", "10.1.0.4")), other))
    text = run.inputs[-1]
    assert "add chain ip seaway pick-tcp-3\n" in text
    assert "delete element ip seaway service-ips { 10.96.0.10 . tcp . 80 }" in text
    assert "add element ip seaway service-ips { 10.96.0.10 . tcp . 80 : goto pick-tcp-3 }" in text
    # pick-tcp-2 is used by no one now: it goes; nothing else of anyone's is touched
    assert (
        "flush chain ip seaway pick-tcp-2\n" in text
        and "delete chain ip seaway pick-tcp-2\n" in text
    )
    assert text.count("flush") == 1 and "external" not in text
    assert text.index("add chain ip seaway pick-tcp-3") < text.index("goto pick-tcp-3")


def test_a_removed_service_goes_with_its_chains_after_its_elements() -> None:
    s, run = syncer()
    np = svc("np", "10.96.0.11", eps("10.1.0.9"), node_port=30011)
    s.sync(snapshot(np))
    s.sync(snapshot())
    text = run.inputs[-1]
    _, _, ext = N.policy_chains(np.name)
    assert f"flush chain ip seaway {ext}" in text
    assert text.index(f"flush chain ip seaway {ext}") < text.index("delete element")
    assert text.index("delete element ip seaway service-nodeports") < text.index(
        f"delete chain ip seaway {ext}"
    )
    assert "delete chain ip seaway pick-tcp-1" in text


def test_nothing_changed_runs_nothing() -> None:
    s, run = syncer()
    snap = snapshot(svc("web", "10.96.0.10", eps("10.1.0.1")))
    s.sync(snap)
    before = len(run.calls)
    report = s.sync(snap)
    assert report.nft_bytes == 0 and len(run.calls) == before


def test_a_failed_sync_makes_the_next_one_read_back_the_tables() -> None:
    s, run = syncer()
    s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.1"))))
    run.fail = 1
    with pytest.raises(ApplyError):
        s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.2"))))
    reads = len([c for c in run.calls if c[:3] == ["nft", "-j", "list"]])
    report = s.sync(snapshot(svc("web", "10.96.0.10", eps("10.1.0.2"))))
    assert report.kind == "full"  # the fake holds no table: written whole
    assert len([c for c in run.calls if c[:3] == ["nft", "-j", "list"]]) == reads + 2


def test_read_back_writes_only_the_differences() -> None:
    snap = snapshot(
        svc("web", "10.96.0.10", eps("10.1.0.1", "10.1.0.2")),
        svc("np", "10.96.0.11", eps("10.1.0.9"), node_port=30011),
    )
    wanted = build_tables(snap, CFG)
    s, run = syncer()
    report = s.sync(snap, kernel=wanted)
    assert report.kind == "read-back" and run.inputs == []  # equal: nothing written

    ip = wanted["ip"]
    tampered = TableState(
        "ip",
        chains={**ip.chains, "intruder": Chain(("accept",))},
        sets=dict(ip.sets),
        elements={k: dict(v) for k, v in ip.elements.items()},
    )
    np_ext = N.policy_chains(list(snap.service_ports)[1])[2]
    tampered.chains[np_ext] = Chain(("accept",))
    del tampered.elements[N.endpoints_map("tcp")]["10.96.0.10 . 80 . 1"]
    s, run = syncer()
    report = s.sync(snap, kernel={"ip": tampered, "ip6": wanted["ip6"]})
    assert report.kind == "read-back"
    assert run.inputs == [
        f"flush chain ip seaway {np_ext}\nflush chain ip seaway intruder\n"
        "delete chain ip seaway intruder\n"
        f"add rule ip seaway {np_ext} jump mark-for-masquerade\n"
        f"add rule ip seaway {np_ext} goto {N.policy_chains(list(snap.service_ports)[1])[0]}\n"
        "add element ip seaway endpoints-tcp { 10.96.0.10 . 80 . 1 : 10.1.0.2 . 8080 }\n"
    ]


def test_read_back_that_fails_writes_every_table_whole() -> None:
    snap = snapshot(svc("web", "10.96.0.10", eps("10.1.0.1")))
    wanted = build_tables(snap, CFG)
    kernel = {
        **wanted,
        "ip": replace(wanted["ip"], elements={**wanted["ip"].elements, "hairpin": {}}),
    }
    s, run = syncer()
    run.fail = 1
    report = s.sync(snap, kernel=kernel)
    assert report.kind == "full" and len(run.inputs) == 2
    assert run.inputs[0].startswith("add element ip seaway hairpin")
    assert run.inputs[1].startswith("add table ip seaway\ndelete table ip seaway\n")


def test_a_different_hook_rebuilds_that_table() -> None:
    snap = snapshot(svc("web", "10.96.0.10", eps("10.1.0.1")))
    wanted = build_tables(snap, CFG)
    chains = dict(wanted["ip"].chains)
    chains[N.NAT_PREROUTING] = Chain(
        chains[N.NAT_PREROUTING].rules, "type nat hook prerouting priority -99; policy accept;"
    )
    s, run = syncer()
    report = s.sync(snap, kernel={"ip": replace(wanted["ip"], chains=chains), "ip6": wanted["ip6"]})
    assert report.kind == "read-back"  # ip6 was equal
    assert run.inputs == [
        "add table ip seaway\ndelete table ip seaway\n" + render_table(wanted["ip"])
    ]


def test_udp_endpoint_removal_deletes_conntrack_entries_in_both_families() -> None:
    s, run = syncer()

    def dns(*ips: str) -> object:
        return svc("dns", "10.96.0.53", eps(*ips), port=53, proto="UDP", node_port=30053)

    six = svc("dns6", "fd00::53", eps("fd01::1", "fd01::2"), port=53, proto="UDP")
    s.sync(snapshot(dns("10.1.0.1", "10.1.0.2"), six))  # type: ignore[arg-type]
    assert ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.53"] in run.commands("conntrack")
    assert ["conntrack", "-D", "-f", "ipv6", "-p", "udp", "--orig-dst", "fd00::53"] in (
        run.commands("conntrack")
    )
    before = len(run.commands("conntrack"))
    six2 = replace(six, endpoints=eps("fd01::1"), all_endpoints=eps("fd01::1"))
    s.sync(snapshot(dns("10.1.0.1"), six2))  # type: ignore[arg-type]
    assert run.commands("conntrack")[before:] == [
        ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.53", "--dst-nat", "10.1.0.2"],
        ["conntrack", "-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.1.0.2"],
        [
            "conntrack",
            "-D",
            "-f",
            "ipv6",
            "-p",
            "udp",
            "--orig-dst",
            "fd00::53",
            "--dst-nat",
            "fd01::2",
        ],
    ]
