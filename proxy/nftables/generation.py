"""The nftables ruleset generation of this network namespace, read over netlink.

The kernel numbers every committed nftables transaction (any table, any tool): the
generation ID goes up by one per commit and never repeats while the namespace lives.
seaway records the generation its own transaction created (proxy/nftables/record.py);
finding the same number later proves that nothing has been committed since, so its
tables still hold exactly what it wrote. One NFT_MSG_GETGEN request, no `nft` process:
about 50 microseconds.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETGEN = 16
NFT_MSG_NEWGEN = 15
NFTA_GEN_ID = 1
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_NFGEN = struct.Struct("=BBH")  # family, version, resource id (big endian, unused)
_ATTR = struct.Struct("=HH")  # length, type


def parse_generation(data: bytes) -> int | None:
    """The generation ID in a NFT_MSG_NEWGEN answer; None for anything else."""
    if len(data) < _NLMSG.size + _NFGEN.size:
        return None
    length, kind, _flags, _seq, _port = _NLMSG.unpack_from(data)
    if kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
        return None
    offset = _NLMSG.size + _NFGEN.size
    end = min(length, len(data))
    while offset + _ATTR.size <= end:
        size, attr = _ATTR.unpack_from(data, offset)
        if size < _ATTR.size:
            return None
        if attr & 0x7FFF == NFTA_GEN_ID and size == _ATTR.size + 4:
            return int.from_bytes(data[offset + 4 : offset + 8], "big")
        offset += (size + 3) & ~3
    return None


def ruleset_generation() -> int | None:
    """The current generation ID; None when it cannot be read (no netlink, no nf_tables:
    then nothing is ever taken as unchanged)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError:
        return None
    try:
        sock.settimeout(2.0)
        sock.bind((0, 0))
        body = _NFGEN.pack(socket.AF_UNSPEC, 0, 0)
        kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN
        seq = os.getpid() & 0xFFFF
        sock.send(_NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST, seq, 0) + body)
        return parse_generation(sock.recv(8192))
    except OSError:
        return None
    finally:
        sock.close()
