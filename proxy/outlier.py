"""Passive health (outlier detection) of a proxy's endpoints, and which ones its balancers
skip. Shared by the L4 and L7 proxies; pure (the clock and the random source are
injected; probes are sent by proxy/health_runner.py).

What counts (Envoy's consecutive gateway failures, reported by the proxy where it learns
them): a connect that fails or times out, a response that times out, a connection reset
or closed before any response byte. `consecutive_errors` of those in a row (default 5)
eject the endpoint; any response head ends the streak. Opt-in (`consecutive_5xx`), that
many responses of status 500-599 in a row eject it too.

An ejection lasts BASE_EJECTION seconds times the endpoint's ejection count, at most
MAX_EJECTION (Envoy: 30 s base, 300 s max); the count goes down by one for every
BASE_EJECTION seconds the endpoint then stays in. While out, the endpoint is probed every
PROBE_INTERVAL (jittered) and returns as soon as a probe passes; it also returns when its
time is up. Either way it returns on probation: its next failure ejects it again at once,
its next success ends the probation. The probe: `GET` the Service's health-check path
when it has one (2xx-3xx pass); else, for an endpoint ejected for timeouts (it accepts
connections but does not answer: a TCP connect would pass), `OPTIONS * HTTP/1.1`, which
passes on any response within PROBE_TIMEOUT; for connect failures and resets, a TCP
connect. An endpoint ejected for 5xx without a health-check path is not probed (it
answers every probe); it returns when its time is up.

Never more than half of a service's endpoints are out: an ejection that would pass that
is refused (counted as an overflow, the endpoint stays in and ejects as soon as there is
room). Endpoints that fail their active checks (proxy/active_checks.py, run by the daemon)
are out too, and when more than half are out, balancers spread over all of them (Envoy's
panic threshold: better some errors than overloading the few left).

State is kept per service (one `ServiceHealth` per balancer key: a service port) and per
endpoint address, only for endpoints that failed; the success path of a request reads
one counter (`watching`) unless some endpoint of its service is on a failure streak.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from discovery.model import DEFAULT_ENDPOINT_HEALTH, EndpointHealth
from proxy.timer_wheel import TimerWheel

if TYPE_CHECKING:
    from discovery.snapshot import EndpointInfo
    from proxy.balancers.base import Balancer

Address = tuple[str, int]
Labels = tuple[str, str, str]  # namespace, service, port (as metrics and the status page name it)

# What a proxy reports (`failed(kind)`): gateway errors, and a 5xx response.
CONNECT_FAILED, TIMED_OUT, RESET, SERVER_ERROR = 1, 2, 3, 4
REASONS = ("", "connect", "timeout", "reset", "5xx")
_PHRASES = {"connect": "failed connects", "timeout": "timeouts", "reset": "resets",
            "5xx": "5xx responses"}

BASE_EJECTION = 30.0  # seconds
MAX_EJECTION = 300.0
PROBE_INTERVAL = 2.0  # seconds between probes of an ejected endpoint (jittered)
PROBE_TIMEOUT = 1.0  # for probes without the Service's health-check timeout
JITTER = 0.2  # +-20% on every interval, so probes of many endpoints do not bunch up
TICK = 0.1  # the timer wheel's resolution
SLOTS = 4096  # ticks per turn of the wheel (410 s: more than MAX_EJECTION)

TCP, HTTP_GET, ANY_HTTP = "tcp", "http", "any-http"  # how a probe asks (proxy/probes.py)


def endpoint_text(address: Address) -> str:
    ip, port = address
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe for the health runner to send: `how` is TCP (a connect), HTTP_GET (`GET
    path`, 2xx-3xx pass) or ANY_HTTP (`OPTIONS *`: any response passes)."""

    service: str
    address: Address
    how: str
    path: str
    timeout: float


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """An ejection, a return, or an ejection refused (overflow): logged once, counted."""

    what: str  # "ejected" | "returned" | "overflow"
    service: str
    address: Address
    reason: str  # ejected, overflow: REASONS; returned: "probe" | "time"
    ejections: int  # the endpoint's ejection count (this ejection included)
    seconds: float  # ejected: for how long; returned: how long it was out

    def message(self) -> str:
        ep = f"endpoint {endpoint_text(self.address)} of {self.service}"
        if self.what == "ejected":
            return (
                f"{ep} ejected for {self.seconds:g}s after {_PHRASES[self.reason]} "
                f"(ejection {self.ejections})"
            )
        if self.what == "returned":
            how = "answered a probe" if self.reason == "probe" else "its ejection time is up"
            return (
                f"{ep} back in rotation after {self.seconds:.1f}s: {how} "
                "(on probation: its next failure ejects it again)"
            )
        return (
            f"{ep} not ejected after {_PHRASES[self.reason]}: half of the service's "
            "endpoints are out already"
        )


class EndpointRecord:
    """One endpoint that failed lately: its streaks, ejections and where it stands."""

    __slots__ = (
        "address",
        "ejected",
        "ejections",
        "errors",
        "fives",
        "kind",
        "overflowed",
        "probation",
        "probing",
        "returned",
        "since",
        "until",
    )

    def __init__(self, address: Address) -> None:
        self.address = address
        self.errors = 0  # gateway errors in a row
        self.fives = 0  # 5xx responses in a row
        self.kind = 0  # the last failure's kind (decides the probe)
        self.ejections = 0
        self.ejected = False
        self.since = 0.0  # ejected at
        self.until = 0.0  # ejected until
        self.returned = 0.0  # back in at (for the ejection count's decay)
        self.probation = False  # returned: the next failure ejects it again
        self.probing = False  # a probe is out
        self.overflowed = False  # an ejection was refused (logged once per streak)

    @property
    def interesting(self) -> bool:
        return bool(self.errors or self.fives or self.probation)


class ServiceHealth:
    """The health of one service port's endpoints in one process, for its balancer."""

    __slots__ = (
        "addresses",
        "balancer",
        "excluded",
        "key",
        "labels",
        "records",
        "registry",
        "settings",
        "watching",
    )

    def __init__(
        self, registry: HealthRegistry, key: str, labels: Labels, settings: EndpointHealth
    ) -> None:
        self.registry = registry
        self.key = key
        self.labels = labels
        self.settings = settings
        self.records: dict[Address, EndpointRecord] = {}
        self.addresses: frozenset[Address] = frozenset()
        self.excluded: frozenset[Address] = frozenset()  # ejected or failing active checks
        self.watching = 0  # records on a streak or on probation: the success path looks
        self.balancer: Balancer | None = None

    # -- the balancer ----------------------------------------------------------------------
    def attach(self, balancer: Balancer) -> None:
        """`balancer` picks for this service now (a new one when the policy changed)."""
        self.balancer = balancer
        balancer.health = self
        self.endpoints_changed(balancer.endpoints)

    def endpoints_changed(self, endpoints: Iterable[EndpointInfo]) -> None:
        """The balancer's endpoints changed: forget the ones that left."""
        self.addresses = frozenset((e.ip, e.port) for e in endpoints)
        for addr in [a for a in self.records if a not in self.addresses]:
            self._drop(self.records[addr])
        self.refresh()

    def refresh(self) -> None:
        """Recompute what the balancer skips (after an ejection, a return, a verdict)."""
        down = self.registry.active_down
        out = {a for a, r in self.records.items() if r.ejected}
        if down:
            out |= down & self.addresses
        self.excluded = frozenset(out)
        if self.balancer is not None:
            self.balancer.set_excluded(self.excluded)

    # -- outcomes (called by the proxies through their Lease) --------------------------------
    def failure(self, endpoint: EndpointInfo, kind: int) -> None:
        """A gateway error on `endpoint` (CONNECT_FAILED, TIMED_OUT, RESET)."""
        threshold = self.settings.consecutive_errors
        if not threshold:
            return
        rec = self._record((endpoint.ip, endpoint.port))
        if rec is None or rec.ejected:
            return  # (a request sent before the ejection: already counted out)
        was = rec.interesting
        rec.errors += 1
        rec.kind = kind
        if rec.probation or rec.errors >= threshold:
            self._eject(rec, kind)
        self._watch(rec, was)

    def answered(self, endpoint: EndpointInfo, status: int) -> None:
        """A response head of `status` from `endpoint` (101 for an upgrade)."""
        addr = (endpoint.ip, endpoint.port)
        threshold = self.settings.consecutive_5xx
        if status >= 500 and threshold:
            rec = self._record(addr)
            if rec is None or rec.ejected:
                return
            was = rec.interesting
            rec.errors = 0  # it answers: the gateway-error streak is over
            rec.fives += 1
            rec.kind = SERVER_ERROR
            if rec.probation or rec.fives >= threshold:
                self._eject(rec, SERVER_ERROR)
            self._watch(rec, was)
            return
        rec = self.records.get(addr)
        if rec is None or rec.ejected:
            return
        was = rec.interesting
        rec.errors = rec.fives = 0
        rec.probation = rec.overflowed = False
        self._watch(rec, was)
        if not rec.ejections:
            del self.records[addr]

    # -- state changes -----------------------------------------------------------------------
    def _record(self, addr: Address) -> EndpointRecord | None:
        rec = self.records.get(addr)
        if rec is None and addr in self.addresses:
            rec = self.records[addr] = EndpointRecord(addr)
        return rec

    def _watch(self, rec: EndpointRecord, was: bool) -> None:
        now = rec.interesting
        if now != was:
            self.watching += 1 if now else -1

    def _eject(self, rec: EndpointRecord, kind: int) -> None:
        reg = self.registry
        if (len(self.excluded) + 1) * 2 > len(self.addresses):
            reg.count_overflow(self, rec, kind)
            return
        now = reg.clock()
        if rec.ejections and rec.returned:  # one less for each BASE_EJECTION it stayed in
            rec.ejections = max(0, rec.ejections - int((now - rec.returned) / BASE_EJECTION))
        rec.ejections += 1
        seconds = min(BASE_EJECTION * rec.ejections, MAX_EJECTION)
        rec.ejected = True
        rec.since = now
        rec.until = now + seconds
        rec.errors = rec.fives = 0
        rec.probation = rec.overflowed = rec.probing = False
        self.refresh()
        probe = self.probe_of(rec)
        reg.schedule(self, rec, now + reg.jittered(PROBE_INTERVAL) if probe else rec.until)
        reg.emit(HealthEvent("ejected", self.key, rec.address, REASONS[kind], rec.ejections,
                             seconds))

    def give_back(self, rec: EndpointRecord, how: str) -> None:
        """Back in rotation (`how`: "probe" or "time"), on probation."""
        reg = self.registry
        now = reg.clock()
        was = rec.interesting
        rec.ejected = rec.probing = False
        rec.probation = True
        rec.returned = now
        reg.wheel.cancel((self.key, rec.address))
        self._watch(rec, was)
        self.refresh()
        reg.emit(HealthEvent("returned", self.key, rec.address, how, rec.ejections,
                             now - rec.since))

    def _drop(self, rec: EndpointRecord) -> None:
        if rec.interesting:
            self.watching -= 1
        self.registry.wheel.cancel((self.key, rec.address))
        del self.records[rec.address]

    def probe_of(self, rec: EndpointRecord) -> Probe | None:
        """How to probe an ejected endpoint (None: it is not probed; see the docstring)."""
        s = self.settings
        if s.check_path:
            return Probe(self.key, rec.address, HTTP_GET, s.check_path, s.check_timeout)
        if rec.kind == TIMED_OUT:
            return Probe(self.key, rec.address, ANY_HTTP, "*", PROBE_TIMEOUT)
        if rec.kind == SERVER_ERROR:
            return None
        return Probe(self.key, rec.address, TCP, "", PROBE_TIMEOUT)


class HealthRegistry:
    """Every ServiceHealth of one process (an L7 worker, the L4 proxy), their one timer
    wheel (probes and returns of ejected endpoints), the active checks' verdicts, and the
    counts for metrics. `on_event` hears every HealthEvent (the runner logs it); `wake` is
    called when a timer was scheduled (the runner arms its loop timer)."""

    __slots__ = (
        "active_down",
        "clock",
        "counts",
        "on_event",
        "rng",
        "services",
        "wake",
        "wheel",
    )

    def __init__(self, clock: Callable[[], float], rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.wheel: TimerWheel[tuple[str, Address]] = TimerWheel(TICK, SLOTS, clock())
        self.services: dict[str, ServiceHealth] = {}
        self.active_down: frozenset[Address] = frozenset()
        # (what, namespace, service, port, endpoint, reason) -> count, since the last take
        self.counts: dict[tuple[str, ...], int] = {}
        self.on_event: Callable[[HealthEvent], None] | None = None
        self.wake: Callable[[], None] | None = None

    def service(
        self, key: str, labels: Labels, settings: EndpointHealth = DEFAULT_ENDPOINT_HEALTH
    ) -> ServiceHealth:
        """The ServiceHealth of balancer key `key` (made on first use; settings follow the
        Service's annotations)."""
        svc = self.services.get(key)
        if svc is None:
            svc = self.services[key] = ServiceHealth(self, key, labels, settings)
        elif svc.settings != settings:
            svc.settings = settings
        return svc

    def set_active_down(self, down: Collection[Address]) -> None:
        """The addresses failing their active health checks now (the daemon's verdicts)."""
        new = frozenset(down)
        if new == self.active_down:
            return
        self.active_down = new
        for svc in self.services.values():
            svc.refresh()

    # -- the wheel ---------------------------------------------------------------------------
    def jittered(self, seconds: float) -> float:
        return seconds * (1.0 - JITTER + 2.0 * JITTER * self.rng.random())

    def schedule(self, svc: ServiceHealth, rec: EndpointRecord, when: float) -> None:
        self.wheel.schedule((svc.key, rec.address), min(when, rec.until))
        if self.wake is not None:
            self.wake()

    def tick(self) -> list[Probe]:
        """Advance to now: endpoints whose time is up return; the probes due are given
        to the caller to send (each answered with `probed`)."""
        now = self.clock()
        probes: list[Probe] = []
        for key, addr in self.wheel.advance(now):
            svc = self.services.get(key)
            rec = svc.records.get(addr) if svc is not None else None
            if svc is None or rec is None or not rec.ejected:
                continue
            if now >= rec.until:
                svc.give_back(rec, "time")
                continue
            probe = svc.probe_of(rec)
            if probe is None:
                self.schedule(svc, rec, rec.until)
                continue
            rec.probing = True
            probes.append(probe)
            self.wheel.schedule((key, addr), rec.until)  # back by time, whatever the probe
        return probes

    def probed(self, probe: Probe, ok: bool) -> None:
        """A probe's result: a pass returns the endpoint; a fail schedules the next one."""
        svc = self.services.get(probe.service)
        rec = svc.records.get(probe.address) if svc is not None else None
        if svc is None or rec is None or not rec.ejected or not rec.probing:
            return  # it returned meanwhile, or left the service
        rec.probing = False
        if ok:
            svc.give_back(rec, "probe")
        else:
            self.schedule(svc, rec, self.clock() + self.jittered(PROBE_INTERVAL))

    # -- events and counts -------------------------------------------------------------------
    def emit(self, event: HealthEvent) -> None:
        svc = self.services.get(event.service)
        labels = svc.labels if svc is not None else ("", event.service, "")
        key = (event.what, *labels, endpoint_text(event.address), event.reason)
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.on_event is not None:
            self.on_event(event)

    def count_overflow(self, svc: ServiceHealth, rec: EndpointRecord, kind: int) -> None:
        event = HealthEvent("overflow", svc.key, rec.address, REASONS[kind], rec.ejections, 0.0)
        if rec.overflowed:  # logged once per streak, counted every time
            key = ("overflow", *svc.labels, endpoint_text(rec.address), REASONS[kind])
            self.counts[key] = self.counts.get(key, 0) + 1
            return
        rec.overflowed = True
        self.emit(event)

    def take_counts(self) -> dict[tuple[str, ...], int]:
        counts, self.counts = self.counts, {}
        return counts

    def ejected(self) -> list[tuple[ServiceHealth, EndpointRecord]]:
        """Every endpoint out now (for metrics and the status page)."""
        return [
            (svc, rec) for svc in self.services.values() for rec in svc.records.values()
            if rec.ejected
        ]
