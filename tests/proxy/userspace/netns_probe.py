"""Run inside a test's network namespace: bind cluster IPs on a dummy link and proxy.

Prints one JSON object with what it observed; test_bind_cluster_ips.py checks it.
"""

from __future__ import annotations

import asyncio
import json

import uvloop

from proxy.app.options import Options
from proxy.userspace.addresses import DummyInterface
from proxy.userspace.dataplane import UserspaceDataplane

from .helpers import NamedBackend, changed, request, service_port, snapshot


async def main() -> dict[str, object]:
    out: dict[str, object] = {}
    backend = NamedBackend("b0")
    await backend.start()
    ep = [("127.0.0.1", backend.port)]
    dp = UserspaceDataplane(Options(bind_cluster_ips=True).userspace_config(), sweep_interval=0)
    dummy = DummyInterface()
    await dp.start()
    try:
        snap = snapshot(service_port("web", "10.96.0.10", 80, ep, node_port=30080))
        await dp.sync(snap, changed(snap))
        out["addresses_1"] = sorted(await asyncio.to_thread(dummy.addresses))
        out["listening_1"] = sorted(str(k) for k in dp.listening())
        out["via_cluster_ip"] = (await request("10.96.0.10", 80, b"x")).decode()
        out["via_node_port"] = (await request("10.96.0.10", 30080, b"y")).decode()

        snap2 = snapshot(service_port("web", "10.96.0.11", 80, ep), generation=2)
        await dp.sync(snap2, changed(snap2))
        out["addresses_2"] = sorted(await asyncio.to_thread(dummy.addresses))
        out["listening_2"] = sorted(str(k) for k in dp.listening())
        out["via_new_ip"] = (await request("10.96.0.11", 80, b"z")).decode()

        # IPv6: the cluster IP bound the same way (no duplicate address detection wait)
        snap3 = snapshot(service_port("web", "fd00:96::10", 80, ep), generation=3)
        await dp.sync(snap3, changed(snap3))
        out["addresses_3"] = sorted(await asyncio.to_thread(dummy.addresses))
        out["listening_3"] = sorted(str(k) for k in dp.listening())
        out["via_ipv6"] = (await request("fd00:96::10", 80, b"v6")).decode()
    finally:
        await dp.stop()
        backend.close()
    out["exists_after_stop"] = await asyncio.to_thread(dummy.exists)
    return out


if __name__ == "__main__":
    print(json.dumps(uvloop.run(main())))
