"""Pure: the sync record, seaway's proof that its tables hold exactly what it last wrote.

Reading the tables back (`nft -j list table`) costs nft about as much as writing them:
it fetches and converts every element (0.65 s of CPU for 10,000 services x 2 endpoints,
more than the `nft -f` that wrote them). So every full sync ends its transaction with a
record, in the set `sync-state` of the `ip` table: one element, the ruleset generation
this very transaction creates (the generation read just before it, plus one: each
commit adds one), with the digest of the tables written as its comment:

    set sync-state { type mark; elements = { 0x000004d2 comment "seaway-sync-v1 9f8e..." } }

Later (a re-apply, a daemon restart), when the namespace's generation (read over
netlink: proxy/nftables/generation.py) still equals the recorded one, nothing at all has
been committed since that transaction, by seaway or anyone else: the tables are exactly
the state of the recorded digest, and reading the record (`nft -j list set`, one small
set) replaces reading the tables. Any other commit in between, a partial sync included,
changes the generation, so a record is never trusted after it: the tables are read back
as before. A wrong guess (another commit slipped in between the read and this one) only
makes the record stale at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson

from proxy.nftables import names as N
from proxy.nftables.render import render_table
from proxy.nftables.table import TableState

TAG = "seaway-sync-v1"
FAMILY = "ip"  # the record lives in the ip table (both tables change in one transaction)


def digest(states: Iterable[TableState]) -> str:
    """Of the tables as `render_table` writes them (the record itself is never in a
    TableState: its elements are not read back)."""
    return digest_of(render_table(state) for state in states)


def digest_of(rendered: Iterable[str]) -> str:
    """`digest` of the tables' render_table texts, in the same order."""
    h = hashlib.blake2b(digest_size=16)
    for text in rendered:
        h.update(text.encode())
    return h.hexdigest()


def record_text(generation: int, tables_digest: str) -> str:
    """The commands that end a full sync's transaction: the record of `generation` (the
    one this transaction will create)."""
    where = f"{FAMILY} {N.TABLE} {N.SYNC_STATE}"
    return (
        f"flush set {where}\n"
        f'add element {where} {{ {generation} comment "{TAG} {tables_digest}" }}\n'
    )


def parse_record(data: bytes) -> tuple[int, str] | None:
    """(generation, digest) from `nft -j list set ip seaway sync-state`; None when there
    is no record, or not one this version of seaway wrote."""
    try:
        objects = orjson.loads(data).get("nftables", [])
    except (orjson.JSONDecodeError, AttributeError):
        return None
    for obj in objects:
        spec = obj.get("set") if isinstance(obj, dict) else None
        if not isinstance(spec, dict) or spec.get("name") != N.SYNC_STATE:
            continue
        elements = spec.get("elem", [])
        if not isinstance(elements, list) or len(elements) != 1:
            return None
        element = elements[0]
        inner = element.get("elem") if isinstance(element, dict) else None
        if not isinstance(inner, dict):
            return None
        value, comment = inner.get("val"), inner.get("comment")
        if type(value) is not int or not isinstance(comment, str):
            return None
        tag, _, found = comment.partition(" ")
        return (value, found) if tag == TAG and found else None
    return None
