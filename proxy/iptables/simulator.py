"""Pure packet tracer over the rules seaway emits (the matches and targets it uses, only).

A packet is walked as the kernel would for a new connection: nat PREROUTING (or nat
OUTPUT when the node itself sends), routing, filter INPUT / FORWARD / OUTPUT, nat
POSTROUTING. `-m statistic --mode random` forks the walk, so the result is a list of
outcomes with probabilities (summing to 1): DNAT target or none, the filter verdict, and
whether the packet is masqueraded. The built-in chains hold only seaway's jumps.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field, replace

from proxy.iptables import chains as C
from proxy.iptables.builder import BUILTIN_JUMPS, Ruleset

TERMINAL = ("ACCEPT", "DROP", "REJECT", "DNAT", "MASQUERADE")


class SimulatorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    chain: str
    text: str
    src: str | None = None
    src_neg: bool = False
    dst: str | None = None
    dst_neg: bool = False
    proto: str | None = None
    dport: int | None = None
    dst_local: bool | None = None  # addrtype --dst-type LOCAL (False when negated)
    src_local: bool | None = None
    probability: float | None = None
    mark: tuple[int, int] | None = None
    mark_neg: bool = False
    recent_check: str | None = None  # list name for --rcheck
    recent_set: str | None = None
    ctstate: tuple[str, ...] = ()
    target: str = ""
    to_destination: str | None = None
    or_mark: int | None = None
    xor_mark: int | None = None


def parse_rule(line: str) -> Rule:
    """Parse one "-A CHAIN ..." line as seaway writes it."""
    tokens = shlex.split(line)
    if len(tokens) < 2 or tokens[0] not in ("-A", "-I"):
        raise SimulatorError(f"not a rule: {line!r}")
    chain = tokens[1]
    i = 2
    if tokens[0] == "-I" and i < len(tokens) and tokens[i].isdigit():
        i += 1
    f: dict[str, object] = {"chain": chain, "text": line}
    neg = False
    while i < len(tokens):
        t = tokens[i]
        arg = tokens[i + 1] if i + 1 < len(tokens) else ""
        step = 2
        if t == "!":
            neg = True
            i += 1
            continue
        if t == "-s":
            f["src"], f["src_neg"] = arg, neg
        elif t == "-d":
            f["dst"], f["dst_neg"] = arg, neg
        elif t == "-p":
            f["proto"] = arg
        elif t == "--dport":
            f["dport"] = int(arg)
        elif t == "--dst-type":
            f["dst_local"] = not neg
        elif t == "--src-type":
            f["src_local"] = not neg
        elif t == "--probability":
            f["probability"] = float(arg)
        elif t == "--mark":
            value, _, mask = arg.partition("/")
            f["mark"] = (int(value, 0), int(mask or "0xffffffff", 0))
            f["mark_neg"] = neg
        elif t == "--name":
            f["_recent_name"] = arg
        elif t == "--rcheck":
            f["recent_check"] = f["_recent_name"]
            step = 1
        elif t == "--set":
            f["recent_set"] = f["_recent_name"]
            step = 1
        elif t == "--ctstate":
            f["ctstate"] = tuple(arg.split(","))
        elif t == "-j":
            f["target"] = arg
        elif t == "--to-destination":
            f["to_destination"] = arg
        elif t == "--or-mark":
            f["or_mark"] = int(arg, 0)
        elif t == "--xor-mark":
            f["xor_mark"] = int(arg, 0)
        elif t in ("--rsource", "--reap", "--random-fully"):
            step = 1
        elif t in ("-m", "--comment", "--mode", "--mask", "--seconds"):
            pass
        else:
            raise SimulatorError(f"unsupported option {t!r} in {line!r}")
        neg = False
        i += step
    f.pop("_recent_name", None)
    return Rule(**f)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Packet:
    src: str
    dst: str
    dport: int
    proto: str = "tcp"
    mark: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    probability: float
    dnat: str | None  # "ip:port" when DNATed
    verdict: str  # ACCEPT, REJECT or DROP
    masquerade: bool
    hits: tuple[str, ...] = ()
    recent_set: tuple[str, ...] = ()


@dataclass(slots=True)
class _Walk:
    prob: float
    pkt: Packet
    hits: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    verdict: str | None = None  # terminal target reached in the current table
    dnat: str | None = None
    masq: bool = False

    def fork(self, prob: float) -> _Walk:
        return _Walk(
            prob, self.pkt, list(self.hits), list(self.recent), self.verdict, self.dnat, self.masq
        )


def _in(ip: str, net: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False)


class Simulator:
    """Walks packets through a Ruleset. `local` = the node's own addresses."""

    def __init__(
        self,
        ruleset: Ruleset,
        local: Container[str],
        recent: Mapping[str, Container[str]] | None = None,
    ) -> None:
        self.local = local
        self.recent = recent or {}
        self.tables: dict[str, dict[str, list[Rule]]] = {}
        for table, chains in ruleset.tables.items():
            t = self.tables.setdefault(table, {})
            for chain, lines in chains.items():
                t[chain] = [parse_rule(line) for line in lines]
        for table, builtin, spec in BUILTIN_JUMPS:
            self.tables.setdefault(table, {}).setdefault(builtin, []).append(
                parse_rule(f"-A {builtin} {spec}")
            )

    # -- matching -------------------------------------------------------------------
    def _matches(self, r: Rule, p: Packet) -> bool:
        if r.src is not None and _in(p.src, r.src) == r.src_neg:
            return False
        if r.dst is not None and _in(p.dst, r.dst) == r.dst_neg:
            return False
        if r.proto is not None and r.proto != p.proto:
            return False
        if r.dport is not None and r.dport != p.dport:
            return False
        if r.dst_local is not None and (p.dst in self.local) != r.dst_local:
            return False
        if r.src_local is not None and (p.src in self.local) != r.src_local:
            return False
        if r.mark is not None and ((p.mark & r.mark[1]) == r.mark[0]) == r.mark_neg:
            return False
        if r.ctstate and "NEW" not in r.ctstate:
            return False
        if r.recent_check is not None:
            members = self.recent.get(r.recent_check, ())
            if p.src not in members:
                return False
        return True

    # -- walking --------------------------------------------------------------------
    def _chain(self, table: str, chain: str, w: _Walk, depth: int = 0) -> Iterator[_Walk]:
        """Yield walks that leave this chain: terminal (w.verdict set) or fallen through."""
        if depth > 32:
            raise SimulatorError(f"jump loop through {chain}")
        rules = self.tables.get(table, {}).get(chain)
        if rules is None:
            raise SimulatorError(f"jump to undefined chain {table}/{chain}")
        pending = [(0, w)]
        while pending:
            start, cur = pending.pop()
            done = False
            for idx in range(start, len(rules)):
                r = rules[idx]
                if not self._matches(r, cur.pkt):
                    continue
                if r.probability is not None:
                    miss = cur.fork(cur.prob * (1 - r.probability))
                    if miss.prob > 0:
                        pending.append((idx + 1, miss))
                    cur.prob *= r.probability
                cur.hits.append(f"{table} {r.text}")
                if r.recent_set:
                    cur.recent.append(r.recent_set)
                if r.target == "RETURN":
                    yield cur
                    done = True
                    break
                outcome = self._target(table, r, cur, depth)
                if outcome is None:
                    continue
                for after in outcome:
                    if after.verdict is not None:
                        yield after
                    else:
                        # RETURN from the callee or fell through it: continue here.
                        pending.append((idx + 1, after))
                done = True
                break
            if not done:
                yield cur

    def _target(self, table: str, r: Rule, w: _Walk, depth: int) -> list[_Walk] | None:
        """None: continue with the next rule; else the walks after the target."""
        t = r.target
        if t == "MARK":
            mark = w.pkt.mark
            if r.or_mark is not None:
                mark |= r.or_mark
            if r.xor_mark is not None:
                mark ^= r.xor_mark
            w.pkt = replace(w.pkt, mark=mark)
            return None
        if t == "DNAT":
            assert r.to_destination is not None
            ip, _, port = r.to_destination.rpartition(":")
            w.pkt = replace(w.pkt, dst=ip.strip("[]"), dport=int(port))
            w.dnat = r.to_destination
            w.verdict = "ACCEPT"
            return [w]
        if t == "MASQUERADE":
            w.masq = True
            w.verdict = "ACCEPT"
            return [w]
        if t in ("ACCEPT", "DROP", "REJECT"):
            w.verdict = t
            return [w]
        if not C.is_ours(t):
            raise SimulatorError(f"unsupported target {t!r} in {r.text!r}")
        return [
            # A walk that fell off the end of the callee returns here (verdict None).
            x
            for x in self._chain(table, t, w, depth + 1)
        ]

    def _table(self, table: str, chain: str, walks: list[_Walk]) -> list[_Walk]:
        out: list[_Walk] = []
        for w in walks:
            if w.verdict in ("DROP", "REJECT"):
                out.append(w)
                continue
            w.verdict = None
            for after in self._chain(table, chain, w):
                if after.verdict is None:
                    after.verdict = "ACCEPT"  # built-in chain policy
                out.append(after)
        return out

    def trace(self, src: str, dst: str, dport: int, proto: str = "tcp") -> list[Outcome]:
        """Outcomes of a new connection from `src` to `dst:dport`."""
        start = _Walk(1.0, Packet(src, dst, dport, proto.lower()))
        from_node = src in self.local
        walks = self._table(C.NAT, "OUTPUT" if from_node else "PREROUTING", [start])
        results: list[Outcome] = []
        for w in walks:
            if w.verdict != "ACCEPT":
                results.append(self._outcome(w))
                continue
            to_local = w.pkt.dst in self.local
            if from_node:
                stage = self._table(C.FILTER, "OUTPUT", [w])
                stage = self._table(C.FILTER, "INPUT", stage) if to_local else self._post(stage)
            elif to_local:
                stage = self._table(C.FILTER, "INPUT", [w])
            else:
                stage = self._post(self._table(C.FILTER, "FORWARD", [w]))
            results.extend(self._outcome(x) for x in stage)
        return results

    def _post(self, walks: list[_Walk]) -> list[_Walk]:
        passed = [w for w in walks if w.verdict == "ACCEPT"]
        blocked = [w for w in walks if w.verdict != "ACCEPT"]
        for w in passed:
            w.masq = False
        return blocked + self._table(C.NAT, "POSTROUTING", passed)

    @staticmethod
    def _outcome(w: _Walk) -> Outcome:
        return Outcome(
            probability=w.prob,
            dnat=w.dnat,
            verdict=w.verdict or "ACCEPT",
            masquerade=w.masq,
            hits=tuple(w.hits),
            recent_set=tuple(w.recent),
        )


def format_trace(outcomes: list[Outcome]) -> str:
    """Human-readable trace for `seaway trace`."""
    lines: list[str] = []
    for i, o in enumerate(outcomes, 1):
        where = f"DNAT to {o.dnat}" if o.dnat else "no DNAT"
        if o.verdict != "ACCEPT":
            where = f"{o.verdict}" + (f" (after DNAT to {o.dnat})" if o.dnat else "")
        masq = ", masqueraded" if o.masquerade else ""
        sticky = ", remembered for ClientIP affinity" if o.recent_set else ""
        lines.append(f"outcome {i}: p={o.probability:.4f} {where}{masq}{sticky}")
        lines.extend(f"    {h}" for h in o.hits)
    return "\n".join(lines)
