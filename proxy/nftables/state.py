"""Pure: `nft -j list table FAMILY seaway` -> the TableState the kernel holds.

Rules come back as JSON expressions; `format_rule` spells them the way the builder
writes them (the spelling is seaway's own, chosen so that both directions agree, and a
kernel test loads every kind of rule the builder makes and checks that it reads back
equal). A rule with anything else in it reads back as a line no builder rule equals, so
its chain is rewritten. Elements of timed sets (ClientIP affinity: clients the kernel
learned) are not read: they are state, not configuration; nor is the sync record
(proxy/nftables/record.py).
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.nftables import names as N
from proxy.nftables.table import Chain, SetSpec, TableState


class Unreadable(ValueError):
    """A JSON expression this module does not spell (not one seaway writes)."""


_BINOPS = ("&", "|", "^")
_VERDICTS = ("accept", "drop", "return", "continue")


def _value(x: Any) -> str:
    """An element key or value, or an expression operand that is a constant."""
    if isinstance(x, bool):
        raise Unreadable(repr(x))
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return str(x)
    if isinstance(x, dict):
        if "prefix" in x:
            return f"{x['prefix']['addr']}/{x['prefix']['len']}"
        if "range" in x:
            low, high = x["range"]
            return f"{_value(low)}-{_value(high)}"
        if "concat" in x:
            return " . ".join(_value(v) for v in x["concat"])
        if "elem" in x:
            return _value(x["elem"]["val"])
        for verdict in ("goto", "jump"):
            if verdict in x:
                return f"{verdict} {x[verdict]['target']}"
        for verdict in _VERDICTS:
            if verdict in x:
                return verdict
    raise Unreadable(repr(x))


def _element(x: Any) -> str:
    """`_value` for an element key or value, fast for the common shapes (a few hundred
    thousand of them in a big table: read back while the config is parsed)."""
    kind = type(x)
    if kind is str:
        return x  # type: ignore[no-any-return]
    if kind is dict:
        parts = x.get("concat")
        if parts is not None:
            return " . ".join(
                [p if type(p) is str else str(p) if type(p) is int else _value(p) for p in parts]
            )
    return _value(x)


def _expr(x: Any) -> str:
    if isinstance(x, dict):
        if "payload" in x:
            p = x["payload"]
            return f"{p['protocol']} {p['field']}"
        if "meta" in x:
            return f"meta {x['meta']['key']}"
        if "ct" in x:
            return f"ct {x['ct']['key']}"
        if "fib" in x:
            f = x["fib"]
            flags = f["flags"] if isinstance(f["flags"], list) else [f["flags"]]
            return f"fib {' . '.join(flags)} {f['result']}"
        if "numgen" in x:
            n = x["numgen"]
            offset = f" offset {n['offset']}" if n.get("offset") else ""
            return f"numgen {n['mode']} mod {n['mod']}{offset}"
        if "concat" in x:
            return " . ".join(_expr(v) for v in x["concat"])
        if "set" in x:
            return "{ " + ", ".join(_value(v) for v in x["set"]) + " }"
        for op in _BINOPS:
            if op in x:
                left, right = x[op]
                return (
                    f"{_expr(left)} {op} {hex(right) if isinstance(right, int) else _expr(right)}"
                )
    return _value(x)


def _statement(s: dict[str, Any]) -> str:
    if "match" in s:
        m = s["match"]
        left, op = m["left"], m["op"]
        right = _expr(m["right"])
        if op in ("==", "in"):
            explicit = isinstance(left, dict) and any(b in left for b in _BINOPS)
            return f"{_expr(left)} {'== ' if explicit else ''}{right}"
        if op == "!=":
            return f"{_expr(left)} != {right}"
        raise Unreadable(repr(m))
    if "vmap" in s:
        return f"{_expr(s['vmap']['key'])} vmap {s['vmap']['data']}"
    if "mangle" in s:
        return f"{_expr(s['mangle']['key'])} set {_expr(s['mangle']['value'])}"
    if "masquerade" in s:
        m = s["masquerade"] or {}
        flags = m.get("flags", [])
        flags = [flags] if isinstance(flags, str) else flags
        return " ".join(["masquerade", *flags])
    if "reject" in s:
        r = s["reject"] or {}
        if r.get("expr", "port-unreachable") != "port-unreachable":
            raise Unreadable(repr(r))
        return "reject"
    if "dnat" in s:
        d = s["dnat"]
        target = d["addr"]
        if isinstance(target, dict) and "map" in target:
            mapped = target["map"]
            return f"dnat {d['family']} to {_expr(mapped['key'])} map {mapped['data']}"
        address = _value(target)
        host = f"[{address}]" if ":" in address else address
        return f"dnat to {host}:{d['port']}" if "port" in d else f"dnat to {host}"
    if "set" in s and isinstance(s["set"], dict):
        op = s["set"]
        return f"{op['op']} {op['set']} {{ {_expr(op['elem'])} }}"
    return _value(s)


def format_rule(exprs: list[dict[str, Any]]) -> str:
    return " ".join(_statement(s) for s in exprs)


def _spec(obj: dict[str, Any], is_map: bool) -> SetSpec:
    types = obj["type"]
    flags = obj.get("flags", [])
    return SetSpec(
        types=tuple(types) if isinstance(types, list) else (types,),
        data=str(obj["map"]) if is_map else "",
        flags=tuple([flags] if isinstance(flags, str) else flags),
        timeout=int(obj.get("timeout", 0)),
    )


def parse_table(family: str, data: bytes) -> TableState:
    """The table as `nft -j list table` printed it."""
    state = TableState(family)
    rules: dict[str, list[str]] = {}
    for obj in orjson.loads(data).get("nftables", []):
        if "chain" in obj:
            c = obj["chain"]
            base = ""
            if "hook" in c:
                base = (
                    f"type {c['type']} hook {c['hook']} priority {c['prio']}; "
                    f"policy {c.get('policy', 'accept')};"
                )
            state.chains[c["name"]] = Chain((), base)
            rules[c["name"]] = []
        elif "rule" in obj:
            r = obj["rule"]
            try:
                text = format_rule(r["expr"])
            except (Unreadable, KeyError, TypeError, ValueError):
                # Never equal to a rule seaway writes: the chain is rewritten.
                text = f"# unreadable rule (handle {r.get('handle')})"
            rules.setdefault(r["chain"], []).append(text)
        elif "set" in obj or "map" in obj:
            is_map = "map" in obj
            s = obj["map" if is_map else "set"]
            spec = _spec(s, is_map)
            state.sets[s["name"]] = spec
            elements: dict[str, str] = {}
            if "timeout" not in spec.flags and s["name"] != N.SYNC_STATE:
                if is_map:
                    for key, value in s.get("elem", ()):
                        elements[_element(key)] = _element(value)
                else:
                    for key in s.get("elem", ()):
                        elements[_element(key)] = ""
            state.elements[s["name"]] = elements
    for name, chain in state.chains.items():
        state.chains[name] = Chain(tuple(rules.get(name, ())), chain.base)
    return state
