"""ServiceTarget: in-place updates of endpoints and affinity."""

from __future__ import annotations

import dataclasses

from proxy.userspace.target import ServiceTarget

from .helpers import FakeClock, service_port


def test_update_switches_affinity_on_and_off_and_replaces_endpoints() -> None:
    clock = FakeClock()
    info = service_port("web", "127.0.0.1", 80, [("10.0.0.1", 80), ("10.0.0.2", 80)])
    target = ServiceTarget(info, clock)
    assert target.picker.affinity is None
    assert {target.picker.pick("1.1.1.1") for _ in range(2)} == set(info.endpoints)

    sticky = dataclasses.replace(info, session_affinity_timeout=60)
    target.update(sticky)
    first = target.picker.pick("1.1.1.1")
    assert [target.picker.pick("1.1.1.1") for _ in range(3)] == [first] * 3
    clock.now += 61
    target.expire()
    assert target.picker.affinity is not None and len(target.picker.affinity) == 0

    fewer = dataclasses.replace(sticky, endpoints=info.endpoints[1:], session_affinity_timeout=None)
    target.update(fewer)
    assert target.picker.affinity is None
    assert {target.picker.pick("1.1.1.1") for _ in range(3)} == {info.endpoints[1]}
    assert target.info is fewer
