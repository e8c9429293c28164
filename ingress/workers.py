"""Worker processes: config distribution from the daemon to `--workers` HTTP processes.

How config reaches every worker: the daemon (the only process that watches files or the
Kubernetes API) reduces each Snapshot to its ingress part (Ingresses, IngressClasses,
TLS Secrets, service ports by service), pickles it and writes it, length-prefixed, to a
Unix socketpair per worker right after its own sync. Each worker compiles its own Router
and CertStore from it, so a change reaches every worker as soon as the daemon has synced
(milliseconds; well under 1 s). Workers never talk to the API server, so N workers do
not mean N watches. A worker whose pipe closes (daemon gone) exits.

Listeners: the daemon process serves too (worker 0, in its own loop) and binds first,
with SO_REUSEPORT, so a port 0 in the flags is resolved once; the N-1 worker processes
bind the same resolved address with SO_REUSEPORT and the kernel spreads connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from discovery.snapshot import Snapshot
from ingress.settings import HttpSettings

log = logging.getLogger(__name__)

_LEN = struct.Struct("!I")
REPO_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker needs for one config generation (pickled to it)."""

    settings: HttpSettings
    controller: str
    watch_without_class: bool
    http: tuple[str, int] | None  # resolved address, None = not listening
    https: tuple[str, int] | None
    snapshot: Snapshot = field(default_factory=Snapshot)


def ingress_part(snapshot: Snapshot) -> Snapshot:
    """The part of a Snapshot the L7 proxy reads (plain dicts, so it pickles)."""
    return Snapshot(
        generation=snapshot.generation,
        services=dict(snapshot.services),
        ingresses=snapshot.ingresses,
        ingress_classes=snapshot.ingress_classes,
        tls_secrets=dict(snapshot.tls_secrets),
        ports_by_service=dict(snapshot.ports_by_service),
    )


def encode(config: WorkerConfig) -> bytes:
    data = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


async def read_config(reader: asyncio.StreamReader) -> WorkerConfig | None:
    """The next config from the daemon, or None when the pipe closed."""
    try:
        head = await reader.readexactly(_LEN.size)
        data = await reader.readexactly(_LEN.unpack(head)[0])
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    config = pickle.loads(data)
    assert isinstance(config, WorkerConfig)
    return config


class WorkerProcess:
    """One child process running ingress.worker, fed over a socketpair."""

    def __init__(self, index: int) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.index = index
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
        self.sock.close()  # the worker sees EOF and shuts down
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self.proc.wait), timeout)
        except TimeoutError:
            log.warning("worker %d did not stop in %.0fs: killing it", self.index, timeout)
            self.proc.kill()
            await loop.run_in_executor(None, self.proc.wait)


class WorkerPool:
    """The N-1 extra worker processes; `publish` sends a config to all of them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.workers: list[WorkerProcess] = []

    def start(self) -> None:
        self.workers = [WorkerProcess(i) for i in range(1, self.count + 1)]

    async def publish(self, config: WorkerConfig) -> None:
        payload = encode(config)
        for w in self.workers:
            if w.proc.poll() is not None:
                log.error("worker %d exited with %s", w.index, w.proc.returncode)
                continue
            try:
                await w.send(payload)
            except OSError as exc:
                log.error("worker %d: cannot send config: %s", w.index, exc)

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))
        self.workers = []

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]
