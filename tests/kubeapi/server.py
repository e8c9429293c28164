"""The Kubernetes API stand-in: an aiohttp app over the in-memory Database.

Serves discovery, /version, and get/list/watch/create/update/patch/delete for the kinds in
resources.py, with the apiserver's resourceVersion semantics. Test hooks (Python methods,
and the same as HTTP under /_test/) force compaction (410 Gone), drop or stall watches,
make the API fail or slow, and restart the listener.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import ssl
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.kubeapi import discovery
from tests.kubeapi.certs import Pki
from tests.kubeapi.encoding import dumps
from tests.kubeapi.patch import apply_patch
from tests.kubeapi.resources import BY_KIND, BY_PATH, GATEWAY_GROUP, Resource
from tests.kubeapi.state import ApiError, Database, Obj, Selector, gone
from tests.kubeapi.tables import default_gateway_status, has_table, table, wants_table

log = logging.getLogger("kubeapi")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(
        body=dumps(body),
        status=status,
        headers={"Content-Type": content_type},
    )


def _error(e: ApiError) -> web.Response:
    return _json(e.status(), e.code)


class ApiServer:
    def __init__(
        self,
        db: Database | None = None,
        bookmark_interval: float = 1.0,
        service_cidr: str = "127.100.0.0/16",
        token: str | None = None,
        pki: Pki | None = None,
        require_client_cert: bool = True,
    ) -> None:
        self.db = db or Database()
        self.bookmark_interval = bookmark_interval
        self.token = token  # when set, requests must carry "Authorization: Bearer <token>"
        self.pki = pki  # when set: HTTPS; a client certificate signed by its CA accepted
        self.require_client_cert = require_client_cert  # ... and required
        # The Gateway API CRDs are installed (served, in discovery); False: as a cluster
        # without them (their group answers 404).
        self.gateway_api = True
        self.stalled = False
        self.fail_code = 0
        self.delay = 0.0
        self.gone_mode = "event"  # "event": 200 + ERROR event (as apiserver); "http": 410
        self.stats: Counter[str] = Counter()
        self.watch_queries: list[dict[str, str]] = []  # query params, kind and namespace
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._snapshots: OrderedDict[str, list[Obj]] = OrderedDict()
        self._ips = ipaddress.ip_network(service_cidr).hosts()
        self._restarting: asyncio.Task[None] | None = None
        self.db.defaulters["Service"] = self._default_service
        self.db.defaulters["EndpointSlice"] = _default_endpointslice
        self.db.defaulters["Namespace"] = _default_namespace
        for kind in ("GatewayClass", "Gateway"):
            self.db.defaulters[kind] = default_gateway_status
        for ns in ("default", "kube-system"):
            self.db.create(BY_PATH[("", "v1", "namespaces")], "", {"metadata": {"name": ns}})

    # ---- lifecycle ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.pki else 'http'}://{self.host}:{self.port}"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        app.router.add_route("*", "/_test/{hook}", self._hook)
        app.router.add_route("*", "/api", self._api_root)
        app.router.add_route("*", "/apis", self._apis_root)
        app.router.add_route("*", "/{prefix:apis?}/{tail:.+}", self._dispatch)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        ctx = None
        if self.pki is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.pki.ca_cert)
            ctx.load_cert_chain(self.pki.server_cert, self.pki.server_key)
            ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        site = web.TCPSite(self._runner, host, port, reuse_address=True, ssl_context=ctx)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.host = host
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        self.db.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self, down_for: float = 0.0) -> None:
        """Stop listening (dropping every connection), wait, listen again on the same port.
        The objects survive, as etcd's do."""
        port = self.port
        await self.stop()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start(self.host, port)

    def kubeconfig(self) -> str:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        cluster: dict[str, Any] = {"server": self.url}
        if self.pki is not None:
            cluster["certificate-authority-data"] = _b64file(self.pki.ca_cert)
        if self.pki is not None and self.require_client_cert:
            user["client-certificate-data"] = _b64file(self.pki.client_cert)
            user["client-key-data"] = _b64file(self.pki.client_key)
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "standin", "cluster": cluster}],
                "users": [{"name": "standin", "user": user}],
                "contexts": [
                    {
                        "name": "standin",
                        "context": {
                            "cluster": "standin",
                            "user": "standin",
                            "namespace": "default",
                        },
                    }
                ],
                "current-context": "standin",
            },
            indent=2,
        )

    def write_kubeconfig(self, path: str) -> str:
        with open(path, "w") as f:
            f.write(self.kubeconfig())
        return path

    # ---- test hooks -------------------------------------------------------------------
    def compact(self) -> int:
        self._snapshots.clear()
        return self.db.compact()

    def drop_watches(self) -> int:
        return self.db.drop_watches()

    def touch(self, kind: str, count: int) -> int:
        """Update (MODIFIED events) the first `count` objects of `kind`: load for benches."""
        res = BY_KIND[kind]
        n = 0
        for (ns, name), obj in list(self.db.table(res).items())[:count]:
            body = json.loads(json.dumps(obj))
            annotations = body["metadata"].setdefault("annotations", {})
            annotations["kubeapi.test/touched"] = str(
                int(annotations.get("kubeapi.test/touched", "0")) + 1
            )
            self.db.update(res, ns, name, body)
            n += 1
        return n

    async def _hook(self, request: web.Request) -> web.Response:
        hook = request.match_info["hook"]
        q = request.query
        result: Any = True
        if hook == "compact":
            result = self.compact()
        elif hook == "drop-watches":
            result = self.drop_watches()
        elif hook == "stall":
            self.stalled = q.get("on", "true") != "false"
        elif hook == "fail":
            self.fail_code = int(q.get("code", "500"))
        elif hook == "delay":
            self.delay = float(q.get("seconds", "0"))
        elif hook == "gone-mode":
            self.gone_mode = q.get("mode", "event")
        elif hook == "restart":
            down = float(q.get("down", "0"))
            self._restarting = asyncio.get_running_loop().create_task(self.restart(down))
        elif hook == "touch":
            result = self.touch(q.get("kind", "Service"), int(q.get("count", "1")))
        elif hook == "stats":
            result = dict(self.stats)
        else:
            return _json({"error": f"unknown hook {hook}"}, 404)
        return _json({"hook": hook, "result": result})

    # ---- middleware ---------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_test/"):
            return await handler(request)
        self.stats["requests"] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_code:
            return _error(ApiError(self.fail_code, "InternalError", "injected failure"))
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(ApiError(401, "Unauthorized", "Unauthorized"))
        try:
            return await handler(request)
        except ApiError as e:
            return _error(e)
        except json.JSONDecodeError as e:
            return _error(ApiError(400, "BadRequest", f"invalid JSON body: {e}"))

    @property
    def excluded_groups(self) -> frozenset[str]:
        """API groups not served (CRDs not installed)."""
        return frozenset() if self.gateway_api else frozenset({GATEWAY_GROUP})

    # ---- discovery ------------------------------------------------------------------------
    async def _version(self, request: web.Request) -> web.Response:
        return _json(discovery.version_info())

    async def _api_root(self, request: web.Request) -> web.Response:
        agg = discovery.wants_aggregated(request.headers.get("Accept", ""))
        if agg:
            version = agg.split("v=", 1)[1].split(";", 1)[0]
            return _json(
                discovery.aggregated(True, f"apidiscovery.k8s.io/{version}", self.excluded_groups),
                content_type=agg,
            )
        return _json(discovery.api_versions(f"{self.host}:{self.port}"))

    async def _apis_root(self, request: web.Request) -> web.Response:
        agg = discovery.wants_aggregated(request.headers.get("Accept", ""))
        if agg:
            version = agg.split("v=", 1)[1].split(";", 1)[0]
            return _json(
                discovery.aggregated(False, f"apidiscovery.k8s.io/{version}", self.excluded_groups),
                content_type=agg,
            )
        return _json(discovery.api_group_list(self.excluded_groups))

    # ---- resources ------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        prefix = request.match_info["prefix"]
        parts = [p for p in request.match_info["tail"].split("/") if p]
        if prefix == "api":
            group, rest = "", parts
        else:
            group, rest = parts[0], parts[1:]
            if group in self.excluded_groups:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if not rest:
                doc = discovery.api_group(group, self.excluded_groups)
                if doc is None:
                    raise ApiError(
                        404, "NotFound", "the server could not find the requested resource"
                    )
                return _json(doc)
        version, rest = rest[0], rest[1:]
        if not rest:
            doc = discovery.api_resource_list(group, version, self.excluded_groups)
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(doc)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        res = BY_PATH.get((group, version, rest[0]))
        sub = rest[2] if len(rest) == 3 else ""
        if (
            res is None
            or len(rest) > 3
            or (sub and not (sub == "status" and res.status_subresource))
            or (namespace and not res.namespaced)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else ""
        dry_run = "dryRun" in request.query
        m = request.method
        out = _Versioned(res, version)
        accept = request.headers.get("Accept", "")
        if not name:
            if m == "GET":
                if _truthy(request.query.get("watch", "")):
                    return await self._watch(request, res, namespace, version)
                if has_table(res) and wants_table(accept):
                    return self._table(request, res, namespace, "")
                return self._list(request, res, namespace, version)
            if m == "POST":
                self.stats[f"create:{res.kind}"] += 1
                obj = self.db.create(res, namespace, await request.json(), dry_run)
                return out.json(obj, 201)
        else:
            label = f"{res.kind}/status" if sub else res.kind
            if m == "GET":
                self.stats[f"get:{label}"] += 1
                if has_table(res) and wants_table(accept) and not sub:
                    return self._table(request, res, namespace, name)
                return out.json(self.db.get(res, namespace, name))
            if m == "PUT":
                self.stats[f"update:{label}"] += 1
                return out.json(
                    self.db.update(res, namespace, name, await request.json(), dry_run, sub)
                )
            if m == "PATCH":
                self.stats[f"patch:{label}"] += 1
                current = self.db.get(res, namespace, name)
                ctype = request.headers.get("Content-Type", "")
                if res.custom and "strategic-merge-patch" in ctype:
                    # As the apiserver answers for custom resources.
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml",
                    )
                patched = apply_patch(ctype, current, await request.json(), res.kind)
                if not isinstance(patched, dict):
                    raise ApiError(422, "Invalid", "patch result is not an object")
                meta = patched.setdefault("metadata", {})
                if meta.get("resourceVersion") in (None, ""):
                    meta["resourceVersion"] = current["metadata"]["resourceVersion"]
                return out.json(self.db.update(res, namespace, name, patched, dry_run, sub))
            if m == "DELETE":
                self.stats[f"delete:{res.kind}"] += 1
                return _json(self.db.delete(res, namespace, name, dry_run))
        raise ApiError(405, "MethodNotAllowed", f"method {m} not allowed")

    def _table(
        self, request: web.Request, res: Resource, namespace: str, name: str
    ) -> web.Response:
        """A meta.k8s.io/v1 Table with the resource's printer columns (kubectl get)."""
        self.stats[f"table:{res.kind}"] += 1
        if name:
            items = [self.db.get(res, namespace, name)]
        else:
            q = request.query
            sel = Selector.parse(q.get("fieldSelector", ""), q.get("labelSelector", ""))
            items = self.db.list(res, namespace, sel)
        return _json(table(res, items, str(self.db.rv)))

    def _list(
        self, request: web.Request, res: Resource, namespace: str, version: str = ""
    ) -> web.Response:
        self.stats[f"list:{res.kind}"] += 1
        q = request.query
        limit = int(q.get("limit", "0") or 0)
        token = q.get("continue", "")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                rv, snap_id, offset = int(state["rv"]), str(state["id"]), int(state["off"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "invalid continue token") from None
            items = self._snapshots.get(snap_id)
            if items is None or rv < self.db.compacted:
                raise gone(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter."
                )
        else:
            sel = Selector.parse(q.get("fieldSelector", ""), q.get("labelSelector", ""))
            items = self.db.list(res, namespace, sel)
            rv, snap_id, offset = self.db.rv, uuid.uuid4().hex, 0
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        end = offset + limit if limit else len(items)
        if end < len(items):
            self._snapshots[snap_id] = items
            while len(self._snapshots) > 64:
                self._snapshots.popitem(last=False)
            state = {"rv": rv, "id": snap_id, "off": end}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        else:
            self._snapshots.pop(snap_id, None)
        cache = self.db.cache
        items_json = b",".join([cache.item(o) for o in items[offset:end]])
        api_version = res.api_version_for(version or res.version)
        head = dumps({"kind": f"{res.kind}List", "apiVersion": api_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + items_json + b"]}"
        return web.Response(body=body, headers={"Content-Type": "application/json"})

    async def _watch(
        self, request: web.Request, res: Resource, namespace: str, version: str = ""
    ) -> web.StreamResponse:
        versioned = _Versioned(res, version or res.version)
        self.stats[f"watch:{res.kind}"] += 1
        q = request.query
        self.watch_queries.append({"kind": res.kind, **q, "namespace": namespace})
        rv_text = q.get("resourceVersion", "")
        since = int(rv_text) if rv_text not in ("", "0") else None
        timeout = float(q.get("timeoutSeconds", "1800") or 1800)
        bookmarks = _truthy(q.get("allowWatchBookmarks", ""))
        sel = Selector.parse(q.get("fieldSelector", ""), q.get("labelSelector", ""))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            watcher = self.db.watch(res, namespace, sel, since)
        except ApiError as e:
            if e.code != 410 or self.gone_mode == "http":
                raise
            self.stats[f"gone:{res.kind}"] += 1
            await resp.prepare(request)
            await resp.write(_line({"type": "ERROR", "object": e.status()}))
            return resp
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_write = loop.time()
        await resp.prepare(request)
        try:
            while not watcher.closed:
                now = loop.time()
                if now >= deadline:
                    break
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), min(0.25, deadline - now))
                except TimeoutError:
                    if (
                        bookmarks
                        and not self.stalled
                        and watcher.queue.empty()
                        and loop.time() - last_write >= self.bookmark_interval
                    ):
                        await resp.write(_bookmark(res, self.db.rv))
                        last_write = loop.time()
                    continue
                if event is None:
                    break
                while self.stalled and not watcher.closed:
                    await asyncio.sleep(0.05)
                if watcher.closed:
                    break
                obj_json = versioned.encode(event.obj, self.db.cache.full)
                await resp.write(b'{"type":"%s","object":%s}\n' % (event.type.encode(), obj_json))
                last_write = loop.time()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.db.unwatch(watcher)
        return resp

    # ---- defaulting (what the real apiserver fills in) -----------------------------------
    def _default_service(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            ip = str(next(self._ips))
            spec["clusterIP"] = ip
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))


def _default_namespace(obj: Obj) -> None:
    """The label the apiserver puts on every Namespace (Kubernetes >= 1.22)."""
    meta = obj.setdefault("metadata", {})
    labels = meta.get("labels") or {}
    labels["kubernetes.io/metadata.name"] = meta.get("name", "")
    meta["labels"] = labels


class _Versioned:
    """Objects as seen through the version a request used (CRDs serve one object under
    several versions; only apiVersion differs)."""

    __slots__ = ("res", "version")

    def __init__(self, res: Resource, version: str) -> None:
        self.res = res
        self.version = version

    def view(self, obj: Obj) -> Obj:
        if self.version == self.res.version:
            return obj
        return {**obj, "apiVersion": self.res.api_version_for(self.version)}

    def json(self, obj: Obj, status: int = 200) -> web.Response:
        return _json(self.view(obj), status)

    def encode(self, obj: Obj, cached: Callable[[Obj], bytes]) -> bytes:
        if self.version == self.res.version:
            return cached(obj)
        return dumps(self.view(obj))


def _default_endpointslice(obj: Obj) -> None:
    for port in obj.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _truthy(value: str) -> bool:
    """A query boolean as the apiserver parses it (Go's strconv.ParseBool)."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _b64file(path: str) -> str:
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def _line(event: dict[str, Any]) -> bytes:
    return dumps(event) + b"\n"


def _bookmark(res: Resource, rv: int) -> bytes:
    return _line(
        {
            "type": "BOOKMARK",
            "object": {
                "kind": res.kind,
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(rv)},
            },
        }
    )
