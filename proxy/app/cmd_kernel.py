"""`seaway apply | rules | trace | cleanup` for the kernel dataplanes: iptables here
(both IP families: iptables for IPv4, ip6tables for IPv6, when usable on this host),
nftables in kernel_nft.py."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import logging
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from discovery.snapshot import Snapshot
from proxy.app.options import (
    Options,
    add_gateway_flags,
    add_ingress_nginx_flags,
    add_mode_flags,
    add_source_flags,
    options_from_args,
)

if TYPE_CHECKING:
    from proxy.iptables.family import IPFamily
    from proxy.iptables.render import KernelState

log = logging.getLogger(__name__)

KERNEL_MODES = ("iptables", "nftables")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "apply",
        help="program the kernel once from the config, then exit",
        description="Build the ruleset from the config and apply it with one sync (one "
        "atomic iptables-restore, or one nft -f transaction with --proxy-mode nftables), "
        "then exit; prints counts and a timing breakdown. What seaway already programmed "
        "is read back first and only the differences are written.",
    )
    _common(p)
    p.set_defaults(func=cmd_apply)

    p = subparsers.add_parser(
        "rules",
        help="print the ruleset a mode would apply, touching nothing",
        description="Print the iptables-restore input (or, with --proxy-mode nftables, the "
        "nft -f input) seaway would apply for the config. Changes nothing and needs no root.",
    )
    _common(p)
    p.set_defaults(func=cmd_rules)

    p = subparsers.add_parser(
        "trace",
        help="explain where a packet (--src/--dst) or an HTTP request (--url) would go",
        description="Packets: simulate a new connection through the iptables rules (or "
        "nftables tables, with --proxy-mode nftables) seaway would apply, and print the "
        "rules hit and each outcome (DNAT target with its probability, REJECT/DROP, "
        "masquerade or not). Requests (--url, with --method and --header when routes match "
        "on them): route it as the L7 proxy would, on the Gateway listener of the URL's "
        "port (--listener to pick one) or the Ingress listener, and print the Ingress or "
        "HTTPRoute rule that matched, what its filters (ingress-nginx annotations, HTTPRoute "
        "filters) do to the request (HTTPS redirect, rewritten target, canary chosen, "
        "CORS...), the Service port and its endpoints (or the redirect or fixed answer, or "
        "why 404/500/503), and why every other route tried lost. Touches nothing.",
    )
    _common(p)
    add_ingress_nginx_flags(p)
    add_gateway_flags(p)
    p.add_argument("--src", metavar="IP", help="source address of the packet")
    p.add_argument("--dst", metavar="IP:PORT", help="destination address and port")
    p.add_argument(
        "--url",
        metavar="URL",
        help="trace an HTTP request instead: http(s)://HOST[:PORT]/PATH[?QUERY] as a client "
        "sends it",
    )
    p.add_argument(
        "-X",
        "--method",
        default="GET",
        metavar="METHOD",
        help="the request's method, with --url (default GET)",
    )
    p.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header, with --url (repeatable; e.g. -H 'X-Canary: always')",
    )
    p.add_argument(
        "--ingress-controller",
        default="seaway.dev/ingress",
        metavar="NAME",
        help="IngressClass spec.controller seaway answers to (as for `seaway run`)",
    )
    p.add_argument(
        "--watch-ingress-without-class",
        action="store_true",
        help="also route Ingresses that name no class (as for `seaway run`)",
    )
    p.add_argument(
        "--listener",
        default="",
        metavar="ADDRESS:PORT",
        help="with --url: the socket the request arrives on, a Gateway listener's "
        "ADDRESS:PORT or 'ingress' (default: the Gateway listener on the URL's port, else "
        "the Ingress listener)",
    )
    p.add_argument("--proto", choices=("tcp", "udp", "sctp"), default="tcp", help="default tcp")
    p.add_argument(
        "--node-ip",
        action="append",
        default=None,
        metavar="IP",
        help="an address of this node (repeatable; default: the addresses of this host)",
    )
    p.set_defaults(func=cmd_trace)

    p = subparsers.add_parser(
        "cleanup",
        help="remove every rule and chain seaway programmed",
        description="Remove every SEAWAY- chain and every jump to one, in both iptables "
        "flavors (legacy and nft); with --proxy-mode nftables, the tables ip seaway and ip6 "
        "seaway. Needs root.",
    )
    add_mode_flags(p, default_mode="iptables")
    p.set_defaults(func=cmd_cleanup)


def _common(p: argparse.ArgumentParser) -> None:
    add_source_flags(p)
    add_mode_flags(p, default_mode="iptables")


def _check_mode(options: Options) -> str | None:
    if options.proxy_mode not in KERNEL_MODES:
        return (
            "seaway: this command supports --proxy-mode iptables or nftables, not "
            f"{options.proxy_mode}"
        )
    if not options.config:
        return "seaway: -c/--config PATH is required"
    return None


def _load(options: Options) -> Snapshot | None:
    from discovery.manifest import load_path
    from discovery.snapshot_builder import build_snapshot

    assert options.config is not None
    result = load_path(options.config)
    if result.errors:
        for err in result.errors:
            print(f"error: {err}", file=sys.stderr)
        print(
            f"seaway: {len(result.errors)} error(s) in {options.config}; nothing applied",
            file=sys.stderr,
        )
        return None
    return build_snapshot(
        result.objects(), options.node_topology(), nginx=options.ingress_nginx_mode()
    )


def _prepare(args: argparse.Namespace) -> tuple[Options, Snapshot | None, float]:
    options = options_from_args(args)
    problem = _check_mode(options)
    if problem:
        print(problem, file=sys.stderr)
        return options, None, 0.0
    t0 = time.perf_counter()
    snapshot = _load(options)
    return options, snapshot, time.perf_counter() - t0


def _need_root(what: str) -> bool:
    if os.geteuid() != 0:
        print(f"seaway: {what} needs root (it programs the kernel)", file=sys.stderr)
        return False
    return True


def _read_kernel(requested_flavor: str) -> tuple[str, KernelState, KernelState | None]:
    """The flavor, and what the kernel holds for IPv4 and (None: ip6tables unusable) IPv6."""
    from proxy.iptables.applier import Applier
    from proxy.iptables.flavor import detect_flavor

    flavor = detect_flavor(requested_flavor)
    v6 = Applier(flavor, family=6)
    return flavor, Applier(flavor).kernel_state(), v6.kernel_state() if v6.available() else None


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def cmd_apply(args: argparse.Namespace) -> int:
    """One sync and done: no cyclic GC at all (nothing here makes cycles worth collecting;
    re-enabled at the end, it would walk a big config's million objects once more), and
    exit at once, without freeing them one by one (~0.1 s each at 10,000 services)."""
    gc.disable()
    code = _apply(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _apply(args: argparse.Namespace) -> int:
    if not _need_root("apply"):
        return 1
    started = time.perf_counter()
    options = options_from_args(args)
    problem = _check_mode(options)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    if options.proxy_mode == "nftables":
        from proxy.app import kernel_nft

        return kernel_nft.apply(options, _load, started)
    from proxy.iptables.applier import Applier
    from proxy.iptables.syncer import IptablesSyncer

    # One sync, then exit: nothing here makes cycles worth collecting, and the cyclic
    # GC would walk the million objects of a 10,000-service config again and again.
    # The flavor and what the kernel holds do not depend on the config: they are read
    # in a thread while the config is parsed (the thread mostly waits for iptables
    # processes, which run on the other core).
    with _gc_paused(), ThreadPoolExecutor(1) as pool:
        probe = pool.submit(_read_kernel, options.iptables_flavor)
        t0 = time.perf_counter()
        snapshot = _load(options)
        parse_s = time.perf_counter() - t0
        if snapshot is None:
            return 1
        try:
            t0 = time.perf_counter()
            flavor, kernel, kernel6 = probe.result()
            wait_s = time.perf_counter() - t0
            build = options.iptables_config().build
            syncer = IptablesSyncer(build, Applier(flavor))
            report = syncer.sync(snapshot, kernel=kernel)
            if kernel6 is not None:
                syncer6 = IptablesSyncer(build.for_family(6), Applier(flavor, family=6))
                report6 = syncer6.sync(snapshot, kernel=kernel6)
        except Exception as exc:
            print(f"seaway: apply failed: {exc}", file=sys.stderr)
            return 1
    total = time.perf_counter() - started
    print(
        f"applied {report.service_ports} service ports, {report.endpoints} endpoints: "
        f"{report.chains} chains, {report.rules} rules ({flavor} flavor), "
        f"{report.chains_written} chains written, {report.chains_deleted} deleted; "
        f"parse {parse_s:.3f} s, build {report.build_seconds:.3f} s, "
        f"apply {report.apply_seconds + wait_s:.3f} s (flavor and kernel state read during "
        f"parse, waited {wait_s:.3f} s), total {total:.3f} s"
    )
    if kernel6 is None:
        print(f"ip6tables-{flavor}: not usable here, IPv6 addresses not programmed")
    else:
        print(
            f"ip6tables: applied {report6.service_ports} service ports, "
            f"{report6.endpoints} endpoints: {report6.chains} chains, {report6.rules} rules, "
            f"{report6.chains_written} chains written, {report6.chains_deleted} deleted; "
            f"build {report6.build_seconds:.3f} s, apply {report6.apply_seconds:.3f} s"
        )
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    from proxy.iptables.builder import build_ruleset
    from proxy.iptables.render import render_full

    options, snapshot, _ = _prepare(args)
    if snapshot is None:
        return 1
    if options.proxy_mode == "nftables":
        from proxy.app import kernel_nft

        return kernel_nft.rules(options, snapshot)
    build = options.iptables_config().build
    ruleset = build_ruleset(snapshot, build)
    sys.stdout.write(render_full(ruleset, None, nft=False).text)
    if _has_ipv6(snapshot):
        ruleset6 = build_ruleset(snapshot, build.for_family(6))
        sys.stdout.write("# ip6tables-restore input (IPv6)\n")
        sys.stdout.write(render_full(ruleset6, None, nft=False).text)
    return 0


def _has_ipv6(snapshot: Snapshot) -> bool:
    return any(":" in ip for spi in snapshot.service_ports.values() for ip in spi.cluster_ips)


def _host_addresses() -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr()]


def cmd_trace(args: argparse.Namespace) -> int:
    from proxy.iptables.builder import build_ruleset
    from proxy.iptables.simulator import Simulator, format_trace

    if args.url is not None:
        return _trace_request(args)
    if args.src is None or args.dst is None:
        print("seaway: trace: give --src IP and --dst IP:PORT, or --url URL", file=sys.stderr)
        return 2
    host, sep, port = args.dst.rpartition(":")
    host = host.strip("[]")
    try:
        src = ipaddress.ip_address(args.src)
        dst = ipaddress.ip_address(host)
        dport = int(port)
        if not sep or not 0 < dport < 65536 or src.version != dst.version:
            raise ValueError(port)
    except ValueError:
        print(
            f"seaway: trace: --src IP and --dst IP:PORT ([IP]:PORT for IPv6, both of one "
            f"family) expected, got {args.src!r} {args.dst!r}",
            file=sys.stderr,
        )
        return 2
    options, snapshot, _ = _prepare(args)
    if snapshot is None:
        return 1
    local = {str(ipaddress.ip_address(a)) for a in (args.node_ip or _host_addresses())}
    print(
        f"trace {args.proto} {args.src} -> {args.dst} (node addresses: {', '.join(sorted(local))})"
    )
    if options.proxy_mode == "nftables":
        from proxy.app import kernel_nft

        print(kernel_nft.trace(options, snapshot, str(src), str(dst), dport, args.proto, local))
        return 0
    # The rules of the packet's family (ip6tables' for IPv6), addresses as rules spell them.
    build = options.iptables_config().build.for_family(6 if dst.version == 6 else 4)
    ruleset = build_ruleset(snapshot, build)
    outcomes = Simulator(ruleset, local).trace(str(src), str(dst), dport, args.proto)
    print(format_trace(outcomes))
    return 0


def _trace_request(args: argparse.Namespace) -> int:
    """`seaway trace --url`: the L7 route, in any --proxy-mode (Ingresses are served in
    every mode)."""
    from ingress.trace import TraceError, split_url, trace_request

    try:
        split_url(args.url)
    except TraceError as exc:
        print(f"seaway: trace: {exc}", file=sys.stderr)
        return 2
    headers = []
    for field in args.header:
        name, colon, value = field.partition(":")
        if not colon or not name.strip():
            print(f"seaway: trace: --header {field!r}: expected 'NAME: VALUE'", file=sys.stderr)
            return 2
        headers.append((name.strip(), value.strip()))
    options = options_from_args(args)
    if not options.config:
        print("seaway: -c/--config PATH is required", file=sys.stderr)
        return 2
    snapshot = _load(options)
    if snapshot is None:
        return 1
    try:
        lines = trace_request(
            snapshot,
            args.url,
            options.ingress_controller,
            options.watch_ingress_without_class,
            args.method,
            headers,
            options.gateway_config(on_this_node=False),
            args.listener,
        )
    except TraceError as exc:
        print(f"seaway: trace: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def cleanup_flavor(flavor: str, family: IPFamily = 4) -> tuple[int, int] | None:
    """Remove seaway's chains and jumps in one flavor and family; (chains, jumps) removed,
    None if the tools are absent."""
    from proxy.iptables.applier import Applier, run_command
    from proxy.iptables.flavor import legacy_tables_loaded
    from proxy.iptables.render import (
        TABLES,
        KernelState,
        builtin_jump_lines,
        parse_save,
        render_cleanup,
    )

    applier = Applier(flavor, run_command, family)
    probe = applier.run([applier.tool("iptables"), "--version"])
    if probe.rc == 127:
        return None
    if flavor == "legacy" and not legacy_tables_loaded(family):
        return 0, 0  # nothing there; listing would only create empty legacy tables
    state = KernelState()
    jumps: dict[str, list[str]] = {}
    for table in TABLES:
        text = applier.save(table)
        parse_save(table, text, state)
        jumps[table] = builtin_jump_lines(table, text)
    script = render_cleanup(state, jumps, nft=applier.nft)
    applier.restore(script)
    return sum(len(c) for c in state.chains.values()), sum(len(j) for j in jumps.values())


def cmd_cleanup(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if options.proxy_mode not in KERNEL_MODES:
        print(
            f"seaway: cleanup supports --proxy-mode iptables or nftables, not {options.proxy_mode}",
            file=sys.stderr,
        )
        return 2
    if not _need_root("cleanup"):
        return 1
    if options.proxy_mode == "nftables":
        from proxy.app import kernel_nft

        return kernel_nft.cleanup()
    return cleanup_iptables()


def cleanup_all() -> int:
    """Remove everything seaway programmed, iptables and nftables (`seaway run --cleanup`)."""
    from proxy.app import kernel_nft

    return max(cleanup_iptables(), kernel_nft.cleanup())


def cleanup_iptables() -> int:
    """Remove seaway's iptables and ip6tables rules in both flavors."""
    status = 0
    families: tuple[IPFamily, ...] = (4, 6)
    for family in families:
        prefix = "iptables" if family == 4 else "ip6tables"
        for flavor in ("legacy", "nft"):
            what = flavor if family == 4 else f"{flavor} (IPv6)"
            try:
                done = cleanup_flavor(flavor, family)
            except Exception as exc:
                print(f"seaway: cleanup ({what}) failed: {exc}", file=sys.stderr)
                status = 1
                continue
            if done is None:
                print(f"{what}: {prefix}-{flavor} not installed, skipped")
            else:
                print(f"{what}: removed {done[0]} chains and {done[1]} jumps")
    return status
