"""Objects from manifest files, followed as they change.

`FileSource(path)` reads a manifest file, or a directory recursively (*.yaml, *.yml,
*.json; dotfiles and editor temp files skipped), and keeps the store in step with it:

- each file is a store source (`store.replace_source(file, objects)`), so a deleted file,
  or an object removed from a file, disappears from the store;
- a file that fails to parse or validate is logged by name with every error, and its
  last good objects stay in force;
- an object defined by two files comes from the file loaded (or changed) last, with a
  warning; when that file drops it, the other file's version comes back.

Secrets: kubernetes.io/tls ones are kept as the files give them. With `secret_refs`
(`seaway run` passes it), any other Secret is kept only while an owned Ingress of the files
names it (discovery/secret_refs.py: auth-secret, proxy-ssl-secret); the others are
dropped right after parsing, and only their names are remembered, so that when an Ingress
comes to name one, its file is read again. Without `secret_refs` every Secret is kept.

Changes are noticed with watchfiles (inotify). Each batch of events, and every
`rescan_interval` seconds without events, the files are also compared by (mtime, size,
inode), which catches what events can miss: a change made before the watcher started,
and Kubernetes ConfigMap volumes, whose files are symlinks swapped through a hidden
`..data` directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from typing import Protocol

from watchfiles import awatch

from discovery.manifest import ManifestError, discover_files, load_file
from discovery.model import (
    KIND_INGRESS,
    KIND_INGRESSCLASS,
    GenericSecret,
    Ingress,
    IngressClass,
    KubeObject,
    ObjectKey,
)
from discovery.secret_refs import NsName, SecretRefs

log = logging.getLogger(__name__)

BIG_FILE = 512 * 1024  # bytes; bigger files are parsed off the event loop
# watchfiles polls its queue of inotify events every `step` ms and yields once a poll
# finds no new event, so a change is seen step..2*step ms after it happened (50 ms, the
# default, made 50-100 ms of an endpoint change's latency). An atomic rename, a ConfigMap
# symlink swap or an editor's save produces its events within microseconds.
WATCH_STEP_MS = 20
Signature = tuple[int, int, int]  # mtime_ns, size, inode (of the target, symlinks followed)


class SourceStore(Protocol):
    def replace_source(self, source_id: str, objects: Iterable[KubeObject]) -> None: ...


class FileSource:
    """A manifest file or directory, loaded and then watched until cancelled."""

    def __init__(
        self, path: str, rescan_interval: float = 1.0, secret_refs: SecretRefs | None = None
    ) -> None:
        self.path = path
        self.rescan_interval = rescan_interval
        self.secret_refs = secret_refs
        self._wanted: set[NsName] = set()  # Secrets the owned Ingresses name
        self._withheld: dict[NsName, set[str]] = {}  # dropped Secret -> files defining it
        self._kept: dict[NsName, set[str]] = {}  # kept non-TLS Secret -> files defining it
        self.objects_by_file: dict[str, list[KubeObject]] = {}  # last good, per file
        self.errors_by_file: dict[str, list[ManifestError]] = {}  # current problems
        self._signatures: dict[str, Signature] = {}
        self._definers: dict[ObjectKey, list[str]] = {}  # files defining a key, oldest first
        self._batches = 0
        self._batch_done = asyncio.Event()
        self._store: SourceStore | None = None
        self._loaded = False

    async def run(self, store: SourceStore, ready: Callable[[], None]) -> None:
        self._store = store
        if not os.path.exists(self.path):
            log.error("%s: no such file or directory (waiting for it to appear)", self.path)
        await self.sync(store, set())
        log.info(
            "loaded %d objects from %d files under %s",
            sum(len(o) for o in self.objects_by_file.values()),
            len(self.objects_by_file),
            self.path,
        )
        self._loaded = True
        ready()
        is_dir = os.path.isdir(self.path)
        # A single file is watched through its directory (editors replace files by
        # renaming), not recursively.
        root = self.path if is_dir else os.path.dirname(os.path.abspath(self.path))
        while not os.path.isdir(root):
            await asyncio.sleep(self.rescan_interval)
            await self.sync(store, set())
        target = os.path.abspath(self.path)
        async for changes in awatch(
            root,
            # Single-file mode: other files written in that directory (logs beside the
            # manifest, say) must not wake us; renames onto the file still do.
            watch_filter=None if is_dir else _OnlyPath(target),
            step=WATCH_STEP_MS,
            rust_timeout=int(self.rescan_interval * 1000),
            yield_on_timeout=True,
            recursive=is_dir,
        ):
            await self.sync(store, {os.path.abspath(p) for _, p in changes})

    async def reload(self) -> None:
        """Read every file again now, changed or not (SIGHUP)."""
        if self._store is not None:
            touched = {os.path.abspath(f) for f in discover_files(self.path)}
            await self.sync(self._store, touched)

    def status(self) -> dict[str, object]:
        """For the status page (proxy/app/status.py documents the keys)."""
        errors = [
            {"file": file, "message": str(e)}
            for file in sorted(self.errors_by_file)
            for e in self.errors_by_file[file]
        ]
        state = "loading" if not self._loaded else "errors" if errors else "ok"
        return {
            "kind": "files",
            "path": self.path,
            "state": state,
            "files": len(self.objects_by_file),
            "objects": sum(len(o) for o in self.objects_by_file.values()),
            "errors": errors,
        }

    async def wait_batches(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` batches (initial load included) have been applied: tests."""
        async with asyncio.timeout(timeout):
            while self._batches < count:
                self._batch_done.clear()
                await self._batch_done.wait()

    @property
    def batches(self) -> int:
        return self._batches

    async def sync(self, store: SourceStore, touched: set[str]) -> None:
        """Bring the store in step with the files: reload the files named in `touched`
        or whose signature changed, drop the files that are gone. A big file is parsed
        in a worker thread so the event loop (and the proxying on it) keeps running."""
        files = discover_files(self.path)
        present = set(files)
        gone = [f for f in self._known() if f not in present]
        owners_gone = any(_owner(o) for f in gone for o in self.objects_by_file.get(f, ()))
        for file in gone:
            self._forget(store, file)
        loaded: list[tuple[str, list[KubeObject], list[ManifestError]]] = []
        for file in files:
            sig = _signature(file)
            if sig is None:
                continue  # vanished between listing and stat: the next batch drops it
            if os.path.abspath(file) in touched or self._signatures.get(file) != sig:
                self._signatures[file] = sig
                loaded.append((file, *await _load(file, sig)))
        wanted_before = self._wanted
        if self.secret_refs is not None:
            self._update_wanted(loaded, owners_gone)
        for file, objects, errors in loaded:
            self._reload(store, file, objects, errors)
        if self._wanted != wanted_before:
            await self._follow_references(store, {file for file, _, _ in loaded})
        self._batches += 1
        self._batch_done.set()

    def _known(self) -> list[str]:
        return sorted(set(self._signatures) | set(self.objects_by_file))

    def _reload(
        self,
        store: SourceStore,
        file: str,
        objects: list[KubeObject],
        errors: list[ManifestError],
    ) -> None:
        if errors:
            self.errors_by_file[file] = errors
            kept = len(self.objects_by_file.get(file, ()))
            log.error(
                "%s: %d error(s); keeping its last good objects (%d):\n  %s",
                file,
                len(errors),
                kept,
                "\n  ".join(str(e) for e in errors),
            )
            return
        self.errors_by_file.pop(file, None)
        self._apply(store, file, self._gate(file, objects))
        log.info("%s: %d objects", file, len(objects))

    def _forget(self, store: SourceStore, file: str) -> None:
        log.info("%s: removed; deleting its objects", file)
        self._signatures.pop(file, None)
        self.errors_by_file.pop(file, None)
        self._apply(store, file, self._gate(file, []))
        self.objects_by_file.pop(file, None)

    # -- Secrets: only those the owned Ingresses name --------------------------------------

    def _update_wanted(
        self, loaded: list[tuple[str, list[KubeObject], list[ManifestError]]], force: bool
    ) -> None:
        """Recompute the Secrets named, when the batch touches Ingresses or classes."""
        assert self.secret_refs is not None
        fresh = {file: objects for file, objects, errors in loaded if not errors}
        if not force and not any(
            _owner(o)
            for file, objects in fresh.items()
            for o in (*objects, *self.objects_by_file.get(file, ()))
        ):
            return
        ingresses: list[Ingress] = []
        classes: list[IngressClass] = []
        for file in self.objects_by_file.keys() | fresh.keys():
            for o in fresh.get(file, self.objects_by_file.get(file, ())):
                if isinstance(o, Ingress):
                    ingresses.append(o)
                elif isinstance(o, IngressClass):
                    classes.append(o)
        self._wanted = self.secret_refs.of_ingresses(ingresses, classes)

    def _gate(self, file: str, objects: list[KubeObject]) -> list[KubeObject]:
        """`objects` without the non-TLS Secrets no owned Ingress names (their names are
        remembered as withheld), updating which file defines which Secret."""
        if self.secret_refs is None:
            return objects
        for index in (self._withheld, self._kept):
            for key in [k for k, files in index.items() if file in files]:
                index[key].discard(file)
                if not index[key]:
                    del index[key]
        kept: list[KubeObject] = []
        for obj in objects:
            if isinstance(obj, GenericSecret):
                key = (obj.meta.namespace, obj.meta.name)
                index = self._kept if key in self._wanted else self._withheld
                index.setdefault(key, set()).add(file)
                if index is self._withheld:
                    continue
            kept.append(obj)
        return kept

    async def _follow_references(self, store: SourceStore, loaded: set[str]) -> None:
        """The named Secrets changed: drop the kept ones no longer named, and read again
        the files of withheld ones now named."""
        dropped = {f for k, files in self._kept.items() if k not in self._wanted for f in files}
        for file in sorted(dropped - loaded):
            self._apply(store, file, self._gate(file, self.objects_by_file.get(file, [])))
        again = {f for k, files in self._withheld.items() if k in self._wanted for f in files}
        for file in sorted(again - loaded):
            sig = _signature(file)
            if sig is None:
                continue
            self._signatures[file] = sig
            log.info("%s: read again: an Ingress now names a Secret it defines", file)
            self._reload(store, file, *await _load(file, sig))

    def _apply(self, store: SourceStore, file: str, objects: list[KubeObject]) -> None:
        old_keys = {o.key for o in self.objects_by_file.get(file, ())}
        new_keys = {o.key for o in objects}
        for key in new_keys - old_keys:
            files = self._definers.setdefault(key, [])
            if files:
                log.warning("%s is defined in %s and %s; using %s", key, files[-1], file, file)
            files.append(file)
        self.objects_by_file[file] = objects
        store.replace_source(file, objects)
        # Keys this file no longer defines but another file does: that file's version
        # comes back (the store deleted the key, as this file owned it).
        restore: set[str] = set()
        for key in old_keys - new_keys:
            files = self._definers.get(key, [])
            if file in files:
                files.remove(file)
            if files:
                restore.add(files[-1])
            else:
                self._definers.pop(key, None)
        for other in sorted(restore):
            store.replace_source(other, self.objects_by_file[other])


def _owner(obj: KubeObject) -> bool:
    """Whether `obj` can change which Secrets are named."""
    return obj.kind == KIND_INGRESS or obj.kind == KIND_INGRESSCLASS


async def _load(file: str, sig: Signature) -> tuple[list[KubeObject], list[ManifestError]]:
    if sig[1] > BIG_FILE:
        return await asyncio.to_thread(load_file, file)
    return load_file(file)


def _signature(file: str) -> Signature | None:
    try:
        st = os.stat(file)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class _OnlyPath:
    """watchfiles filter passing changes of one path only."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, change: object, path: str) -> bool:
        return os.path.abspath(path) == self.path
