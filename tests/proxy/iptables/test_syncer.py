"""Sync state machine with a recording fake runner: full, partial, failure -> full,
UDP conntrack cleanup; flavor detection."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from proxy.iptables import chains as C
from proxy.iptables.applier import Applier, ApplyError, Result
from proxy.iptables.builder import BUILTIN_JUMPS, BuildConfig, build_ruleset
from proxy.iptables.conntrack import stale_udp_entries
from proxy.iptables.flavor import detect_flavor
from proxy.iptables.render import KernelState, render_full
from proxy.iptables.syncer import IptablesSyncer
from tests.proxy.iptables.helpers import eps, snapshot, svc
from tests.proxy.iptables.test_render import assert_declared_before_use, restore_tables


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bytes | None]] = []
        self.fail_restore = False
        self.saves: dict[str, str] = {}
        self.conntrack_list = ""

    def __call__(self, argv: Sequence[str], stdin: bytes | None = None) -> Result:
        argv = list(argv)
        self.calls.append((argv, stdin))
        if argv[0].endswith("-restore"):
            return Result(1 if self.fail_restore else 0, b"", b"iptables-restore: line 3 failed")
        if argv[0].endswith("-save"):
            table = argv[argv.index("-t") + 1] if "-t" in argv else ""
            return Result(0, self.saves.get(table, "").encode(), b"")
        if argv[:2] == ["conntrack", "-L"]:
            return Result(0, self.conntrack_list.encode(), b"")
        return Result(0, b"", b"")

    def restores(self) -> list[str]:
        return [
            (stdin or b"").decode() for argv, stdin in self.calls if argv[0].endswith("-restore")
        ]

    def commands(self, prefix: str) -> list[list[str]]:
        return [argv for argv, _ in self.calls if argv[0] == prefix]


def make(flavor: str = "legacy") -> tuple[IptablesSyncer, FakeRunner]:
    run = FakeRunner()
    ticks = iter(range(1000))
    return IptablesSyncer(
        BuildConfig(hostname="n"), Applier(flavor, run), clock=lambda: float(next(ticks))
    ), run


def test_first_sync_full_then_partial_then_nothing() -> None:
    s, run = make()
    a = svc("a", "10.96.0.1", eps("10.1.0.1"))
    b = svc("b", "10.96.0.2", eps("10.1.0.2"))
    r1 = s.sync(snapshot(a, b))
    assert r1.full and r1.service_ports == 2 and r1.endpoints == 2
    assert [c[0][0] for c in run.calls[:2]] == ["iptables-legacy-save"] * 2
    assert run.commands("iptables-legacy-restore")[0] == [
        "iptables-legacy-restore",
        "--noflush",
        "-w",
        "5",
    ]
    b2 = svc("b", "10.96.0.2", eps("10.1.0.3"))
    r2 = s.sync(snapshot(a, b2), frozenset({b2.name}))
    assert not r2.full and r2.chains_written == 2 and r2.chains_deleted == 1
    partial = run.restores()[-1]
    assert C.service_chain(a.name) not in partial and C.service_chain(b2.name) in partial
    r3 = s.sync(snapshot(a, b2), frozenset())
    assert r3.restore_bytes == 0 and len(run.restores()) == 2
    assert len(run.commands("iptables-legacy-save")) == 2  # partial syncs never read back


def test_idle_sync_checks_builtin_jumps_and_repairs_with_a_full_sync() -> None:
    run = FakeRunner()
    now = [0.0]
    s = IptablesSyncer(BuildConfig(hostname="n"), Applier("legacy", run), clock=lambda: now[0])
    snap = snapshot(svc("a", "10.96.0.1", eps("10.1.0.1")))
    s.sync(snap)
    now[0] = 10.0
    assert s.sync(snap).restore_bytes == 0  # too soon to check: nothing runs
    assert len(run.calls) == 3  # 2 saves + 1 restore of the first sync
    now[0] = 40.0
    # the fake kernel has no jumps at all: a full sync puts them back
    report = s.sync(snap)
    assert report.full and "-I PREROUTING 1" in run.restores()[-1]
    run.saves = {
        "nat": "".join(f"-A {c} {spec}\n" for t, c, spec in BUILTIN_JUMPS if t == "nat"),
        "filter": "".join(f"-A {c} {spec}\n" for t, c, spec in BUILTIN_JUMPS if t == "filter"),
    }
    now[0] = 80.0
    assert not s.sync(snap).full and len(run.restores()) == 2


def test_failure_makes_the_next_sync_full() -> None:
    s, run = make("nft")
    a = svc("a", "10.96.0.1", eps("10.1.0.1"))
    s.sync(snapshot(a))
    run.fail_restore = True
    with pytest.raises(ApplyError, match="line 3 failed"):
        s.sync(snapshot(svc("a", "10.96.0.1", eps("10.1.0.2"))))
    run.fail_restore = False
    report = s.sync(snapshot(svc("a", "10.96.0.1", eps("10.1.0.2"))))
    assert report.full
    assert run.commands("iptables-nft-restore")  # the nft tools are used


def test_udp_endpoint_removal_deletes_conntrack_entries() -> None:
    s, run = make()
    dns = svc(
        "dns", "10.96.0.53", eps("10.1.0.1", "10.1.0.2"), port=53, proto="UDP", node_port=30053
    )
    s.sync(snapshot(dns))
    first = run.commands("conntrack")  # endpoints appeared: stale no-DNAT entries cleared
    assert ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.53"] in first
    run.calls.clear()
    s.sync(
        snapshot(svc("dns", "10.96.0.53", eps("10.1.0.1"), port=53, proto="UDP", node_port=30053))
    )
    assert run.commands("conntrack") == [
        ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.53", "--dst-nat", "10.1.0.2"],
        ["conntrack", "-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.1.0.2"],
    ]


def test_tcp_changes_touch_no_conntrack() -> None:
    assert (
        stale_udp_entries(
            snapshot(svc("w", "10.96.0.1", eps("10.1.0.1", "10.1.0.2"))).service_ports,
            snapshot(svc("w", "10.96.0.1", eps("10.1.0.1"))).service_ports,
        )
        == []
    )


def test_many_conntrack_deletions_list_first() -> None:
    s, run = make()
    ports = [svc(f"u{i}", f"10.96.1.{i}", eps("10.1.0.1"), proto="UDP") for i in range(1, 30)]
    run.conntrack_list = (
        "udp      17 29 src=10.1.0.9 dst=10.96.1.7 sport=5000 dport=80 "
        "[UNREPLIED] src=10.96.1.7 dst=10.1.0.9 sport=80 dport=5000 mark=0\n"
    )
    s.sync(snapshot(*ports))
    deletes = [c for c in run.commands("conntrack") if c[1] == "-D"]
    assert deletes == [["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.1.7"]]


SAVE_WITH = "*nat\n:SEAWAY-SERVICES - [0:0]\n-A PREROUTING -j SEAWAY-SERVICES\nCOMMIT\n"


def flavor_runner(legacy: str | None, nft: str | None, default: str = "nf_tables") -> FakeRunner:
    saves = {"legacy": legacy, "nft": nft}

    class R(FakeRunner):
        def __call__(self, argv: Sequence[str], stdin: bytes | None = None) -> Result:
            self.calls.append((list(argv), stdin))
            tool = argv[0]
            for flavor, text in saves.items():
                if tool in (f"iptables-{flavor}-save", f"iptables-{flavor}"):
                    if text is None:
                        return Result(127, b"", b"not found")
                    if tool.endswith("-save"):
                        return Result(0, text.encode(), b"")
                    return Result(0 if ":SEAWAY-SERVICES" in text else 1, b"", b"")
            return Result(0, f"iptables v1.8.9 ({default})".encode(), b"")

    return R()


def detect_flavor_with(run: FakeRunner) -> str:
    return detect_flavor("auto", run, legacy_tables=lambda: "nat\nfilter\n")


def test_no_legacy_tables_means_nft_without_touching_legacy() -> None:
    run = flavor_runner("", "")
    assert detect_flavor("auto", run, legacy_tables=lambda: "") == "nft"
    assert not [c for c, _ in run.calls if "legacy" in c[0]]


def test_flavor_detection() -> None:
    rules = "*filter\n-A INPUT -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n"
    assert detect_flavor("legacy", flavor_runner("", "")) == "legacy"
    assert detect_flavor("nft", flavor_runner("", "")) == "nft"
    assert detect_flavor_with(flavor_runner(rules, "")) == "legacy"
    assert detect_flavor_with(flavor_runner("", rules)) == "nft"
    # our own chains win over rule counts
    assert detect_flavor_with(flavor_runner(rules, SAVE_WITH)) == "nft"
    # tie: whatever the plain iptables binary is
    assert detect_flavor_with(flavor_runner("", "", "legacy")) == "legacy"
    assert detect_flavor_with(flavor_runner("", "")) == "nft"
    assert detect_flavor_with(flavor_runner(None, "")) == "nft"


def test_flavor_detection_with_our_chains_needs_no_full_save() -> None:
    run = flavor_runner(SAVE_WITH, "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n")
    assert detect_flavor_with(run) == "legacy"
    assert not [c for c, _ in run.calls if c[0].endswith("-save")]


STAT = "-m statistic --mode random --probability"
NAT_SAVE = """*nat
:PREROUTING ACCEPT [0:0]
:SEAWAY-SERVICES - [0:0]
:SEAWAY-SVC-X - [0:0]
:DOCKER - [0:0]
-A PREROUTING -j SEAWAY-SERVICES
-A SEAWAY-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j SEAWAY-SVC-X
-A SEAWAY-SVC-X -m statistic --mode random --probability 0.33333333349 -j SEAWAY-SEP-A
-A SEAWAY-SVC-X -m statistic --mode random --probability 0.50000000000 -j SEAWAY-SEP-B
-A SEAWAY-SVC-X -j SEAWAY-SEP-C
-A DOCKER -j RETURN
COMMIT
"""


def test_nft_kernel_state_reads_chain_names_builtin_chains_and_only_the_nat_table() -> None:
    class R(FakeRunner):
        def __call__(self, argv: Sequence[str], stdin: bytes | None = None) -> Result:
            self.calls.append((list(argv), stdin))
            if argv[:3] == ["nft", "list", "chains"]:
                return Result(0, NFT_CHAINS.encode(), b"")
            if argv == ["iptables-nft-save", "-t", "nat"]:
                return Result(0, NAT_SAVE.encode(), b"")
            if argv[0] == "iptables-nft" and argv[-1] == "PREROUTING":
                return Result(0, b"-P PREROUTING ACCEPT\n-A PREROUTING -j SEAWAY-SERVICES\n", b"")
            return Result(0, b"", b"")

    run = R()
    state = Applier("nft", run).kernel_state()
    assert state.chains == {
        "nat": {"SEAWAY-SERVICES", "SEAWAY-SVC-X"},
        "filter": {"SEAWAY-FORWARD"},
    }
    assert state.jumps == {("nat", "PREROUTING", "SEAWAY-SERVICES")}
    assert [c for c, _ in run.calls if c[0].endswith("-save")] == [
        ["iptables-nft-save", "-t", "nat"]
    ]
    # The saved probabilities read as seaway writes 1/3 and 1/2; other agents' chains are not kept.
    assert state.rules == {
        "nat": {
            "SEAWAY-SERVICES": (
                "-A SEAWAY-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j SEAWAY-SVC-X",
            ),
            "SEAWAY-SVC-X": (
                f"-A SEAWAY-SVC-X {STAT} 0.3333333333 -j SEAWAY-SEP-A",
                f"-A SEAWAY-SVC-X {STAT} 0.5000000000 -j SEAWAY-SEP-B",
                "-A SEAWAY-SVC-X -j SEAWAY-SEP-C",
            ),
        }
    }


def test_nft_kernel_state_without_seaway_nat_chains_saves_nothing() -> None:
    class R(FakeRunner):
        def __call__(self, argv: Sequence[str], stdin: bytes | None = None) -> Result:
            self.calls.append((list(argv), stdin))
            if argv[:3] == ["nft", "list", "chains"]:
                return Result(0, b"table ip nat {\n\tchain DOCKER {\n\t}\n}\n", b"")
            return Result(0, b"", b"")

    run = R()
    state = Applier("nft", run).kernel_state()
    assert not state.rules and not [c for c, _ in run.calls if c[0].endswith("-save")]


NFT_CHAINS = """table ip filter {
\tchain SEAWAY-FORWARD {
\t}
\tchain INPUT {
\t\ttype filter hook input priority filter; policy accept;
\t}
}
table ip nat {
\tchain SEAWAY-SERVICES {
\t}
\tchain SEAWAY-SVC-X {
\t}
\tchain DOCKER {
\t}
}
table ip mangle {
\tchain SEAWAY-NOT-OURS-TABLE {
\t}
}
"""


def test_full_sync_uses_a_kernel_state_read_by_the_caller() -> None:
    s, run = make()
    stale = "SEAWAY-SVC-0123456789ABCDEF"
    kernel = KernelState(chains={"nat": {stale}, "filter": set()})
    s.sync(snapshot(svc("a", "10.96.0.1", eps("10.1.0.1"))), kernel=kernel)
    assert not run.commands("iptables-legacy-save")  # not read again
    (text,) = run.restores()
    assert f"-X {stale}" in text


def _sorted_tables(text: str) -> dict[str, list[str]]:
    return {t: sorted(lines) for t, lines in restore_tables(text).items()}


def test_streamed_full_sync_writes_what_render_full_renders() -> None:
    """The full sync writes each service port's chains as they are built; the restore
    input holds the same lines as the one-piece rendering (order aside), and every
    chain is declared before it is used."""
    cfg = BuildConfig(hostname="n", cluster_cidrs=("10.1.0.0/16",))
    snap = snapshot(
        svc("a", "10.96.0.1", eps("10.1.0.1", "10.1.0.2"), affinity=60),
        svc("b", "10.96.0.2", eps("10.1.0.3", node="n"), node_port=30080, etp="Local"),
        svc("c", "10.96.0.3", eps("10.1.0.4", node="m"), itp="Local", external_ips=("1.2.3.4",)),
        svc("d", "10.96.0.4"),  # no endpoints: REJECT in filter
    )
    stale = "SEAWAY-SVC-0123456789ABCDEF"
    kernel = KernelState(chains={"nat": {stale, C.SERVICES}, "filter": set()})
    for flavor in ("legacy", "nft"):
        run = FakeRunner()
        report = IptablesSyncer(cfg, Applier(flavor, run)).sync(snap, kernel=kernel)
        (streamed,) = run.restores()
        expected = render_full(build_ruleset(snap, cfg), kernel, nft=flavor == "nft")
        assert _sorted_tables(streamed) == _sorted_tables(expected.text)
        assert report.full and report.restore_bytes == len(streamed.encode())
        assert (report.chains_written, report.chains_deleted) == (
            expected.chains_written,
            expected.chains_deleted,
        )
        nat = streamed.split("*filter")[0].splitlines()
        assert_declared_before_use(nat)
        assert nat[-2:] == [f"-X {stale}", "COMMIT"]


def test_streamed_full_sync_asks_nft_for_all_chains_when_big() -> None:
    many = [svc(f"s{i}", f"10.96.{i // 250}.{i % 250 + 1}", eps("10.1.0.1")) for i in range(600)]
    for ports, hinted in ((many[:1], False), (many, True)):
        s, run = make("nft")
        s.sync(snapshot(*ports))
        assert ("-Z" in run.restores()[0].splitlines()) == hinted


class _Unreadable(tuple):  # type: ignore[type-arg]
    def __iter__(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("builder bug")


def test_a_build_failure_midway_applies_nothing_and_next_sync_is_full() -> None:
    s, run = make("nft")  # the streamed full sync
    good = svc("a", "10.96.0.1", eps("10.1.0.1"))
    bad = dataclasses.replace(svc("b", "10.96.0.2"), endpoints=_Unreadable(eps("10.1.0.2")))
    with pytest.raises(RuntimeError, match="builder bug"):
        s.sync(snapshot(good, bad))  # "a" was written to the sink before "b" failed
    assert not run.restores()  # the half-written input was dropped, never restored
    assert s.sync(snapshot(good)).full and len(run.restores()) == 1
