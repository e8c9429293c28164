"""KubeSource against the API stand-in: sync, events of each kind, 410, restarts, trouble."""

from __future__ import annotations

import pytest

from discovery.model import (
    KIND_CONFIGMAP,
    KIND_ENDPOINTSLICE,
    KIND_INGRESS,
    KIND_INGRESSCLASS,
    KIND_SECRET,
    KIND_SERVICE,
    LAST_CHANGE_TRIGGER_TIME,
    ConfigMap,
    EndpointSlice,
    GenericSecret,
    Ingress,
    IngressClass,
    ObjectKey,
    Service,
    TLSSecret,
)
from discovery.nginx_configmap import IngressNginxMode
from discovery.snapshot import ServicePortName
from discovery.snapshot_builder import SnapshotBuilder
from discovery.store import Store
from tests.kubeapi.fixtures import (
    api_server,
    configmap,
    create,
    delete,
    endpoint_slice,
    eventually,
    fast_settings,
    ingress,
    ingress_class,
    opaque_secret,
    run,
    running_source,
    service,
    tls_secret,
    update,
)
from tests.kubeapi.server import ApiServer

SVC = ObjectKey(KIND_SERVICE, "default", "web")
SLICE = ObjectKey(KIND_ENDPOINTSLICE, "default", "web-1")
ING = ObjectKey(KIND_INGRESS, "default", "web")
CLASS = ObjectKey(KIND_INGRESSCLASS, "", "seaway")
SECRET = ObjectKey(KIND_SECRET, "default", "web-tls")
WEB_HTTP = ServicePortName("default", "web", "http", "TCP")


def populate(server: ApiServer) -> None:
    create(server, service("web", "127.0.50.1"))
    create(server, endpoint_slice("web-1", "web", ["127.0.0.11", "127.0.0.12"]))
    create(server, ingress_class())
    create(server, ingress("web", "web", tls_secret="web-tls"))
    create(server, tls_secret("web-tls"))
    create(server, tls_secret("unrelated"))  # referenced by nothing: never fetched


def test_initial_sync_lists_in_pages_then_ready() -> None:
    async def main() -> None:
        async with api_server() as server:
            populate(server)
            for i in range(7):
                create(server, service(f"extra-{i}", f"127.0.51.{i + 1}"))
            async with running_source(server, settings=fast_settings(page_size=3)) as r:
                assert len(r.ready_calls) == 1
                store = r.store
                svc = store.get(SVC)
                assert isinstance(svc, Service) and svc.cluster_ips == ("127.0.50.1",)
                assert len(store.objects(KIND_SERVICE)) == 8
                sl = store.get(SLICE)
                assert isinstance(sl, EndpointSlice) and sl.service_name == "web"
                assert isinstance(store.get(ING), Ingress)
                assert isinstance(store.get(CLASS), IngressClass)
                sec = store.get(SECRET)
                assert isinstance(sec, TLSSecret) and sec.cert_pem.startswith(b"-----BEGIN")
                assert store.get(ObjectKey(KIND_SECRET, "default", "unrelated")) is None
                # 8 services in pages of 3: three LIST requests for the first sync.
                assert server.stats["list:Service"] == 3
                # Secrets only by name, never listed cluster-wide.
                secret_watches = [q for q in server.watch_queries if q["kind"] == "Secret"]
                assert secret_watches
                assert all(q["fieldSelector"] == "metadata.name=web-tls" for q in secret_watches)
                watch = next(q for q in server.watch_queries if q["kind"] == "Service")
                assert watch["allowWatchBookmarks"] == "true"
                assert int(watch["timeoutSeconds"]) >= 30
                assert int(watch["resourceVersion"]) > 0
                # The objects through the SnapshotBuilder: a service port with endpoints.
                snapshot, changed = SnapshotBuilder(store).build()
                assert WEB_HTTP in changed
                info = snapshot.service_ports[WEB_HTTP]
                assert [e.ip for e in info.endpoints] == ["127.0.0.11", "127.0.0.12"]

    run(main())


def test_ready_waits_for_every_kind() -> None:
    async def main() -> None:
        async with api_server() as server:
            populate(server)
            server.fail_code = 503
            async with running_source(server, wait_ready=False) as r:
                await eventually(lambda: server.stats["requests"] >= 8, what="retries")
                assert r.ready_calls == []
                assert r.store.objects(KIND_SERVICE) == {}
                server.fail_code = 0
                await eventually(lambda: bool(r.ready_calls), what="ready after recovery")
                assert r.store.get(SVC) is not None and r.store.get(SECRET) is not None

    run(main())


def test_add_update_delete_of_each_kind_reach_store_and_snapshot() -> None:
    async def main() -> None:
        async with api_server() as server:
            create(server, ingress_class())
            async with running_source(server) as r:
                store = r.store
                builder = SnapshotBuilder(store)
                builder.build()
                # add
                create(server, service("web", "127.0.50.1"))
                create(server, endpoint_slice("web-1", "web", ["127.0.0.11"]))
                create(server, ingress("web", "web", tls_secret="web-tls"))
                create(server, tls_secret("web-tls"))
                await eventually(lambda: store.get(SECRET) is not None, what="secret added")
                await eventually(lambda: store.get(SLICE) is not None, what="slice added")
                snap, changed = builder.build()
                assert WEB_HTTP in changed
                assert [e.ip for e in snap.service_ports[WEB_HTTP].endpoints] == ["127.0.0.11"]
                assert [i.meta.name for i in snap.ingresses] == ["web"]
                assert ("default", "web-tls") in snap.tls_secrets
                # update
                svc = service("web", "127.0.50.1", port=81)
                update(server, svc)
                update(server, endpoint_slice("web-1", "web", ["127.0.0.12", "127.0.0.13"]))
                update(server, ingress("web", "web", host="other.example", tls_secret="web-tls"))
                update(server, ingress_class(controller="seaway.dev/ingress"))

                def updated() -> bool:
                    s, e, i = store.get(SVC), store.get(SLICE), store.get(ING)
                    return (
                        isinstance(s, Service)
                        and s.ports[0].port == 81
                        and isinstance(e, EndpointSlice)
                        and len(e.endpoints) == 2
                        and isinstance(i, Ingress)
                        and i.rules[0].host == "other.example"
                    )

                await eventually(updated, what="updates")
                snap, changed = builder.build()
                assert WEB_HTTP in changed
                info = snap.service_ports[WEB_HTTP]
                assert info.port == 81
                assert [e.ip for e in info.endpoints] == ["127.0.0.12", "127.0.0.13"]
                # delete
                delete(server, "EndpointSlice", "default", "web-1")
                await eventually(lambda: store.get(SLICE) is None, what="slice deleted")
                snap, changed = builder.build()
                assert WEB_HTTP in changed and snap.service_ports[WEB_HTTP].endpoints == ()
                delete(server, "Ingress", "default", "web")
                # The Secret is no longer referenced: its watch stops and it leaves the store.
                await eventually(lambda: store.get(SECRET) is None, what="secret dropped")
                assert store.get(ING) is None
                delete(server, "Service", "default", "web")
                delete(server, "IngressClass", "", "seaway")
                await eventually(
                    lambda: store.get(SVC) is None and store.get(CLASS) is None, what="deleted"
                )
                snap, changed = builder.build()
                assert WEB_HTTP in changed and WEB_HTTP not in snap.service_ports

    run(main())


def test_only_the_configmap_named_by_flag_is_watched_and_reaches_the_snapshot() -> None:
    """--configmap NAMESPACE/NAME: that one ConfigMap, by fieldSelector, in its namespace;
    its keys become ingress-nginx's global settings in the Snapshot."""
    named = ObjectKey(KIND_CONFIGMAP, "ingress-nginx", "ingress-nginx-controller")

    async def main() -> None:
        async with api_server() as server:
            populate(server)
            create(
                server,
                configmap(
                    "ingress-nginx-controller", {"proxy-body-size": "8m"}, ns="ingress-nginx"
                ),
            )
            create(server, configmap("other", {"proxy-body-size": "1k"}, ns="ingress-nginx"))
            flag = ("ingress-nginx", "ingress-nginx-controller")
            async with running_source(server, configmap=flag) as r:
                store = r.store
                found = store.get(named)
                assert isinstance(found, ConfigMap) and found.data == {"proxy-body-size": "8m"}
                assert len(store.objects(KIND_CONFIGMAP)) == 1  # "other" never fetched
                queries = [q for q in server.watch_queries if q["kind"] == "ConfigMap"]
                assert queries
                assert all(
                    q["fieldSelector"] == "metadata.name=ingress-nginx-controller" for q in queries
                )
                builder = SnapshotBuilder(
                    store, nginx=IngressNginxMode(configmap=flag, enabled=True)
                )
                snap, _ = builder.build()
                assert snap.nginx is not None and snap.nginx.proxy_body_size == 8 * 1024 * 1024
                update(
                    server,
                    configmap("ingress-nginx-controller", {"hsts": "false"}, ns="ingress-nginx"),
                )
                await eventually(
                    lambda: getattr(store.get(named), "data", {}) == {"hsts": "false"},
                    what="configmap updated",
                )
                snap, _ = builder.build()
                assert snap.nginx is not None
                assert snap.nginx.hsts is False and snap.nginx.proxy_body_size == 1024 * 1024
                delete(server, "ConfigMap", "ingress-nginx", "ingress-nginx-controller")
                await eventually(lambda: store.get(named) is None, what="configmap deleted")
                snap, _ = builder.build()
                assert snap.nginx is not None and snap.nginx.source.endswith("not found)")

    run(main())


def test_no_configmap_is_read_without_the_flag() -> None:
    async def main() -> None:
        async with api_server() as server:
            populate(server)
            create(server, configmap("ingress-nginx-controller", {"hsts": "false"}))
            async with running_source(server) as r:
                assert r.store.objects(KIND_CONFIGMAP) == {}
                assert server.stats["list:ConfigMap"] == 0

    run(main())


def test_secret_watch_follows_the_ingress_reference() -> None:
    async def main() -> None:
        async with api_server() as server:
            populate(server)
            create(server, tls_secret("new-tls"))
            async with running_source(server) as r:
                store = r.store
                assert store.get(SECRET) is not None
                update(server, ingress("web", "web", tls_secret="new-tls"))
                new = ObjectKey(KIND_SECRET, "default", "new-tls")
                await eventually(
                    lambda: store.get(new) is not None and store.get(SECRET) is None,
                    what="secret switched",
                )
                # An Ingress of another controller does not make seaway fetch its Secret.
                create(server, ingress("theirs", "web", tls_secret="unrelated", class_name="nginx"))
                update(server, tls_secret("new-tls"))  # an event after the one above
                await eventually(lambda: server.stats["list:Secret"] >= 2, what="secret list")
                assert store.get(ObjectKey(KIND_SECRET, "default", "unrelated")) is None
                assert all(
                    q["fieldSelector"] != "metadata.name=unrelated"
                    for q in server.watch_queries
                    if q["kind"] == "Secret"
                )

    run(main())


def test_auth_secrets_are_watched_by_name_while_an_owned_ingress_names_them() -> None:
    """ingress-nginx's auth-secret (and proxy-ssl-secret) Secrets are Opaque: seaway lists
    and watches each by name (fieldSelector) in the Ingress's namespace, never Secrets
    cluster-wide; a change reaches the Snapshot's auth_secrets; an Ingress that stops
    naming it ends the watch and the Secret leaves the store."""
    prefix = "nginx.ingress.kubernetes.io/"
    auth = {prefix + "auth-type": "basic", prefix + "auth-secret": "basic-auth"}
    foo = "foo:$apr1$OFG3Xybp$ckL0FHDAkoXYIlH9.cysT0"
    key = ObjectKey(KIND_SECRET, "default", "basic-auth")

    async def main() -> None:
        async with api_server() as server:
            populate(server)
            create(server, opaque_secret("basic-auth", auth=foo))
            create(server, opaque_secret("db-password", password="hunter2"))
            update(server, ingress("web", "web", tls_secret="web-tls", annotations=auth))
            async with running_source(server) as r:
                store = r.store
                found = store.get(key)
                assert isinstance(found, GenericSecret) and found.data["auth"] == foo.encode()
                builder = SnapshotBuilder(store)
                snap, _ = builder.build()
                users = snap.auth_secrets[("default", "basic-auth")].auth_file
                assert users is not None and users.users.users == (tuple(foo.split(":", 1)),)
                selectors = {q["fieldSelector"] for q in server.watch_queries
                             if q["kind"] == "Secret"}  # fmt: skip
                assert selectors == {"metadata.name=web-tls", "metadata.name=basic-auth"}
                assert all(q["namespace"] == "default" for q in server.watch_queries
                           if q["kind"] == "Secret")  # fmt: skip
                assert store.get(ObjectKey(KIND_SECRET, "default", "db-password")) is None
                # kubectl edit of the Secret: a watch event, a new Snapshot.
                update(server, opaque_secret("basic-auth", auth="alice:{PLAIN}x"))
                await eventually(
                    lambda: getattr(store.get(key), "data", {}).get("auth") == b"alice:{PLAIN}x",
                    what="secret updated",
                )
                snap, _ = builder.build()
                users = snap.auth_secrets[("default", "basic-auth")].auth_file
                assert users is not None and users.users.users == (("alice", "{PLAIN}x"),)
                # The annotation goes: the watch stops, the Secret leaves the store.
                update(server, ingress("web", "web", tls_secret="web-tls"))
                await eventually(lambda: store.get(key) is None, what="secret dropped")
                snap, _ = builder.build()
                assert snap.auth_secrets == {}

    run(main())


@pytest.mark.parametrize("gone_mode", ["event", "http"])
def test_410_relists_and_applies_the_deletion_missed_in_the_gap(gone_mode: str) -> None:
    async def main() -> None:
        async with api_server() as server:
            server.gone_mode = gone_mode
            populate(server)
            create(server, service("doomed", "127.0.50.9"))
            async with running_source(server) as r:
                store = r.store
                doomed = ObjectKey(KIND_SERVICE, "default", "doomed")
                assert store.get(doomed) is not None
                lists_before = server.stats["list:Service"]
                # The gap: watches cut and refused, a deletion, history compacted.
                server.fail_code = 503
                server.drop_watches()
                delete(server, "Service", "default", "doomed")
                create(server, service("born", "127.0.50.10"))
                server.compact()
                await eventually(lambda: server.stats["requests"] >= 12, what="refused watches")
                assert store.get(doomed) is not None  # nothing known yet: last state stays
                server.fail_code = 0
                await eventually(lambda: store.get(doomed) is None, what="missed delete applied")
                assert store.get(ObjectKey(KIND_SERVICE, "default", "born")) is not None
                assert server.stats["list:Service"] > lists_before
                if gone_mode == "event":
                    assert server.stats["gone:Service"] >= 1
                assert store.get(SVC) is not None and store.get(SECRET) is not None
                # Watching again after the re-list: a later change still arrives.
                update(server, service("web", "127.0.50.1", port=82))
                await eventually(
                    lambda: isinstance(s := store.get(SVC), Service) and s.ports[0].port == 82,
                    what="change after re-list",
                )

    run(main())


def test_api_restart_reconnects_and_resyncs() -> None:
    async def main() -> None:
        async with api_server() as server:
            populate(server)
            async with running_source(server) as r:
                store = r.store
                # ready() comes after the lists; the watches open just after it.
                await eventually(lambda: server.stats["watch:Service"] >= 1, what="watch")
                watches = server.stats["watch:Service"]
                port = server.port
                await server.stop()
                # While the API is down: traffic state stays; changes pile up in "etcd".
                delete(server, "EndpointSlice", "default", "web-1")
                create(server, endpoint_slice("web-2", "web", ["127.0.0.21"]))
                assert store.get(SLICE) is not None
                # A restarted apiserver rebuilds its watch cache: old resourceVersions are
                # too old there, so the source must re-list to see the deletion.
                server.compact()
                await server.start(port=port)
                web2 = ObjectKey(KIND_ENDPOINTSLICE, "default", "web-2")
                await eventually(
                    lambda: store.get(web2) is not None and store.get(SLICE) is None,
                    what="resync after restart",
                )
                # Each kind reconnects on its own backoff: wait for the Service watch too.
                await eventually(
                    lambda: server.stats["watch:Service"] > watches, what="Service re-watch"
                )

    run(main())


def test_failing_api_leaves_the_store_untouched() -> None:
    async def main() -> None:
        async with api_server() as server:
            populate(server)
            async with running_source(server) as r:
                store = r.store
                before = {k: dict(store.objects(k)) for k in (KIND_SERVICE, KIND_ENDPOINTSLICE)}
                store.take_changes()
                assert r.source.status()["state"] == "ok"
                server.fail_code = 500
                server.drop_watches()
                requests = server.stats["requests"]
                await eventually(lambda: server.stats["requests"] >= requests + 10, what="retries")
                assert {k: dict(store.objects(k)) for k in before} == before
                assert store.take_changes() == {}
                # The status page sees which watches fail, and why.
                status = r.source.status()
                assert status["state"] == "degraded"
                failing = [w for w in status["watches"] if w["state"] == "failing"]
                assert failing and all("HTTP 500" in w["last_error"] for w in failing)
                server.fail_code = 0
                create(server, service("after", "127.0.50.11"))
                await eventually(
                    lambda: store.get(ObjectKey(KIND_SERVICE, "default", "after")) is not None,
                    what="recovered",
                )
                await eventually(lambda: r.source.status()["state"] == "ok", what="healthy")

    run(main())


def test_stalled_watch_is_restarted() -> None:
    async def main() -> None:
        async with api_server(bookmark_interval=3600) as server:
            populate(server)
            async with running_source(server, settings=fast_settings(stall_timeout=0.3)) as r:
                store = r.store
                watches = server.stats["watch:Service"]
                server.stalled = True
                await eventually(
                    lambda: server.stats["watch:Service"] >= watches + 2, what="watch restarted"
                )
                assert store.get(SVC) is not None
                server.stalled = False
                update(server, service("web", "127.0.50.1", port=83))
                await eventually(
                    lambda: isinstance(s := store.get(SVC), Service) and s.ports[0].port == 83,
                    what="events after the stall",
                )

    run(main())


def test_bookmarks_advance_the_resource_version() -> None:
    async def main() -> None:
        async with api_server(bookmark_interval=0.05) as server:
            populate(server)
            async with running_source(server) as r:
                w = r.source.watchers[KIND_SERVICE]
                listed = int(w.resource_version)
                create(server, endpoint_slice("other", "x", ["127.0.0.99"]))  # bumps the rv
                await eventually(lambda: int(w.resource_version) > listed, what="bookmark")
                assert w.lists == 1

    run(main())


def test_invalid_object_is_skipped_and_last_good_stays() -> None:
    async def main() -> None:
        async with api_server() as server:
            populate(server)
            async with running_source(server) as r:
                store = r.store
                good = store.get(SVC)
                bad = service("web", "127.0.50.1", port=70000)
                update(server, bad)
                create(server, service("marker", "127.0.50.12"))
                marker = ObjectKey(KIND_SERVICE, "default", "marker")
                await eventually(lambda: store.get(marker) is not None, what="later event")
                assert store.get(SVC) == good
                # Also across a re-list (410): the invalid object does not delete the good one.
                lists = server.stats["list:Service"]
                server.compact()
                server.drop_watches()
                await eventually(lambda: server.stats["list:Service"] > lists, what="re-list")
                await eventually(lambda: r.source.watchers[KIND_SERVICE].lists >= 2, what="applied")
                assert store.get(SVC) == good

    run(main())


def test_trigger_time_annotation_passes_through() -> None:
    async def main() -> None:
        async with api_server() as server, running_source(server) as r:
            stamp = "2026-11-23T10:00:00Z"
            create(
                server,
                endpoint_slice(
                    "web-1", "web", ["127.0.0.11"], annotations={LAST_CHANGE_TRIGGER_TIME: stamp}
                ),
            )
            await eventually(lambda: r.store.get(SLICE) is not None, what="slice")
            sl = r.store.get(SLICE)
            assert isinstance(sl, EndpointSlice)
            assert sl.meta.annotations[LAST_CHANGE_TRIGGER_TIME] == stamp

    run(main())


def test_shared_store_object_identity_unchanged_by_relist() -> None:
    """A re-list that finds nothing new records no change (no needless dataplane sync)."""

    async def main() -> None:
        async with api_server() as server:
            populate(server)
            store = Store()
            async with running_source(server, store=store) as r:
                store.take_changes()
                lists = r.source.watchers[KIND_SERVICE].lists
                server.compact()
                server.drop_watches()
                await eventually(
                    lambda: r.source.watchers[KIND_SERVICE].lists > lists, what="relist"
                )
                assert store.take_changes() == {}

    run(main())
