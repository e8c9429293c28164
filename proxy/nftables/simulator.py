"""Pure packet tracer over seaway's nftables tables (the rule text the builder writes).

A new connection is walked as the kernel would: its family's table only; base chains of
each hook in priority order (from the node: output, then input or postrouting; from
elsewhere: prerouting, then input, or forward and postrouting). Rules are parsed from
their text (the expressions and statements seaway writes, and nothing else: anything
unknown is a SimulatorError). `numgen random mod N` forks the walk, so the result is a
list of outcomes with probabilities summing to 1: DNAT target or none, the verdict
(ACCEPT, DROP, REJECT), whether the packet is masqueraded, the rules it hit.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field, replace

from proxy.nftables.table import TableState


class SimulatorError(ValueError):
    pass


# -- parsing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expr:
    """A concatenation of selectors ("ip daddr", "numgen random mod 3", ...), optionally
    masked (`& 0x4000`)."""

    parts: tuple[tuple[str, ...], ...]
    mask: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    expr: Expr
    negate: bool
    rhs: str  # "@set", "{ a, b }" (as a tuple below), or a constant
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Statement:
    kind: str  # jump goto return drop accept reject vmap dnat dnat-map masquerade mark update
    arg: str = ""
    expr: Expr | None = None
    value: int = 0


Term = Match | Statement

_SELECTORS = {
    "ip": ("saddr", "daddr"),
    "ip6": ("saddr", "daddr"),
    "meta": ("l4proto", "mark"),
    "th": ("dport",),
    "tcp": ("dport",),
    "udp": ("dport",),
    "sctp": ("dport",),
    "ct": ("state", "status"),
}
_VERDICT_WORDS = ("return", "drop", "accept", "reject")


def _tokens(text: str) -> list[str]:
    """Words, with a braced group as one token: "{ tcp, udp }" -> "{tcp, udp}"."""
    out: list[str] = []
    for i, part in enumerate(re.split(r"\{\s*(.*?)\s*\}", text)):
        out.extend(["{" + part + "}"] if i % 2 else part.split())
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ""

    def take(self) -> str:
        tok = self.peek()
        if not tok:
            raise SimulatorError(f"unexpected end of rule: {self.text!r}")
        self.i += 1
        return tok

    def atom(self) -> tuple[str, ...]:
        tok = self.peek()
        if tok in _SELECTORS and self.peek(1) in _SELECTORS[tok]:
            return (self.take(), self.take())
        if tok == "fib":
            return (self.take(), self.take(), self.take())  # fib daddr type
        if tok == "numgen":
            parts = [self.take(), self.take(), self.take(), self.take()]  # numgen random mod N
            if parts[1] != "random" or parts[2] != "mod":
                raise SimulatorError(f"unsupported numgen in {self.text!r}")
            return tuple(parts)
        raise SimulatorError(f"unsupported expression {tok!r} in {self.text!r}")

    def expr(self) -> Expr:
        parts = [self.atom()]
        while self.peek() == ".":
            self.take()
            parts.append(self.atom())
        mask = None
        if self.peek() == "&":
            self.take()
            mask = int(self.take(), 0)
        return Expr(tuple(parts), mask)

    def term(self) -> Term:
        tok = self.peek()
        if tok in ("jump", "goto"):
            return Statement(self.take(), self.take())
        if tok in _VERDICT_WORDS:
            return Statement(self.take())
        if tok == "masquerade":
            self.take()
            if self.peek() == "fully-random":
                self.take()
            return Statement("masquerade")
        if tok == "dnat":
            self.take()
            if self.peek() == "to":
                self.take()
                return Statement("dnat", self.take())
            self.take()  # family
            if self.take() != "to":
                raise SimulatorError(f"unsupported dnat in {self.text!r}")
            key = self.expr()
            if self.take() != "map":
                raise SimulatorError(f"unsupported dnat in {self.text!r}")
            return Statement("dnat-map", self.take(), key)
        if tok == "update":
            self.take()
            name = self.take()
            if self.take() not in ("{ip saddr}", "{ip6 saddr}"):
                raise SimulatorError(f"unsupported update in {self.text!r}")
            return Statement("update", name)
        if tok == "meta" and self.peek(1) == "mark" and self.peek(2) == "set":
            self.i += 3
            self.expr()  # meta mark
            op = self.take()
            value = int(self.take(), 0)
            return Statement("mark", op, value=value)
        expr = self.expr()
        if self.peek() == "vmap":
            self.take()
            return Statement("vmap", self.take(), expr)
        negate = False
        if self.peek() in ("==", "!="):
            negate = self.take() == "!="
        rhs = self.take()
        choices = tuple(c.strip() for c in rhs[1:-1].split(",")) if rhs.startswith("{") else ()
        return Match(expr, negate, rhs, choices)

    def rule(self) -> tuple[Term, ...]:
        terms = []
        while self.peek():
            terms.append(self.term())
        return tuple(terms)


def parse_rule(text: str) -> tuple[Term, ...]:
    return _Parser(text).rule()


# -- walking -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Packet:
    src: str
    dst: str
    dport: int
    proto: str = "tcp"
    mark: int = 0
    dnat: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    probability: float
    dnat: str | None  # "ip:port" ("[ip]:port") when DNATed
    verdict: str  # ACCEPT, REJECT or DROP
    masquerade: bool
    hits: tuple[str, ...] = ()
    affinity_set: tuple[str, ...] = ()  # affinity sets the client is added to


@dataclass(slots=True)
class _Walk:
    prob: float
    pkt: Packet
    hits: list[str] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    verdict: str | None = None  # set when the current hook is done with the packet
    dnat: str | None = None
    masq: bool = False

    def fork(self, prob: float) -> _Walk:
        return _Walk(
            prob, self.pkt, list(self.hits), list(self.updates), self.verdict, self.dnat, self.masq
        )


_HEADER = re.compile(r"type (\w+) hook (\w+) priority (-?\d+);")


def _in_net(ip: str, net: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False)
    except ValueError:
        return False


def _component_matches(value: str, element: str) -> bool:
    """One part of a (concatenated) interval element: a prefix, or one value."""
    return _in_net(value, element) if "/" in element else value == element


class Simulator:
    """Walks new connections through seaway's tables. `local`: the node's addresses;
    `affinity`: for each affinity set, the clients in it."""

    def __init__(
        self,
        tables: Mapping[str, TableState],
        local: Container[str],
        affinity: Mapping[str, Container[str]] | None = None,
    ) -> None:
        self.tables = tables
        self.local = local
        self.affinity = affinity or {}
        self._rules: dict[tuple[str, str], list[tuple[str, tuple[Term, ...]]]] = {}
        hooks: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for family, state in tables.items():
            for name, chain in state.chains.items():
                self._rules[(family, name)] = [(r, parse_rule(r)) for r in chain.rules]
                if chain.base:
                    m = _HEADER.match(chain.base)
                    if m is None:
                        raise SimulatorError(f"unreadable base chain {name}: {chain.base!r}")
                    hooks.setdefault((family, m.group(2)), []).append((int(m.group(3)), name))
        # each hook's base chains in priority order
        self._hooks = {k: [name for _, name in sorted(v)] for k, v in hooks.items()}

    # -- evaluation -------------------------------------------------------------------
    def _atom(self, atom: tuple[str, ...], pkt: Packet) -> list[tuple[str, float]]:
        head = atom[0]
        if head in ("ip", "ip6"):
            return [(pkt.src if atom[1] == "saddr" else pkt.dst, 1.0)]
        if head == "th" or (head == pkt.proto and atom[1] == "dport"):
            return [(str(pkt.dport), 1.0)]
        if head in ("tcp", "udp", "sctp"):
            return []  # `tcp dport` of a UDP packet: the rule does not match (as in nft)
        if head == "meta" and atom[1] == "l4proto":
            return [(pkt.proto, 1.0)]
        if head == "meta" and atom[1] == "mark":
            return [(str(pkt.mark), 1.0)]
        if head == "ct" and atom[1] == "state":
            return [("new", 1.0)]
        if head == "ct" and atom[1] == "status":
            return [("dnat" if pkt.dnat else "", 1.0)]
        if head == "fib":
            ip = pkt.src if atom[1] == "saddr" else pkt.dst
            return [("local" if ip in self.local else "unicast", 1.0)]
        if head == "numgen":
            n = int(atom[3])
            return [(str(i), 1.0 / n) for i in range(n)]
        raise SimulatorError(f"unsupported selector {' '.join(atom)}")

    def _eval(self, expr: Expr, pkt: Packet) -> list[tuple[str, float]]:
        values: list[tuple[list[str], float]] = [([], 1.0)]
        for atom in expr.parts:
            values = [([*v, a], p * q) for v, p in values for a, q in self._atom(atom, pkt)]
        out = [(" . ".join(v), p) for v, p in values]
        if expr.mask is not None:
            out = [(str(int(v) & expr.mask), p) for v, p in out]
        return out

    def _lookup(self, family: str, name: str, key: str) -> str | None:
        """The element's value ("" for a set) or None when `key` is not in @name."""
        state = self.tables[family]
        if name not in state.sets:
            raise SimulatorError(f"no set or map {name} in table {family}")
        spec = state.sets[name]
        if "timeout" in spec.flags:
            return "" if key in self.affinity.get(name, ()) else None
        elements = state.elements.get(name, {})
        if "interval" not in spec.flags:
            return elements.get(key)
        parts = key.split(" . ")
        for element, value in elements.items():
            eparts = element.split(" . ")
            if len(eparts) == len(parts) and all(
                _component_matches(v, e) for v, e in zip(parts, eparts, strict=True)
            ):
                return value
        return None

    def _matches(self, family: str, m: Match, value: str) -> bool:
        if m.rhs.startswith("@"):
            hit = self._lookup(family, m.rhs[1:], value) is not None
        elif m.choices:
            hit = value in m.choices
        elif "/" in m.rhs:
            hit = _in_net(value, m.rhs)
        elif m.expr.mask is not None:
            hit = int(value) == int(m.rhs, 0)
        else:
            hit = value == m.rhs
        return hit != m.negate

    # -- chains -----------------------------------------------------------------------
    def _chain(self, family: str, chain: str, w: _Walk, depth: int = 0) -> Iterator[_Walk]:
        """Walks leaving `chain`: with a verdict (w.verdict set), or having fallen off its
        end / returned (verdict None: the caller continues)."""
        if depth > 32:
            raise SimulatorError(f"jump loop through {chain}")
        rules = self._rules.get((family, chain))
        if rules is None:
            raise SimulatorError(f"jump to undefined chain {family}/{chain}")
        pending: list[tuple[int, _Walk]] = [(0, w)]
        while pending:
            start, cur = pending.pop()
            for idx in range(start, len(rules)):
                text, terms = rules[idx]
                outcome = self._rule(family, chain, text, terms, cur, depth)
                if outcome is None:
                    continue  # did not match: next rule
                for after, where in outcome:
                    if where == "next":
                        pending.append((idx + 1, after))
                    else:
                        yield after
                break
            else:
                yield cur

    def _rule(
        self, family: str, chain: str, text: str, terms: tuple[Term, ...], w: _Walk, depth: int
    ) -> list[tuple[_Walk, str]] | None:
        """None: no match. Else the walks after the rule and where each goes: "next"
        (the following rule of this chain) or "out" (leaves the chain). A match on
        `numgen` holds for a fraction of the walk: the rest goes on to the next rule."""
        fraction = 1.0
        k = 0
        while k < len(terms) and isinstance(terms[k], Match):
            m = terms[k]
            assert isinstance(m, Match)
            fraction *= sum(p for v, p in self._eval(m.expr, w.pkt) if self._matches(family, m, v))
            if fraction <= 0.0:
                return None
            k += 1
        out: list[tuple[_Walk, str]] = []
        hit = w
        if fraction < 1.0:
            hit = w.fork(w.prob * fraction)
            out.append((w.fork(w.prob * (1.0 - fraction)), "next"))
        hit.hits.append(f"{family} {chain}: {text}")
        out.extend(self._statements(family, terms[k:], hit, depth))
        return out

    def _statements(
        self, family: str, rest: tuple[Term, ...], w: _Walk, depth: int
    ) -> list[tuple[_Walk, str]]:
        for term in rest:
            if isinstance(term, Match):
                raise SimulatorError(f"a match after a statement in {w.hits[-1]!r}")
            kind = term.kind
            if kind == "mark":
                mark = w.pkt.mark | term.value if term.arg == "|" else w.pkt.mark ^ term.value
                w.pkt = replace(w.pkt, mark=mark)
            elif kind == "update":
                w.updates.append(term.arg[1:])
            elif kind in ("drop", "reject", "accept"):
                w.verdict = kind.upper()
                return [(w, "out")]
            elif kind == "return":
                return [(w, "out")]
            elif kind == "masquerade":
                w.masq = True
                w.verdict = "ACCEPT"
                return [(w, "out")]
            elif kind == "dnat":
                self._dnat(w, term.arg)
                return [(w, "out")]
            elif kind in ("dnat-map", "vmap"):
                return self._lookup_statement(family, term, w, depth)
            elif kind in ("jump", "goto"):
                return self._verdict(family, kind, term.arg, w, depth)
            else:
                raise SimulatorError(f"unsupported statement {kind}")
        return [(w, "next")]

    def _lookup_statement(
        self, family: str, term: Statement, w: _Walk, depth: int
    ) -> list[tuple[_Walk, str]]:
        """`KEY vmap @map` (verdict of the element, or on to the next rule without one)
        and `dnat to KEY map @map` (DNAT to the element's address . port)."""
        assert term.expr is not None
        out: list[tuple[_Walk, str]] = []
        values = self._eval(term.expr, w.pkt)
        if not values:
            w.hits.pop()
            return [(w, "next")]
        for value, p in values:
            found = self._lookup(family, term.arg[1:], value)
            branch = w if len(values) == 1 else w.fork(w.prob * p)
            if found is None:
                branch.hits.pop()  # looked up, found nothing: not a hit
                out.append((branch, "next"))
            elif term.kind == "vmap":
                word, _, target = found.partition(" ")
                out.extend(self._verdict(family, word, target, branch, depth))
            else:
                ip, _, port = found.partition(" . ")
                self._dnat(branch, f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
                out.append((branch, "out"))
        return out

    def _verdict(
        self, family: str, word: str, target: str, w: _Walk, depth: int
    ) -> list[tuple[_Walk, str]]:
        if word in ("drop", "reject", "accept"):
            w.verdict = word.upper()
            return [(w, "out")]
        if word not in ("jump", "goto"):
            raise SimulatorError(f"unsupported verdict {word!r}")
        out: list[tuple[_Walk, str]] = []
        for after in self._chain(family, target, w, depth + 1):
            if after.verdict is not None:
                out.append((after, "out"))
            elif word == "jump":
                out.append((after, "next"))  # returned: continue after the jump
            else:
                out.append((after, "out"))  # goto: returns to our caller
        return out

    @staticmethod
    def _dnat(w: _Walk, target: str) -> None:
        host, _, port = target.rpartition(":")
        ip = host.strip("[]")
        w.pkt = replace(w.pkt, dst=ip, dport=int(port), dnat=True)
        w.dnat = target
        w.verdict = "ACCEPT"

    # -- hooks ------------------------------------------------------------------------
    def _hook(self, family: str, hook: str, walks: list[_Walk]) -> list[_Walk]:
        for chain in self._hooks.get((family, hook), []):
            nxt: list[_Walk] = []
            for w in walks:
                if w.verdict in ("DROP", "REJECT"):
                    nxt.append(w)
                    continue
                w.verdict = None
                for after in self._chain(family, chain, w):
                    if after.verdict is None:
                        after.verdict = "ACCEPT"  # the base chain's policy
                    nxt.append(after)
            walks = nxt
        return walks

    def trace(self, src: str, dst: str, dport: int, proto: str = "tcp") -> list[Outcome]:
        """Outcomes of a new connection from `src` to `dst:dport`."""
        family = "ip6" if ":" in dst else "ip"
        if family not in self.tables:
            raise SimulatorError(f"no {family} table")
        start = _Walk(1.0, Packet(src, dst, dport, proto.lower()))
        from_node = src in self.local
        walks = self._hook(family, "output" if from_node else "prerouting", [start])
        done: list[_Walk] = []
        for w in walks:
            if w.verdict in ("DROP", "REJECT"):
                done.append(w)
                continue
            to_local = w.pkt.dst in self.local
            if to_local:
                done.extend(self._hook(family, "input", [w]))
                continue
            stage = [w] if from_node else self._hook(family, "forward", [w])
            passed = [x for x in stage if x.verdict not in ("DROP", "REJECT")]
            done.extend(x for x in stage if x.verdict in ("DROP", "REJECT"))
            for x in passed:
                x.masq = False
            done.extend(self._hook(family, "postrouting", passed))
        return [
            Outcome(
                probability=w.prob,
                dnat=w.dnat,
                verdict=w.verdict or "ACCEPT",
                masquerade=w.masq,
                hits=tuple(w.hits),
                affinity_set=tuple(w.updates),
            )
            for w in done
        ]


def format_trace(outcomes: list[Outcome]) -> str:
    """Human-readable trace for `seaway trace`."""
    lines: list[str] = []
    for i, o in enumerate(outcomes, 1):
        where = f"DNAT to {o.dnat}" if o.dnat else "no DNAT"
        if o.verdict != "ACCEPT":
            where = o.verdict + (f" (after DNAT to {o.dnat})" if o.dnat else "")
        masq = ", masqueraded" if o.masquerade else ""
        sticky = ", remembered for ClientIP affinity" if o.affinity_set else ""
        lines.append(f"outcome {i}: p={o.probability:.4f} {where}{masq}{sticky}")
        lines.extend(f"    {h}" for h in o.hits)
    return "\n".join(lines)
