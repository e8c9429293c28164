"""Writing status back through the Kubernetes API: what the Gateway API status writer
(discovery/kube_gateway.py) and the Ingress status writer (discovery/kube_ingress_status.py)
share.

A `StatusWriter` recomputes the status of the objects it is responsible for from the
store whenever `kick()` is called (watch events; bursts are coalesced by `delay`), and
writes what changed through the status subresource: a JSON merge patch carrying the
object's resourceVersion, so a status computed from a stale object is refused (409) and
recomputed once the watch delivers the newer one. Each object's status is written once
per resourceVersion: the watch brings the written object back, and the next computation
finds nothing to change. API errors back off and retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Literal

import aiohttp

from discovery.kube_config import ApiCredentials
from discovery.kube_watch import Backoff
from discovery.model_meta import ObjectKey, StatusUpdate
from discovery.store import Store

log = logging.getLogger("seaway.kube")

WriteResult = Literal["written", "conflict", "gone"]


class StatusWriter:
    """Keeps some objects' status true, until cancelled. Subclasses say which objects
    and what status (`updates`), and where each is written (`status_path`)."""

    what = "status"  # for logs

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: ApiCredentials,
        store: Store,
        *,
        delay: float = 0.1,
        inputs_listed: Callable[[], bool] = lambda: True,
        backoff: Callable[[], Backoff] = Backoff,
        timeout: float = 10.0,
    ) -> None:
        self.session = session
        self.credentials = credentials
        self.store = store
        self.delay = delay
        # False while some input is still being listed: a status computed from half the
        # objects would be wrong for a moment; the list's completion kicks the writer.
        self.inputs_listed = inputs_listed
        self.timeout = timeout
        self.writes = 0  # status writes that succeeded (tests, logs)
        self.conflicts = 0  # writes refused because the object had changed
        self.passes = 0  # computations run
        self.failures = 0  # passes that failed (API unreachable, errors): retried later
        self._backoff = backoff()
        self._wake = asyncio.Event()
        self._sent: dict[ObjectKey, str] = {}  # key -> resourceVersion last written from

    # -- what subclasses say ------------------------------------------------------------------
    def updates(self) -> list[StatusUpdate]:
        """The status of every object whose status should change, from the store."""
        raise NotImplementedError

    def status_path(self, key: ObjectKey) -> str | None:
        """The API path of the object's status subresource; None: not written."""
        raise NotImplementedError

    # -- the loop -----------------------------------------------------------------------------
    def kick(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        self._wake.set()
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.delay)  # let a burst of events land first
            self._wake.clear()
            if not self.inputs_listed():
                continue
            try:
                await self.reconcile()
                self._backoff.reset()
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
                self.failures += 1
                wait = self._backoff.next()
                log.warning("%s: %s: %s; retrying in %.1fs", self.what, type(e).__name__, e, wait)
                asyncio.get_running_loop().call_later(wait, self._wake.set)

    async def reconcile(self) -> None:
        """Compute every status from the store; write those that changed."""
        self.passes += 1
        self._sent = {k: rv for k, rv in self._sent.items() if self.store.get(k) is not None}
        for update in self.updates():
            if self._sent.get(update.key) == update.resource_version:
                continue  # written from this version already; the watch brings the result
            await self.write(update)

    async def write(self, update: StatusUpdate) -> WriteResult:
        """PATCH the status subresource; raises ValueError on an unexpected answer."""
        key = update.key
        path = self.status_path(key)
        if path is None:
            return "gone"
        body = {"metadata": {"resourceVersion": update.resource_version}, "status": update.status}
        headers = await self.credentials.headers()
        headers["Content-Type"] = "application/merge-patch+json"
        async with self.session.patch(
            self.credentials.host + path,
            data=json.dumps(body),
            headers=headers,
            ssl=self.credentials.ssl_context or False,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            text = await resp.read()
            if resp.status == 200:
                self.writes += 1
                self._sent[key] = update.resource_version
                log.info("%s: status written", key)
                return "written"
            if resp.status == 409:
                self.conflicts += 1  # changed meanwhile: the watch brings it, then we redo
                log.debug("%s: status not written (object changed); will recompute", key)
                return "conflict"
            if resp.status == 404:
                log.debug("%s: gone before its status was written", key)
                return "gone"
            raise ValueError(f"{key}: status write: HTTP {resp.status}: {text[:200]!r}")
