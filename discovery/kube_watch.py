"""List and watch one kind of object from the Kubernetes API into the Store.

The reflector loop of client-go, on raw aiohttp:

1. LIST in pages (`limit` + `continue`); the whole result replaces what this watcher's
   source owns in the store (`store.replace_source`), so objects deleted while we were
   not watching disappear. A failed or partial list changes nothing.
2. WATCH from the list's resourceVersion with `allowWatchBookmarks=true` and a
   server-side `timeoutSeconds`; each event upserts/deletes one object; BOOKMARKs only
   advance the resourceVersion.
3. 410 Gone (as an HTTP status or as an ERROR event) -> back to 1. A watch that ends
   (timeout, server closed it) or stalls (no byte for `stall_timeout`) restarts from the
   last resourceVersion seen. Any other trouble (connection refused, 5xx, bad JSON)
   waits an exponential backoff with jitter and retries; the store keeps its objects.

Objects are converted with `discovery.manifest.parse_object(doc, file="api:<Kind>")`;
an invalid object is logged and skipped, and its last good version stays in the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from discovery.kube_config import ApiCredentials
from discovery.manifest import parse_object
from discovery.model import KubeObject, ObjectKey
from discovery.store import Store

log = logging.getLogger("seaway.kube")


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What to list and watch: a collection URL path and the kind its items have."""

    kind: str  # "Service"
    api_version: str  # "v1", "discovery.k8s.io/v1", ...
    path: str  # "/api/v1/services" (all namespaces) or a namespaced collection
    source_id: str  # the store source this watcher owns ("kube:Service")
    field_selector: str = ""


class Backoff:
    """Exponential backoff with jitter: initial * factor**n, capped, times 1 +- jitter."""

    __slots__ = ("_attempt", "factor", "initial", "jitter", "maximum", "rand")

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self.rand = rand
        self._attempt = 0

    def next(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        return base * (1.0 - self.jitter + 2.0 * self.jitter * self.rand())

    def reset(self) -> None:
        self._attempt = 0


@dataclass(slots=True)
class WatchSettings:
    page_size: int = 500
    # Server-side watch timeout; randomised in [t, 2t) like client-go so that watches of
    # many nodes do not all restart at once.
    watch_timeout: float = 300.0
    # No byte (event or bookmark) for this long: the stream is stalled; restart the watch.
    stall_timeout: float = 150.0
    connect_timeout: float = 10.0
    request_timeout: float = 60.0  # one LIST page
    backoff: Callable[[], Backoff] = Backoff
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rand: Callable[[], float] = field(default=random.random)


class Gone(Exception):
    """410: the resourceVersion (or continue token) is too old; re-list."""


class ApiStatusError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


_TRANSIENT = (aiohttp.ClientError, OSError, asyncio.TimeoutError, ApiStatusError, ValueError)


def object_key(kind: str, doc: dict[str, Any]) -> ObjectKey | None:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return None
    ns = meta.get("namespace")
    return ObjectKey(kind, ns if isinstance(ns, str) else "", meta["name"])


class KindWatcher:
    """Keeps the store's objects of one KindSpec in step with the API, until cancelled."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: ApiCredentials,
        spec: KindSpec,
        store: Store,
        settings: WatchSettings | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.credentials = credentials
        self.spec = spec
        self.store = store
        self.settings = settings or WatchSettings()
        self.on_change = on_change  # after every applied list or event
        self.synced = asyncio.Event()  # set after the first complete list
        self.resource_version = ""
        self.lists = 0  # complete lists applied (for tests and logs)
        self.events = 0  # watch events and bookmarks received
        self.failures = 0  # failed lists/watches (connection, HTTP status, bad JSON)
        self.last_error = ""  # the last failure, "" once a list or an event succeeds again
        self._backoff = self.settings.backoff()
        self._file = f"api:{spec.kind}"

    async def run(self) -> None:
        rv: str | None = None
        gones = 0  # 410s in a row without a successful list in between
        while True:
            try:
                if rv is None:
                    rv = await self.list()
                    gones = 0
                started = asyncio.get_running_loop().time()
                received = self.events
                rv = await self.watch(rv)
                quick = asyncio.get_running_loop().time() - started < 1.0
                if quick and self.events == received:
                    # Ended at once with nothing in it: do not spin on a server that
                    # closes every watch.
                    await self.settings.sleep(self._backoff.next())
            except Gone as e:
                log.info("%s: %s; re-listing", self.spec.source_id, e)
                rv = None
                gones += 1
                if gones > 1:
                    await self.settings.sleep(self._backoff.next())
            except _TRANSIENT as e:
                self.failures += 1
                self.last_error = f"{type(e).__name__}: {e}"
                if rv is not None:
                    rv = self.resource_version  # resume after the last event we applied
                delay = self._backoff.next()
                log.warning(
                    "%s: %s failed: %s: %s; retrying in %.1fs",
                    self.spec.source_id,
                    "list" if rv is None else "watch",
                    type(e).__name__,
                    e,
                    delay,
                )
                await self.settings.sleep(delay)

    # ---- LIST ---------------------------------------------------------------------------
    async def list(self) -> str:
        """List every page, then replace the source's objects; returns the resourceVersion.

        The next page is requested as soon as this one's continue token is known, so the
        server prepares it while we parse this one."""
        objects: list[KubeObject] = []
        rv = ""
        fetch = asyncio.ensure_future(self._get_json(self._list_params("")))
        try:
            while True:
                data = await fetch
                meta = data.get("metadata") or {}
                rv = rv or str(meta.get("resourceVersion", ""))
                cont = str(meta.get("continue") or "")
                if cont:
                    fetch = asyncio.ensure_future(self._get_json(self._list_params(cont)))
                for item in data.get("items") or ():
                    obj = self._convert(item, listing=True)
                    if obj is not None:
                        objects.append(obj)
                if not cont:
                    break
        finally:
            if not fetch.done():
                fetch.cancel()
        self.store.replace_source(self.spec.source_id, objects)
        self.lists += 1
        self.resource_version = rv
        self.last_error = ""
        self._backoff.reset()
        log.info(
            "%s: listed %d objects at resourceVersion %s", self.spec.source_id, len(objects), rv
        )
        self.synced.set()
        if self.on_change is not None:
            self.on_change()
        return rv

    def _list_params(self, cont: str) -> dict[str, str]:
        params = {"limit": str(self.settings.page_size)}
        if cont:
            params["continue"] = cont
        if self.spec.field_selector:
            params["fieldSelector"] = self.spec.field_selector
        return params

    async def _get_json(self, params: dict[str, str]) -> dict[str, Any]:
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=s.request_timeout, sock_connect=s.connect_timeout)
        async with self.session.get(
            self.credentials.host + self.spec.path,
            params=params,
            headers=await self.credentials.headers(),
            ssl=self.credentials.ssl_context or False,
            timeout=timeout,
        ) as resp:
            body = await resp.read()
            if resp.status == 410:
                raise Gone(_status_message(body))
            if resp.status != 200:
                raise ApiStatusError(resp.status, _status_message(body))
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("list response is not an object")
        return data

    # ---- WATCH ----------------------------------------------------------------------------
    async def watch(self, rv: str) -> str:
        """Watch from rv until the stream ends or stalls; returns the last resourceVersion."""
        s = self.settings
        server_timeout = int(s.watch_timeout * (1.0 + s.rand()))
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(1, server_timeout)),
        }
        if self.spec.field_selector:
            params["fieldSelector"] = self.spec.field_selector
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.connect_timeout)
        async with self.session.get(
            self.credentials.host + self.spec.path,
            params=params,
            headers=await self.credentials.headers(),
            ssl=self.credentials.ssl_context or False,
            timeout=timeout,
        ) as resp:
            if resp.status == 410:
                raise Gone(_status_message(await resp.read()))
            if resp.status != 200:
                raise ApiStatusError(resp.status, _status_message(await resp.read()))
            buf = bytearray()
            content = resp.content
            while True:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancellation that lands as data arrives, and the watcher then outlives
                    # its source's shutdown.
                    async with asyncio.timeout(s.stall_timeout):
                        chunk = await content.readany()
                except TimeoutError:
                    log.warning(
                        "%s: watch stalled (nothing for %.0fs); restarting it from %s",
                        self.spec.source_id,
                        s.stall_timeout,
                        rv,
                    )
                    return rv
                if not chunk:
                    return rv  # the server ended the watch (timeoutSeconds, shutdown)
                buf += chunk
                start = 0
                while (end := buf.find(b"\n", start)) >= 0:
                    line = bytes(buf[start:end])
                    start = end + 1
                    if line.strip():
                        self.events += 1
                        rv = self._event(line, rv)
                        self.resource_version = rv
                        self.last_error = ""
                        self._backoff.reset()
                del buf[:start]

    def _event(self, line: bytes, rv: str) -> str:
        event = json.loads(line)
        etype = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            raise ValueError(f"watch event without object: {line[:200]!r}")
        if etype == "ERROR":
            code = obj.get("code")
            message = str(obj.get("message", ""))
            if code == 410:
                raise Gone(message)
            raise ApiStatusError(int(code or 500), message)
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if etype == "BOOKMARK":
            return new_rv
        if etype == "DELETED":
            key = object_key(self.spec.kind, obj)
            if key is not None:
                self.store.delete(key)
        elif etype in ("ADDED", "MODIFIED"):
            converted = self._convert(obj, listing=False)
            if converted is not None:
                self.store.upsert(converted, source_id=self.spec.source_id)
        else:
            log.warning("%s: unknown watch event type %r", self.spec.source_id, etype)
            return new_rv
        if self.on_change is not None:
            self.on_change()
        return new_rv

    def _convert(self, doc: dict[str, Any], listing: bool) -> KubeObject | None:
        """API object -> model object. Invalid: logged; the last good version is returned
        when listing (so replace_source keeps it) and nothing otherwise."""
        doc.setdefault("kind", self.spec.kind)  # list items carry no kind/apiVersion
        doc.setdefault("apiVersion", self.spec.api_version)
        obj, errors = parse_object(doc, file=self._file)
        if obj is not None and not errors:
            return obj
        key = object_key(self.spec.kind, doc)
        if errors:
            for err in errors:
                log.error("%s (last good version kept)", err)
            return self.store.get(key) if listing and key is not None else None
        if key is not None and not listing:
            # Not (or no longer) an object seaway uses, e.g. a Secret that is not TLS.
            self.store.delete(key)
        return None


def _status_message(body: bytes) -> str:
    try:
        status = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return body[:200].decode("utf-8", "replace")
