"""The stand-in's object database: etcd plus the apiserver's watch cache, in memory.

One global resourceVersion counter (like etcd's revision); every write gets the next
value. An event history feeds watches started from an older resourceVersion; `compact()`
forgets history so such watches (and list continue tokens) get 410 Gone.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi.encoding import ObjectCache
from tests.kubeapi.resources import Resource

Obj = dict[str, Any]


class ApiError(Exception):
    """An API failure answered as a v1 Status object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    resource: Resource
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj  # never mutated after it is recorded


@dataclass(slots=True)
class Selector:
    """fieldSelector (metadata.name / metadata.namespace, = and !=) and equality labelSelector."""

    fields: list[tuple[str, str, bool]] = field(default_factory=list)  # (path, value, equal)
    labels: list[tuple[str, str | None, bool]] = field(default_factory=list)

    @classmethod
    def parse(cls, field_selector: str, label_selector: str) -> Selector:
        sel = cls()
        for term in filter(None, (t.strip() for t in field_selector.split(","))):
            neg = "!=" in term
            key, _, value = term.partition("!=" if neg else "=")
            key, value = key.strip(), value.lstrip("=").strip()
            if key not in ("metadata.name", "metadata.namespace", "type"):
                raise ApiError(400, "BadRequest", f'field label not supported: "{key}"')
            sel.fields.append((key, value, not neg))
        for term in filter(None, (t.strip() for t in label_selector.split(","))):
            if "!=" in term:
                k, _, v = term.partition("!=")
                sel.labels.append((k.strip(), v.strip(), False))
            elif "=" in term:
                k, _, v = term.partition("=")
                sel.labels.append((k.strip(), v.lstrip("=").strip(), True))
            elif term.startswith("!"):
                sel.labels.append((term[1:].strip(), None, False))
            else:
                sel.labels.append((term, None, True))
        return sel

    def matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata", {})
        for path, value, equal in self.fields:
            if path == "type":
                actual = str(obj.get("type", ""))
            else:
                actual = str(meta.get(path.split(".", 1)[1], ""))
            if (actual == value) != equal:
                return False
        labels = meta.get("labels") or {}
        for key, lvalue, equal in self.labels:
            if lvalue is None:
                if (key in labels) != equal:
                    return False
            elif (labels.get(key) == lvalue) != equal:
                return False
        return True


class Watcher:
    """One open watch: a queue of events the HTTP handler drains."""

    __slots__ = ("closed", "namespace", "queue", "resource", "selector")

    def __init__(self, resource: Resource, namespace: str, selector: Selector) -> None:
        self.resource = resource
        self.namespace = namespace
        self.selector = selector
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()  # None: close
        self.closed = False

    def wants(self, event: Event) -> bool:
        if event.resource is not self.resource:
            return False
        if self.namespace and event.obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.selector.matches(event.obj)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Database:
    def __init__(self, history_limit: int = 200_000, first_rv: int = 1000) -> None:
        self.rv = first_rv
        self.compacted = 0  # watches/continues from an rv below this get 410 Gone
        self.history: deque[Event] = deque()
        self.history_limit = history_limit
        self.objects: dict[Resource, dict[tuple[str, str], Obj]] = {}
        self.watchers: set[Watcher] = set()
        # Hooks for defaulting (e.g. Service cluster IP allocation): kind -> f(obj).
        self.defaulters: dict[str, Callable[[Obj], None]] = {}
        self.cache = ObjectCache()  # encoded bytes of stored objects (never mutated)

    # ---- reads -------------------------------------------------------------------
    def table(self, res: Resource) -> dict[tuple[str, str], Obj]:
        return self.objects.setdefault(res, {})

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self.table(res).get((namespace, name))
        if obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'{res.plural}{"." + res.group if res.group else ""} "{name}" not found',
                {"name": name, "group": res.group, "kind": res.plural},
            )
        return obj

    def list(self, res: Resource, namespace: str, selector: Selector) -> list[Obj]:
        items = [
            o
            for (ns, _), o in self.table(res).items()
            if (not namespace or ns == namespace) and selector.matches(o)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items

    # ---- writes ------------------------------------------------------------------
    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _record(self, res: Resource, type_: str, obj: Obj) -> None:
        event = Event(int(obj["metadata"]["resourceVersion"]), res, type_, obj)
        self.history.append(event)
        while len(self.history) > self.history_limit:
            old = self.history.popleft()
            self.compacted = max(self.compacted, old.rv)
        for w in list(self.watchers):
            if w.wants(event):
                w.queue.put_nowait(event)

    def _prepare(self, res: Resource, namespace: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request",
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        return obj

    def create(self, res: Resource, namespace: str, body: Obj, dry_run: bool = False) -> Obj:
        obj = self._prepare(res, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise ApiError(
                    422, "Invalid", f"{res.kind} is invalid: metadata.name: Required value"
                )
        key = (meta.get("namespace", ""), meta["name"])
        if res.status_subresource:
            obj.pop("status", None)  # status is written through /status only
        if key in self.table(res):
            raise ApiError(
                409,
                "AlreadyExists",
                f'{res.plural} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": res.group, "kind": res.plural},
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta.pop("resourceVersion", None)
        meta["generation"] = 1
        defaulter = self.defaulters.get(res.kind)
        if defaulter is not None:
            defaulter(obj)
        if dry_run:
            return obj
        meta["resourceVersion"] = str(self._next_rv())
        self.table(res)[key] = obj
        self._record(res, "ADDED", obj)
        return obj

    def update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        body: Obj,
        dry_run: bool = False,
        subresource: str = "",
    ) -> Obj:
        """PUT semantics. For kinds with a status subresource, a write to the object keeps
        the current status, and a write to "status" changes only the status."""
        current = self.get(res, namespace, name)
        obj = self._prepare(res, namespace, body)
        if res.status_subresource:
            if subresource == "status":
                sent = obj
                obj = copy.deepcopy(current)
                obj["metadata"]["resourceVersion"] = sent["metadata"].get("resourceVersion")
                if "status" in sent:
                    obj["status"] = sent["status"]
                else:
                    obj.pop("status", None)
            elif "status" in current:
                obj["status"] = copy.deepcopy(current["status"])
            else:
                obj.pop("status", None)
        meta = obj["metadata"]
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        meta["name"] = name
        sent_rv = meta.get("resourceVersion")
        cur_meta = current["metadata"]
        if sent_rv and sent_rv != cur_meta["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        meta["uid"] = cur_meta["uid"]
        meta["creationTimestamp"] = cur_meta["creationTimestamp"]
        gen = int(cur_meta.get("generation", 1))
        meta["generation"] = gen + 1 if obj.get("spec") != current.get("spec") else gen
        defaulter = self.defaulters.get(res.kind)
        if defaulter is not None:
            defaulter(obj)
        meta["resourceVersion"] = cur_meta["resourceVersion"]
        if obj == current or dry_run:
            return current if obj == current else obj
        meta["resourceVersion"] = str(self._next_rv())
        self.table(res)[(cur_meta.get("namespace", ""), name)] = obj
        self.cache.forget(current)
        self._record(res, "MODIFIED", obj)
        return obj

    def delete(self, res: Resource, namespace: str, name: str, dry_run: bool = False) -> Obj:
        current = self.get(res, namespace, name)
        if dry_run:
            return current
        del self.table(res)[(current["metadata"].get("namespace", ""), name)]
        self.cache.forget(current)
        gone_obj = copy.deepcopy(current)
        gone_obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._record(res, "DELETED", gone_obj)
        return gone_obj

    def load(self, res: Resource, objects: Iterable[Obj]) -> int:
        """Bulk-load objects without events (a bench's starting state): as if they were
        written before the oldest event still in history."""
        table = self.table(res)
        n = 0
        for body in objects:
            obj = self._prepare(res, "", body)
            meta = obj["metadata"]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            meta["resourceVersion"] = str(self._next_rv())
            table[(meta.get("namespace", ""), meta["name"])] = obj
            self.cache.item(obj)  # stored encoded, as etcd (and the watch cache) hold them
            n += 1
        return n

    # ---- watches -------------------------------------------------------------------
    def watch(
        self, res: Resource, namespace: str, selector: Selector, since: int | None
    ) -> Watcher:
        """Open a watch. since=None: synthetic ADDED for every current object, then live
        events (a watch without resourceVersion); else every event after `since`."""
        w = Watcher(res, namespace, selector)
        if since is None:
            for obj in self.list(res, namespace, selector):
                w.queue.put_nowait(
                    Event(int(obj["metadata"]["resourceVersion"]), res, "ADDED", obj)
                )
        else:
            if since < self.compacted:
                raise gone(f"too old resource version: {since} ({self.compacted})")
            for event in self.history:
                if event.rv > since and w.wants(event):
                    w.queue.put_nowait(event)
        self.watchers.add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self.watchers.discard(w)
        w.close()

    def drop_watches(self) -> int:
        n = len(self.watchers)
        for w in list(self.watchers):
            self.unwatch(w)
        return n

    def compact(self) -> int:
        """Forget all history: every resourceVersion handed out so far is now expired
        (the counter moves on by one, so a list made after this can be watched from)."""
        self.history.clear()
        self.rv += 1
        self.compacted = self.rv
        return self.compacted
