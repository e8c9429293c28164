"""FileSource with real files in tmp_path: initial load, add, change, delete, a broken file
keeping its last good objects, duplicates across files, single-file mode, and the real Store.

No fixed sleeps: every test waits for a condition (a store call, a processed batch) with a
timeout."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import pytest

from discovery.file_source import FileSource
from discovery.model import KubeObject, ObjectKey, Service
from discovery.store import Store

TIMEOUT = 10.0


def service(name: str, ip: str, port: int = 80, namespace: str = "default") -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {namespace}
spec:
  clusterIP: {ip}
  ports:
  - port: {port}
"""


class FakeStore:
    """Records replace_source calls; lets a test wait for the next one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[KubeObject]]] = []
        self.changed = asyncio.Event()

    def replace_source(self, source_id: str, objects: Iterable[KubeObject]) -> None:
        self.calls.append((source_id, list(objects)))
        self.changed.set()

    def current(self, source_id: str) -> list[str] | None:
        """Keys of the last objects given for source_id (None: never called)."""
        for sid, objects in reversed(self.calls):
            if sid == source_id:
                return [str(o.key) for o in objects]
        return None


async def until(cond: Callable[[], bool], source: FileSource) -> None:
    """Wait (bounded) until cond() holds, re-checking after each processed batch."""
    async with asyncio.timeout(TIMEOUT):
        while not cond():
            await source.wait_batches(source.batches + 1, TIMEOUT)


Scenario = Callable[[FileSource, FakeStore], Awaitable[None]]


def run_source(path: Path, scenario: Scenario) -> list[int]:
    """Run a FileSource on path with a FakeStore through `scenario`; returns ready calls."""
    readies: list[int] = []

    async def main() -> None:
        store = FakeStore()
        source = FileSource(str(path), rescan_interval=0.2)
        task = asyncio.create_task(source.run(store, lambda: readies.append(1)))
        try:
            await source.wait_batches(1, TIMEOUT)
            await scenario(source, store)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    return readies


def test_initial_load_add_change_delete(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(service("a", "10.96.0.1"))
    (tmp_path / "sub").mkdir()
    b = tmp_path / "sub" / "b.yml"
    b.write_text(service("b", "10.96.0.2"))

    async def scenario(source: FileSource, store: FakeStore) -> None:
        assert store.current(str(a)) == ["Service default/a"]
        assert store.current(str(b)) == ["Service default/b"]

        c = tmp_path / "c.json"
        c.write_text(
            '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"},'
            ' "spec": {"clusterIP": "10.96.0.3", "ports": [{"port": 53}]}}'
        )
        await until(lambda: store.current(str(c)) == ["Service default/c"], source)

        a.write_text(service("a", "10.96.0.1", port=8080))
        await until(lambda: _port_of(store, str(a)) == 8080, source)

        b.unlink()
        await until(lambda: store.current(str(b)) == [], source)
        assert source.objects_by_file.keys() == {str(a), str(c)}

    assert run_source(tmp_path, scenario) == [1]  # ready() exactly once


def _port_of(store: FakeStore, source_id: str) -> int | None:
    for sid, objects in reversed(store.calls):
        if sid == source_id:
            svc = objects[0]
            assert isinstance(svc, Service)
            return svc.ports[0].port
    return None


def test_broken_file_keeps_last_good_objects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = tmp_path / "web.yaml"
    web.write_text(service("web", "10.96.0.1"))

    async def scenario(source: FileSource, store: FakeStore) -> None:
        calls = len(store.calls)
        bad = service("web", "10.96.0.1", port=70000).replace(
            "clusterIP: 10.96.0.1", "clusterIP: nope"
        )
        web.write_text(bad)
        await until(lambda: str(web) in source.errors_by_file, source)
        assert len(store.calls) == calls  # nothing replaced: last good objects stay
        assert [str(o.key) for o in source.objects_by_file[str(web)]] == ["Service default/web"]
        messages = "\n".join(r.getMessage() for r in caplog.records)
        assert f"{web}: 2 error(s); keeping its last good objects (1)" in messages
        assert (
            f'{web}: Service default/web: spec.clusterIP: must be a valid IP address, got "nope"'
            in messages
        )
        assert (
            f"{web}: Service default/web: spec.ports[0].port: must be 1-65535, got 70000"
            in messages
        )

        status = source.status()  # what the status page shows: file, object and field
        assert status["state"] == "errors" and status["objects"] == 1
        assert {"file": str(web), "message": f"{web}: Service default/web: spec.ports[0].port: "
                "must be 1-65535, got 70000"} in status["errors"]  # type: ignore[operator]

        web.write_text("spec: [unclosed\n")  # syntax error: also kept
        await until(lambda: "YAML syntax error" in str(source.errors_by_file.get(str(web))), source)
        assert len(store.calls) == calls

        web.write_text(service("web", "10.96.0.9"))  # fixed: applied, errors cleared
        await until(lambda: str(web) not in source.errors_by_file, source)
        svc = store.calls[-1][1][0]
        assert isinstance(svc, Service) and svc.cluster_ips == ("10.96.0.9",)
        assert source.status()["state"] == "ok" and source.status()["errors"] == []

    with caplog.at_level(logging.INFO, logger="discovery.file_source"):
        run_source(tmp_path, scenario)


def test_reload_reads_every_file_again(tmp_path: Path) -> None:
    """SIGHUP: unchanged files are parsed and given to the store again."""
    web = tmp_path / "web.yaml"
    web.write_text(service("web", "10.96.0.1"))

    async def scenario(source: FileSource, store: FakeStore) -> None:
        calls = [sid for sid, _ in store.calls]
        await source.reload()
        assert [sid for sid, _ in store.calls] == [*calls, str(web)]
        assert store.current(str(web)) == ["Service default/web"]

    run_source(tmp_path, scenario)


def test_same_object_in_two_files_later_wins_and_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = tmp_path / "1-first.yaml"
    first.write_text(service("web", "10.96.0.1"))
    second = tmp_path / "2-second.yaml"
    second.write_text(service("web", "10.96.0.2"))

    async def scenario(source: FileSource, store: FakeStore) -> None:
        # loaded in sorted order: the second file is applied last (the store's latest
        # write wins), with a warning
        assert [sid for sid, _ in store.calls] == [str(first), str(second)]
        assert any(
            f"Service default/web is defined in {first} and {second}; using {second}"
            in r.getMessage()
            for r in caplog.records
        )
        calls = len(store.calls)
        second.unlink()
        await until(lambda: len(store.calls) >= calls + 2, source)
        # the second file's objects are dropped, then the first file's version re-applied
        assert store.calls[calls] == (str(second), [])
        sid, objects = store.calls[calls + 1]
        assert sid == str(first)
        assert isinstance(objects[0], Service) and objects[0].cluster_ips == ("10.96.0.1",)

    with caplog.at_level(logging.WARNING, logger="discovery.file_source"):
        run_source(tmp_path, scenario)


def test_single_file_mode_and_editor_rename_save(tmp_path: Path) -> None:
    web = tmp_path / "web.yaml"
    web.write_text(service("web", "10.96.0.1"))
    (tmp_path / "other.yaml").write_text(service("other", "10.96.0.2"))

    async def scenario(source: FileSource, store: FakeStore) -> None:
        assert [sid for sid, _ in store.calls] == [str(web)]  # only the named file
        tmp = tmp_path / ".web.yaml.swp"
        tmp.write_text(service("web", "10.96.0.1", port=9090))
        os.replace(tmp, web)  # how editors save
        await until(lambda: _port_of(store, str(web)) == 9090, source)
        assert {sid for sid, _ in store.calls} == {str(web)}

    run_source(web, scenario)


def test_ignored_files_are_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(service("web", "10.96.0.1"))

    async def scenario(source: FileSource, store: FakeStore) -> None:
        (tmp_path / ".#web.yaml").write_text("broken: [")
        (tmp_path / "web.yaml~").write_text("broken: [")
        (tmp_path / "README.md").write_text("# hi")
        (tmp_path / "late.yaml").write_text(service("late", "10.96.0.3"))
        await until(lambda: store.current(str(tmp_path / "late.yaml")) is not None, source)
        assert source.errors_by_file == {}
        assert {sid for sid, _ in store.calls} == {
            str(tmp_path / "web.yaml"),
            str(tmp_path / "late.yaml"),
        }

    run_source(tmp_path, scenario)


def test_with_the_real_store(tmp_path: Path) -> None:
    web = tmp_path / "web.yaml"
    web.write_text(service("web", "10.96.0.1") + "---\n" + service("api", "10.96.0.2"))
    key_web = ObjectKey("Service", "default", "web")
    key_api = ObjectKey("Service", "default", "api")

    async def main() -> None:
        store = Store()
        source = FileSource(str(tmp_path), rescan_interval=0.2)
        task = asyncio.create_task(source.run(store, lambda: None))
        try:
            await source.wait_batches(1, TIMEOUT)
            assert set(store.objects("Service")) == {key_web, key_api}
            store.take_changes()
            web.write_text(service("web", "10.96.0.1"))  # api removed from the file
            await until(lambda: store.get(key_api) is None, source)
            changes = store.take_changes()
            assert set(changes) == {key_api}
            assert changes[key_api].current is None
            web.unlink()
            await until(lambda: not store.objects("Service"), source)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())


def test_configmap_volume_symlink_swap(tmp_path: Path) -> None:
    """A ConfigMap volume: web.yaml -> ..data/web.yaml, ..data -> ..<timestamp>/; an update
    writes a new hidden directory and swaps the ..data symlink atomically."""
    (tmp_path / "..v1").mkdir()
    (tmp_path / "..v1" / "web.yaml").write_text(service("web", "10.96.0.1"))
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "web.yaml").symlink_to("..data/web.yaml")
    web = str(tmp_path / "web.yaml")

    async def scenario(source: FileSource, store: FakeStore) -> None:
        assert [sid for sid, _ in store.calls] == [web]  # hidden directories not loaded
        (tmp_path / "..v2").mkdir()
        (tmp_path / "..v2" / "web.yaml").write_text(service("web", "10.96.0.1", port=7070))
        (tmp_path / "..data_tmp").symlink_to("..v2")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        await until(lambda: _port_of(store, web) == 7070, source)
        assert {sid for sid, _ in store.calls} == {web}

    run_source(tmp_path, scenario)


def test_big_file_parsed_off_the_loop(tmp_path: Path) -> None:
    from bench.manifest import generate
    from discovery import file_source

    big = tmp_path / "big.yaml"
    big.write_text(generate(1000))
    assert big.stat().st_size > file_source.BIG_FILE  # takes the worker-thread path

    async def scenario(source: FileSource, store: FakeStore) -> None:
        assert len(store.current(str(big)) or []) == 2000
        big.write_text(generate(1001))
        await until(lambda: len(store.current(str(big)) or []) == 2002, source)

    run_source(tmp_path, scenario)


# -- Secrets: only those the owned Ingresses name -------------------------------------------

AUTH_SECRET = """\
apiVersion: v1
kind: Secret
type: Opaque
metadata: {name: basic-auth, namespace: default}
stringData:
  auth: "foo:$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0"
---
apiVersion: v1
kind: Secret
type: Opaque
metadata: {name: db-password, namespace: default}
stringData: {password: hunter2}
"""
CLASS = """\
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
"""


def auth_ingress(secret: str | None, class_name: str = "nginx") -> str:
    annotations = (
        "  annotations:\n"
        "    nginx.ingress.kubernetes.io/auth-type: basic\n"
        f"    nginx.ingress.kubernetes.io/auth-secret: {secret}\n"
        if secret
        else ""
    )
    return f"""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
{annotations}spec:
  ingressClassName: {class_name}
  rules:
  - host: web.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"""


def test_only_secrets_named_by_owned_ingresses_are_kept(tmp_path: Path) -> None:
    """An Opaque Secret reaches the store only while an owned Ingress's auth-secret names
    it; when one comes to name it, its (unchanged) file is read again; when none does any
    more, it leaves the store. Other Secrets never reach it."""
    from discovery.model import KIND_SECRET, GenericSecret
    from discovery.secret_refs import SecretRefs

    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(AUTH_SECRET)
    ingress = tmp_path / "web.yaml"
    ingress.write_text(CLASS + "---\n" + auth_ingress(None))
    auth = ObjectKey(KIND_SECRET, "default", "basic-auth")
    other = ObjectKey(KIND_SECRET, "default", "db-password")

    async def main() -> None:
        store = Store()
        source = FileSource(str(tmp_path), secret_refs=SecretRefs("k8s.io/ingress-nginx"))
        await source.sync(store, set())
        assert store.get(auth) is None and store.get(other) is None
        assert all(not isinstance(o, GenericSecret) for o in source.objects_by_file[str(secrets)])
        # The Ingress comes to name it: secrets.yaml (unchanged) is read again.
        ingress.write_text(CLASS + "---\n" + auth_ingress("basic-auth"))
        await source.sync(store, {str(ingress)})
        found = store.get(auth)
        assert isinstance(found, GenericSecret) and found.data["auth"].startswith(b"foo:$apr1$")
        assert store.get(other) is None
        # An Ingress of another class naming db-password changes nothing.
        ingress.write_text(CLASS + "---\n" + auth_ingress("db-password", "other"))
        await source.sync(store, {str(ingress)})
        assert store.get(auth) is None and store.get(other) is None
        # Both in one file, named from the start.
        ingress.unlink()
        both = tmp_path / "both.yaml"
        both.write_text(CLASS + "---\n" + auth_ingress("basic-auth") + "---\n" + AUTH_SECRET)
        await source.sync(store, set())
        assert store.get(auth) is not None and store.get(other) is None
        # The file naming it goes away: the Secret goes too.
        both.unlink()
        await source.sync(store, set())
        assert store.get(auth) is None

    asyncio.run(main())


def test_without_secret_refs_every_secret_is_kept(tmp_path: Path) -> None:
    from discovery.model import KIND_SECRET

    (tmp_path / "secrets.yaml").write_text(AUTH_SECRET)

    async def main() -> None:
        store = Store()
        await FileSource(str(tmp_path)).sync(store, set())
        assert store.get(ObjectKey(KIND_SECRET, "default", "db-password")) is not None

    asyncio.run(main())
