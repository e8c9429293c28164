"""Worker processes: config distribution from the daemon to `--workers` HTTP processes.

How config reaches every worker: the daemon (the only process that watches files or the
Kubernetes API) translates each Snapshot into a RouteTable (ingress/routes.py: routes with
their backends and endpoints resolved) and sends it with the TLS Secrets it names,
pickled and length-prefixed, over a Unix socketpair per worker right after its own sync.
The users of auth-secret Secrets and the CAs of proxy-ssl-secret ones travel inside the
table (the BasicAuth and UpstreamProtocol filters carry them), so a change of such a Secret
is a new table.
Each worker compiles the table and builds its CertStore from it, so a change reaches
every worker as soon as the daemon has synced (milliseconds; well under 1 s). Workers
know nothing of Ingress objects and never talk to the API server, so N workers do not
mean N watches, and only the Services routes use travel (a node with 10,000 Services and
a few Ingresses must not pickle 10,000 of them to every worker on each change). A worker
whose pipe closes (daemon gone) exits.

Listeners: the daemon process serves too (worker 0, in its own loop) and binds first,
with SO_REUSEPORT, so a port 0 in the flags is resolved once; the N-1 worker processes
bind the same resolved address with SO_REUSEPORT and the kernel spreads connections.

A worker that dies (a crash, the OOM killer, a stray kill) is restarted by the daemon, as
nginx's master restarts its workers: `WorkerPool.revive` (called every REVIVE_INTERVAL by
the dataplane) starts a new process with the same index and sends it the last config.
One that dies again within CRASH_WINDOW of its start waits twice as long each time (up to
MAX_BACKOFF) before the next try, so a crash loop does not spin.

The pipe carries three more messages. Daemon to worker: `Drain` (graceful shutdown: stop
accepting, finish what is in flight, exit), and `HealthVerdicts` (the endpoints failing
their active health checks, which the daemon runs once for every worker: the whole set,
whenever it changes, and to a restarted worker after its config). Worker to daemon: a
`proxy.counters.Delta` of request counts every STATS_INTERVAL and when it exits, which
the daemon adds to its totals (`WorkerPool.on_stats`), so the counters users see survive
a worker's restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from discovery.model import TLSSecret
from ingress.routes import RouteTable, SecretKey
from ingress.settings import HttpSettings
from ingress.stats import ObservabilitySettings
from proxy.counters import Delta

log = logging.getLogger(__name__)

_LEN = struct.Struct("!I")
REVIVE_INTERVAL = 0.5  # seconds between checks for dead workers
CRASH_WINDOW = 5.0  # a worker dying sooner than this after its start backs off
MAX_BACKOFF = 30.0
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
DRAIN_MARGIN = 5.0  # seconds past the grace period a draining worker gets to exit
STATS_INTERVAL = 1.0  # seconds between two request-count deltas from a worker


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker needs for one config generation (pickled to it)."""

    settings: HttpSettings
    http: tuple[str, int] | None  # resolved address, None = not listening
    https: tuple[str, int] | None
    table: RouteTable = field(default_factory=RouteTable)
    tls_secrets: dict[SecretKey, TLSSecret] = field(default_factory=dict)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)


@dataclass(frozen=True, slots=True)
class Drain:
    """Daemon to worker: shut down gracefully (HttpSettings.shutdown_grace_period)."""


@dataclass(frozen=True, slots=True)
class HealthVerdicts:
    """Daemon to worker: the endpoints (ip, port) failing their active health checks now."""

    down: frozenset[tuple[str, int]] = frozenset()


Message = WorkerConfig | Drain | HealthVerdicts


def encode(message: Message | Delta) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


async def read_config(reader: asyncio.StreamReader) -> Message | None:
    """The next message from the daemon, or None when the pipe closed."""
    try:
        head = await reader.readexactly(_LEN.size)
        data = await reader.readexactly(_LEN.unpack(head)[0])
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    config = pickle.loads(data)
    assert isinstance(config, WorkerConfig | Drain | HealthVerdicts)
    return config


class Frames:
    """Length-prefixed messages cut out of a byte stream (the daemon's end of a pipe)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out: list[Any] = []
        while len(buf) >= _LEN.size:
            size = _LEN.unpack_from(buf)[0]
            end = _LEN.size + size
            if len(buf) < end:
                break
            out.append(pickle.loads(bytes(buf[_LEN.size : end])))
            del buf[:end]
        return out


class WorkerProcess:
    """One child process running ingress.worker, fed over a socketpair."""

    def __init__(self, index: int) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.index = index
        self.started = time.monotonic()
        self.started_at = time.time()
        self.listener: asyncio.Task[None] | None = None  # reads its stats (WorkerPool)
        self.sock = parent
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingress.worker", str(child.fileno()), str(index)],
            pass_fds=(child.fileno(),),
            env=env,
        )
        child.close()
        parent.setblocking(False)

    async def send(self, payload: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, payload)

    async def stop(self, timeout: float = 5.0) -> None:
        if self.listener is not None:
            self.listener.cancel()
            self.listener = None
        self.sock.close()  # the worker sees EOF and shuts down
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self.proc.wait), timeout)
        except TimeoutError:
            log.warning("worker %d did not stop in %.0fs: killing it", self.index, timeout)
            self.proc.kill()
            await loop.run_in_executor(None, self.proc.wait)


class WorkerPool:
    """The N-1 extra worker processes; `publish` sends a config to all of them, `revive`
    restarts the ones that died."""

    def __init__(
        self,
        count: int,
        spawn: Callable[[int], WorkerProcess] = WorkerProcess,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count = count
        self.workers: list[WorkerProcess] = []
        self.restarts = 0
        self.restarts_by_index: dict[int, int] = {}
        # Called with (worker index, Delta) for each stats message, and (index, None) when
        # a worker's pipe closed (its gauges are gone with it).
        self.on_stats: Callable[[int, Delta | None], None] | None = None
        self._spawn = spawn
        self._clock = clock
        self._payload: bytes | None = None  # the last config sent
        self._verdicts: bytes | None = None  # the last HealthVerdicts sent
        self._backoff: dict[int, float] = {}  # index -> current delay after a quick death
        self._not_before: dict[int, float] = {}  # index -> earliest next restart

    def start(self) -> None:
        self.workers = [self._spawn(i) for i in range(1, self.count + 1)]
        for w in self.workers:
            self._listen(w)

    def _listen(self, w: WorkerProcess) -> None:
        if self.on_stats is not None:
            w.listener = asyncio.get_running_loop().create_task(self._read_stats(w))

    async def _read_stats(self, w: WorkerProcess) -> None:
        """Deltas from one worker until its pipe closes."""
        loop = asyncio.get_running_loop()
        frames = Frames()
        report = self.on_stats
        assert report is not None
        try:
            while True:
                try:
                    data = await loop.sock_recv(w.sock, 65536)
                except OSError:
                    break
                if not data:
                    break
                for message in frames.feed(data):
                    if isinstance(message, Delta):
                        report(w.index, message)
        finally:
            report(w.index, None)

    async def revive(self) -> None:
        """Restart every worker that has exited, and give it the last config."""
        now = self._clock()
        for pos, w in enumerate(self.workers):
            code = w.proc.poll()
            if code is None or now < self._not_before.get(w.index, 0.0):
                continue
            if w.index not in self._not_before:  # first look at this death
                quick = now - w.started < CRASH_WINDOW
                delay = min(self._backoff.get(w.index, 0.5) * 2, MAX_BACKOFF) if quick else 0.0
                self._backoff[w.index] = delay if quick else 0.5
                self._not_before[w.index] = now + delay
                log.error(
                    "worker %d (pid %d) exited with %s; restarting it%s",
                    w.index,
                    w.proc.pid,
                    code,
                    f" in {delay:.0f} s" if delay else "",
                )
                if delay:
                    continue
            del self._not_before[w.index]
            listener = getattr(w, "listener", None)  # (tests spawn fakes without one)
            if listener is not None:
                listener.cancel()
            w.sock.close()
            fresh = self._spawn(w.index)
            self._listen(fresh)
            self.workers[pos] = fresh
            self.restarts += 1
            self.restarts_by_index[w.index] = self.restarts_by_index.get(w.index, 0) + 1
            for payload in (self._payload, self._verdicts):
                if payload is None:
                    continue
                try:
                    await fresh.send(payload)
                except OSError as exc:
                    log.error("worker %d: cannot send config: %s", fresh.index, exc)

    async def publish(self, config: WorkerConfig) -> None:
        payload = self._payload = encode(config)
        for w in self.workers:
            if w.proc.poll() is not None:
                continue  # revive restarts it with this config
            try:
                await w.send(payload)
            except OSError as exc:
                log.error("worker %d: cannot send config: %s", w.index, exc)

    async def send_verdicts(self, verdicts: HealthVerdicts) -> None:
        """The active checks' verdicts to every live worker (and to restarted ones)."""
        payload = self._verdicts = encode(verdicts)
        for w in self.workers:
            if w.proc.poll() is None:
                with contextlib.suppress(OSError):  # (a dead one gets it when revived)
                    await w.send(payload)

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))
        self.workers = []

    async def drain(self, grace: float) -> None:
        """Tell every worker to drain, and wait (a little longer than `grace`) for each to
        finish and exit; `stop` then ends whatever is left."""
        payload = encode(Drain())
        live = [w for w in self.workers if w.proc.poll() is None]
        for w in live:
            with contextlib.suppress(OSError):
                await w.send(payload)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + DRAIN_MARGIN
        while any(w.proc.poll() is None for w in live) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        # Their last stats message may still be in the pipe: read it before stop().
        await asyncio.gather(
            *(asyncio.wait_for(w.listener, 1.0) for w in live if w.listener is not None),
            return_exceptions=True,
        )

    def signal(self, signum: int) -> None:
        """Forward a signal to every live worker (SIGUSR1: reopen the access log)."""
        for w in self.workers:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.proc.pid, signum)

    def describe(self) -> list[dict[str, object]]:
        """Each worker process for the status page."""
        return [
            {
                "index": w.index,
                "pid": w.proc.pid,
                "alive": w.proc.poll() is None,
                "exit_code": w.proc.poll(),
                "started": w.started_at,
                "restarts": self.restarts_by_index.get(w.index, 0),
            }
            for w in self.workers
        ]

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]
